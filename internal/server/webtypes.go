package server

import (
	"path"
	"strings"
)

// contentTypes are the media types of the browser client's files, by
// extension. They are written out rather than taken from the system's
// MIME database (mime.TypeByExtension), which differs between machines:
// browsers refuse a module script or a manifest served with the wrong
// type, and X-Content-Type-Options: nosniff forbids them to guess.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "application/javascript",
	".mjs":         "application/javascript",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".wasm":        "application/wasm",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
}

// contentType returns the media type of a file by its name's extension;
// application/octet-stream for one not listed.
func contentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// compressible reports whether a file is text (or uncompressed wasm),
// worth gzipping once at start. Images and fonts are compressed already.
func compressible(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".html", ".js", ".mjs", ".css", ".json", ".map", ".webmanifest", ".svg", ".txt", ".wasm":
		return true
	}
	return false
}
