package server_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/internal/tlscert"
)

// testIndex is a page referring to assets every way the rewrite handles
// or leaves alone.
const testIndex = `<!doctype html>
<html><head>
<link rel="manifest" href="manifest.webmanifest">
<link rel="icon" href="icons/icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="./icons/icon-192.png">
<link rel="stylesheet" href="/style.css">
<script src="wasm_exec.js"></script>
<script type="module" src="app.js"></script>
<link rel="modulepreload" href="ui.js">
</head><body>
<img data-src="icons/icon.svg" src="https://example.org/x.png">
<a href="#top">top</a>
</body></html>
`

// testWasm is the WebAssembly client's stand-in: its magic, then enough
// bytes to compress.
var testWasm = append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte("natter wasm "), 4000)...)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// testWeb is a browser client's files, as web.FS would hold them.
func testWeb(t testing.TB) fstest.MapFS {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	return fstest.MapFS{
		"index.html":           file(testIndex),
		"app.js":               file(`import {show} from "./ui.js"; show(); ` + strings.Repeat("// padding\n", 50)),
		"ui.js":                file(`export function show() { document.body.dataset.ready = "1"; }` + strings.Repeat("\n", 100)),
		"wasm_exec.js":         file(`"use strict"; globalThis.Go = class {};` + strings.Repeat(" ", 200)),
		"style.css":            file(`body { margin: 0; }` + strings.Repeat("\n.a { color: red; }", 20)),
		"manifest.webmanifest": file(`{"name": "natter", "short_name": "natter", "start_url": ".", "scope": ".", "display": "standalone", "background_color": "#ffffff", "theme_color": "#ffffff", "icons": []}`),
		"sw.js":                file(`self.addEventListener("fetch", () => {});`),
		"icons/icon.svg":       file(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>`),
		"icons/icon-192.png":   {Data: []byte("\x89PNG\r\n\x1a\nnot really a png")},
		"natter.wasm.gz":       {Data: gz(t, testWasm)},
	}
}

// webClient is an HTTPS client that trusts the server and sends the
// Accept-Encoding the test gives (Go's transport would add and undo gzip
// by itself).
func webClient(t testing.TB, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// fetch makes one request and returns the response with its body read.
func fetch(t testing.TB, c *http.Client, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, body
}

func short(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// TestWebUI serves a browser client from an fstest.MapFS through a real
// natterd and checks each file's type, encodings, cache headers and
// validators.
func TestWebUI(t *testing.T) {
	fsys := testWeb(t)
	in := servertest.Start(t, func(c *server.Config) { c.Web = fsys })
	c := webClient(t, in.ClientTLS())
	base := "https://" + in.HTTPAddr

	_, page := fetch(t, c, "GET", base+"/")
	const noCache, immutable = "no-cache", "public, max-age=31536000, immutable"
	for _, tc := range []struct {
		path, ctype, cache string
		body               []byte // identity; nil: not compared (the page)
		gzip               bool   // served gzipped to a browser that accepts it
	}{
		{"/", "text/html; charset=utf-8", noCache, page, true},
		{"/index.html", "text/html; charset=utf-8", noCache, page, true},
		{"/app.js", "application/javascript", noCache, fsys["app.js"].Data, true},
		{"/wasm_exec.js", "application/javascript", noCache, fsys["wasm_exec.js"].Data, true},
		{"/style.css", "text/css; charset=utf-8", noCache, fsys["style.css"].Data, true},
		{"/manifest.webmanifest", "application/manifest+json", noCache, fsys["manifest.webmanifest"].Data, true},
		{"/sw.js", "application/javascript", noCache, fsys["sw.js"].Data, false}, // too small to gain from gzip
		{"/icons/icon.svg", "image/svg+xml", noCache, fsys["icons/icon.svg"].Data, false},
		{"/icons/icon-192.png", "image/png", noCache, fsys["icons/icon-192.png"].Data, false},
		{"/natter.wasm", "application/wasm", noCache, testWasm, true},
		{"/h/" + short(fsys["app.js"].Data) + "/app.js", "application/javascript", immutable, fsys["app.js"].Data, true},
		{"/h/" + short(fsys["icons/icon-192.png"].Data) + "/icons/icon-192.png", "image/png", immutable, fsys["icons/icon-192.png"].Data, false},
		{"/h/" + short(fsys["natter.wasm.gz"].Data) + "/natter.wasm", "application/wasm", immutable, testWasm, true},
		// A module imported by a relative name from /h/HASH/app.js: the
		// current ui.js, not promised immutable under app.js's hash.
		{"/h/" + short(fsys["app.js"].Data) + "/ui.js", "application/javascript", noCache, fsys["ui.js"].Data, true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			for _, accept := range []string{"", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "*", "gzip;q=0", "identity"} {
				resp, body := fetch(t, c, "GET", base+tc.path, "Accept-Encoding", accept)
				wantGzip := tc.gzip && (strings.Contains(accept, "gzip;q=0.8") || accept == "gzip, deflate, br" || accept == "*")
				h := resp.Header
				if resp.StatusCode != 200 {
					t.Fatalf("Accept-Encoding %q: status %d", accept, resp.StatusCode)
				}
				if got := h.Get("Content-Type"); got != tc.ctype {
					t.Errorf("Content-Type %q, want %q", got, tc.ctype)
				}
				if got := h.Get("Cache-Control"); got != tc.cache {
					t.Errorf("Cache-Control %q, want %q", got, tc.cache)
				}
				if got := h.Get("Content-Encoding"); (got == "gzip") != wantGzip {
					t.Errorf("Accept-Encoding %q: Content-Encoding %q, want gzip: %v", accept, got, wantGzip)
				}
				if tc.gzip && h.Get("Vary") != "Accept-Encoding" {
					t.Errorf("Vary %q, want Accept-Encoding", h.Get("Vary"))
				}
				if wantGzip {
					body = gunzip(t, body)
				}
				if tc.body != nil && !bytes.Equal(body, tc.body) {
					t.Errorf("Accept-Encoding %q: body differs from the file (%d bytes, want %d)", accept, len(body), len(tc.body))
				}
				if h.Get("Content-Length") == "" {
					t.Error("no Content-Length")
				}

				// The ETag validates: 304, no body, same tag.
				etag := h.Get("ETag")
				if !strings.HasPrefix(etag, `"`) || len(etag) < 66 {
					t.Fatalf("ETag %q, want a strong tag with a SHA-256", etag)
				}
				resp304, body304 := fetch(t, c, "GET", base+tc.path, "Accept-Encoding", accept, "If-None-Match", etag)
				if resp304.StatusCode != http.StatusNotModified || len(body304) != 0 || resp304.Header.Get("ETag") != etag {
					t.Errorf("If-None-Match %s: status %d, %d bytes, ETag %q; want 304, none, the same tag",
						etag, resp304.StatusCode, len(body304), resp304.Header.Get("ETag"))
				}
				if got := resp304.Header.Get("Cache-Control"); got != tc.cache {
					t.Errorf("304: Cache-Control %q, want %q", got, tc.cache)
				}
				resp200, _ := fetch(t, c, "GET", base+tc.path, "Accept-Encoding", accept, "If-None-Match", `"0123", W/"abc"`)
				if resp200.StatusCode != 200 {
					t.Errorf("If-None-Match naming other tags: status %d, want 200", resp200.StatusCode)
				}

				// HEAD: the same headers, no body.
				head, hbody := fetch(t, c, "HEAD", base+tc.path, "Accept-Encoding", accept)
				if head.StatusCode != 200 || len(hbody) != 0 || head.Header.Get("ETag") != etag ||
					head.Header.Get("Content-Length") != h.Get("Content-Length") || head.Header.Get("Content-Type") != tc.ctype {
					t.Errorf("HEAD: status %d, %d bytes, ETag %q, Content-Length %q; want 200, none, %q, %q",
						head.StatusCode, len(hbody), head.Header.Get("ETag"), head.Header.Get("Content-Length"), etag, h.Get("Content-Length"))
				}
			}
		})
	}

	t.Run("not found", func(t *testing.T) {
		for _, p := range []string{
			"/nope.js", "/chat/bob", "/natter.wasm.gz", "/icons/", "/h/", "/h/0123/app.js",
			"/h/" + short(fsys["app.js"].Data) + "/nope.js",
			"/h/" + short([]byte(testIndex)) + "/index.html", // the page, sw.js and the manifest have no immutable path
			"/h/" + short(fsys["sw.js"].Data) + "/sw.js",
			"/h/" + short(fsys["manifest.webmanifest"].Data) + "/manifest.webmanifest",
		} {
			if resp, _ := fetch(t, c, "GET", base+p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
			}
		}
	})
}

// TestWebUIIndexRewrite: the page served refers to assets by their
// immutable paths, except module scripts, the manifest, external URLs
// and other attributes.
func TestWebUIIndexRewrite(t *testing.T) {
	fsys := testWeb(t)
	in := servertest.Start(t, func(c *server.Config) { c.Web = fsys })
	_, page := fetch(t, webClient(t, in.ClientTLS()), "GET", "https://"+in.HTTPAddr+"/")
	h := func(name string) string { return "/h/" + short(fsys[name].Data) + "/" + name }
	for _, want := range []string{
		`<link rel="icon" href="` + h("icons/icon.svg") + `" type="image/svg+xml">`,
		`<link rel="apple-touch-icon" href="` + h("icons/icon-192.png") + `">`,
		`<link rel="stylesheet" href="` + h("style.css") + `">`,
		`<script src="` + h("wasm_exec.js") + `"></script>`,
		`<link rel="manifest" href="manifest.webmanifest">`,
		`<script type="module" src="app.js"></script>`,
		`<link rel="modulepreload" href="ui.js">`,
		`<img data-src="icons/icon.svg" src="https://example.org/x.png">`,
		`<a href="#top">top</a>`,
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %s\n%s", want, page)
		}
	}
}

// TestWebUIEmbedded: natterd serves the embedded client (package web) by
// default.
func TestWebUIEmbedded(t *testing.T) {
	in := servertest.Start(t)
	resp, body := fetch(t, webClient(t, in.ClientTLS()), "GET", "https://"+in.HTTPAddr+"/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !bytes.Contains(body, []byte("<html")) {
		t.Fatalf("GET /: status %d, Content-Type %q, %d bytes; want the embedded page", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// wantSecurityHeaders are the headers every response of the HTTPS
// listener carries (docs/security.md).
var wantSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
		"img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; " +
		"manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"X-Frame-Options":            "DENY",
	"Permissions-Policy":         "camera=(self), microphone=(), geolocation=()",
	"Cross-Origin-Opener-Policy": "same-origin",
}

// checkSecurityHeaders fails the test unless resp carries every security
// header, and Strict-Transport-Security exactly when hsts.
func checkSecurityHeaders(t testing.TB, what string, resp *http.Response, hsts bool) {
	t.Helper()
	for k, v := range wantSecurityHeaders {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s (status %d): %s %q, want %q", what, resp.StatusCode, k, got, v)
		}
	}
	got := resp.Header.Get("Strict-Transport-Security")
	switch {
	case hsts && got != "max-age=31536000":
		t.Errorf("%s: Strict-Transport-Security %q, want max-age=31536000", what, got)
	case !hsts && got != "":
		t.Errorf("%s: Strict-Transport-Security %q with the self-made certificate, want none", what, got)
	}
	if strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Errorf("%s: the CSP allows unsafe-inline", what)
	}
}

// TestSecurityHeaders: every kind of response of the HTTPS listener
// carries the security headers; Strict-Transport-Security only with an
// operator's certificate (--tls-cert), not the self-made one.
func TestSecurityHeaders(t *testing.T) {
	// An operator's certificate: here one made by tlscert in another
	// folder, handed over as files.
	certDir := t.TempDir()
	if _, err := tlscert.LoadOrCreate(certDir, nil, nil); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(certDir, tlscert.CertFile), filepath.Join(certDir, tlscert.KeyFile)
	operatorTLS := func(t *testing.T) *tls.Config {
		b, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		return &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	for _, tc := range []struct {
		name string
		opt  func(*server.Config)
		tls  func(*testing.T, *servertest.Instance) *tls.Config
		hsts bool
	}{
		{"self-made certificate", func(*server.Config) {}, func(_ *testing.T, in *servertest.Instance) *tls.Config { return in.ClientTLS() }, false},
		{"--tls-cert", func(c *server.Config) { c.CertFile, c.KeyFile = certFile, keyFile },
			func(t *testing.T, _ *servertest.Instance) *tls.Config { return operatorTLS(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := testWeb(t)
			in := servertest.Start(t, func(c *server.Config) {
				c.Web = fsys
				c.MaxConnsPerIP = 1
				tc.opt(c)
			})
			c := webClient(t, tc.tls(t, in))
			base := "https://" + in.HTTPAddr
			for _, r := range []struct {
				what, method, path string
				header             []string
				status             int
			}{
				{"page", "GET", "/", nil, 200},
				{"asset", "GET", "/app.js", []string{"Accept-Encoding", "gzip"}, 200},
				{"immutable asset", "GET", "/h/" + short(fsys["style.css"].Data) + "/style.css", nil, 200},
				{"wasm", "HEAD", "/natter.wasm", nil, 200},
				{"not modified", "GET", "/sw.js", []string{"If-None-Match", "*"}, 304},
				{"not found", "GET", "/nope", nil, 404},
				{"method not allowed", "POST", "/", nil, 405},
				{"/ws without an upgrade", "GET", "/ws", nil, 426},
			} {
				resp, _ := fetch(t, c, r.method, base+r.path, r.header...)
				if resp.StatusCode != r.status {
					t.Errorf("%s: %s %s: status %d, want %d", r.what, r.method, r.path, resp.StatusCode, r.status)
				}
				checkSecurityHeaders(t, r.what, resp, tc.hsts)
			}

			// /ws refused for too many connections from the address: a
			// native connection holds the one allowed.
			nc, err := tls.Dial("tcp", in.Addr, tc.tls(t, in))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			resp, _ := fetch(t, c, "GET", base+"/ws", "Connection", "Upgrade", "Upgrade", "websocket",
				"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("/ws over the per-address limit: status %d, want 429", resp.StatusCode)
			}
			checkSecurityHeaders(t, "/ws refused", resp, tc.hsts)
		})
	}
}
