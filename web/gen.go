package web

// Rebuild what dist holds that is made from sources: natter.wasm.gz (the
// Go SDK for the browser, cmd/natter-web) and Go's wasm_exec.js.
//go:generate go run ./build
