// Package web holds natter's browser client as natterd serves it: the
// files under dist, embedded in the natterd binary. dist holds the page
// (index.html), its scripts and styles, the app manifest, the service
// worker, the icons, Go's wasm_exec.js and natter.wasm.gz, the Go SDK
// compiled to WebAssembly (cmd/natter-web) and gzipped. Everything in dist
// that is built from sources is rebuilt reproducibly by `go generate
// ./web`; CI rebuilds it and fails if the committed copy differs.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// FS returns the browser client's files, rooted at dist (index.html at the
// top).
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: it always exists
	}
	return sub
}
