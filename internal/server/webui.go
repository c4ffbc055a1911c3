package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
)

// The browser client's files (package web) as natterd serves them on the
// HTTPS listener. Everything is read once, at start, into memory: text
// files are gzipped once there and both forms kept; a file stored only
// gzipped (NAME.gz, the WebAssembly client) is served as NAME, gzipped to
// browsers that accept it and inflated once, on first need, for the rest.
//
// Caching rests on content hashes. Every response carries a strong ETag
// (the SHA-256 of the file as stored) and answers If-None-Match with 304.
// Plain paths (/app.js) are served "no-cache": the browser revalidates
// each time, so a new natterd's client is picked up at once. Each asset
// but the page, the service worker and the manifest is also served under
// /h/HASH/NAME (HASH: the first 16 hex digits of its SHA-256) as
// immutable, and index.html refers to assets by those paths, so a page
// always loads the assets it was built with and the browser never asks
// for them again. See docs/operations.md, "The browser client".

// webUI serves the files of an fs.FS. The zero value serves nothing; use
// newWebUI.
type webUI struct {
	assets map[string]*asset // by name: its path in the FS, minus any .gz suffix
	log    *slog.Logger
}

// asset is one file, ready to serve.
type asset struct {
	name    string // "app.js", "icons/192.png", "natter.wasm"
	ctype   string
	sum     string // hex SHA-256 of the file as stored (gzipped, for a .gz file)
	noCache bool   // the page, the service worker, the manifest: plain path only, never immutable

	gz []byte // gzip encoding, or nil when it does not pay

	inflate sync.Once // fills plain from gz, for a file stored only gzipped
	plain   []byte    // identity encoding
	err     error     // inflate's error
}

// hashLen is how many hex digits of an asset's SHA-256 name it in /h/
// paths: 64 bits, plenty to tell the versions of one file apart.
const hashLen = 16

// short is the asset's hash as it appears in /h/ paths.
func (a *asset) short() string { return a.sum[:hashLen] }

// etag is the asset's entity tag for the identity or the gzip encoding
// (a strong tag differs between encodings of one file).
func (a *asset) etag(gz bool) string {
	if gz {
		return `"` + a.sum + `-gz"`
	}
	return `"` + a.sum + `"`
}

// identity returns the file's bytes unencoded, inflating a file stored
// only gzipped the first time.
func (a *asset) identity() ([]byte, error) {
	a.inflate.Do(func() {
		if a.plain != nil {
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(a.gz))
		if err != nil {
			a.err = fmt.Errorf("gunzip %s: %w", a.name, err)
			return
		}
		if a.plain, err = io.ReadAll(zr); err != nil {
			a.err = fmt.Errorf("gunzip %s: %w", a.name, err)
		}
	})
	return a.plain, a.err
}

// newWebUI reads every file of fsys. index.html, if there, is rewritten
// to refer to the other assets by their /h/ paths (rewriteIndex).
func newWebUI(fsys fs.FS, log *slog.Logger) (*webUI, error) {
	ui := &webUI{assets: map[string]*asset{}, log: log}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		a := &asset{name: name, sum: sha256Hex(data)}
		if base, ok := strings.CutSuffix(name, ".gz"); ok {
			a.name, a.gz = base, data
		} else {
			a.plain = data
		}
		if ui.assets[a.name] != nil {
			return fmt.Errorf("both %s and %s.gz: keep one", a.name, a.name)
		}
		a.ctype = contentType(a.name)
		a.noCache = a.name == "index.html" || a.name == "sw.js" || path.Ext(a.name) == ".webmanifest"
		ui.assets[a.name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web client files: %w", err)
	}
	if idx := ui.assets["index.html"]; idx != nil && idx.plain != nil {
		idx.plain = rewriteIndex(idx.plain, ui.assets)
		idx.sum = sha256Hex(idx.plain)
	}
	for _, a := range ui.assets {
		if a.plain != nil && compressible(a.name) {
			if a.gz, err = gzipBytes(a.plain); err != nil {
				return nil, fmt.Errorf("web client files: gzip %s: %w", a.name, err)
			}
			if len(a.gz) >= len(a.plain) {
				a.gz = nil
			}
		}
	}
	return ui, nil
}

// ServeHTTP serves GET and HEAD of /, /NAME and /h/HASH/NAME. A HASH that
// is not NAME's current one (a module imported by a relative name from a
// module loaded under /h/, an older page) gets the current file, never
// marked immutable. Anything else is 404: the client routes nothing by
// path, so no path falls back to the page.
func (ui *webUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	cache := "no-cache"
	if rest, ok := strings.CutPrefix(name, "h/"); ok {
		hash, n, ok := strings.Cut(rest, "/")
		a := ui.assets[n]
		if !ok || !isHash(hash) || a == nil || a.noCache {
			http.NotFound(w, r)
			return
		}
		if hash == a.short() {
			cache = "public, max-age=31536000, immutable"
		}
		name = n
	}
	a := ui.assets[name]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	ui.serve(w, r, a, cache)
}

// serve writes asset a, gzipped if it can be and the request accepts it.
func (ui *webUI) serve(w http.ResponseWriter, r *http.Request, a *asset, cache string) {
	h := w.Header()
	gz := a.gz != nil && acceptsGzip(r.Header.Values("Accept-Encoding"))
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding") // the answer depends on it
	}
	h.Set("Cache-Control", cache)
	h.Set("ETag", a.etag(gz))
	if noneMatch(r.Header.Get("If-None-Match"), a) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.gz
	if gz {
		h.Set("Content-Encoding", "gzip")
	} else {
		var err error
		if body, err = a.identity(); err != nil {
			ui.log.Error("web client", "err", err)
			http.Error(w, "cannot serve "+a.name, http.StatusInternalServerError)
			return
		}
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// noneMatch reports whether an If-None-Match header names either of a's
// entity tags (compared weakly, as RFC 9110 says for If-None-Match) or is
// "*".
func noneMatch(header string, a *asset) bool {
	if header == "" {
		return false
	}
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == a.etag(false) || tag == a.etag(true) {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding values allow gzip: gzip (or
// x-gzip) listed with a q above 0, or else * with a q above 0.
func acceptsGzip(values []string) bool {
	star := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			ok := qAboveZero(params)
			switch coding {
			case "gzip", "x-gzip":
				return ok
			case "*":
				star = ok
			}
		}
	}
	return star
}

// qAboveZero reports whether params (";q=0.5") leave a q above 0.
func qAboveZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			v = strings.TrimSpace(v)
			return strings.Trim(v, "0.") != "" // 0, 0.0, 0.000 are zero
		}
	}
	return true
}

// isHash reports whether s has the form of an /h/ path's hash.
func isHash(s string) bool {
	if len(s) != hashLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func gzipBytes(b []byte) ([]byte, error) {
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
