// Command build makes the browser client's built files in web/dist:
// natter.wasm.gz, cmd/natter-web compiled with GOOS=js GOARCH=wasm and
// gzipped, and wasm_exec.js, the JavaScript support of the Go that built
// it. The output depends only on the sources, the module versions and the
// Go version (-trimpath, no VCS stamp, a gzip header without a time or a
// name), so CI rebuilds it and compares: `go run ./web/build -check`
// fails if the committed copy differs.
//
// Run it from the repository's root or from web/ (go generate ./web).
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	check := flag.Bool("check", false, "rebuild into a temporary folder and fail if web/dist differs")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "web/build:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dist := filepath.Join(root, "web", "dist")
	wasm, err := buildWasm(root)
	if err != nil {
		return err
	}
	gz, err := gzipped(wasm)
	if err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	execJS, err := os.ReadFile(filepath.Join(goroot, "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return err
	}
	files := map[string][]byte{"natter.wasm.gz": gz, "wasm_exec.js": execJS}
	if check {
		var stale []string
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(dist, name))
			if err != nil || !bytes.Equal(got, want) {
				stale = append(stale, name)
			}
		}
		if len(stale) > 0 {
			return fmt.Errorf("web/dist is not what its sources build (%s): run go generate ./web and commit", strings.Join(stale, ", "))
		}
		fmt.Printf("web/dist is up to date (natter.wasm %d bytes, %d gzipped)\n", len(wasm), len(gz))
		return nil
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dist, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote web/dist: natter.wasm %d bytes, %d gzipped\n", len(wasm), len(gz))
	return nil
}

// buildWasm builds cmd/natter-web for the browser and returns the binary.
func buildWasm(root string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "natter-wasm")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "natter.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "./cmd/natter-web")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0", "GOWASM=", "GOFLAGS=-mod=readonly")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/natter-web: %w", err)
	}
	return os.ReadFile(out)
}

// gzipped compresses b the same way every time.
func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// repoRoot is the folder of the module's go.mod.
func repoRoot() (string, error) {
	gomod, err := goEnv("GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run inside the natter module")
	}
	return filepath.Dir(gomod), nil
}
