//go:build js

// Command natter-web is the browser client's WebAssembly half (GOOS=js
// GOARCH=wasm): it starts the Go SDK in the page and hands the page its
// natter API (docs/web.md, package internal/webapp). Built by
// `go generate ./web` into web/dist/natter.wasm.gz.
package main

import (
	"log/slog"
	"strings"
	"syscall/js"

	"github.com/natterim/natter/internal/webapp"
)

func main() {
	loc := js.Global().Get("location")
	scheme := "wss://"
	if loc.Get("protocol").String() == "http:" {
		scheme = "ws://"
	}
	server := scheme + loc.Get("host").String() + "/ws"
	level := slog.LevelInfo
	if strings.Contains(loc.Get("search").String(), "debug") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(consoleWriter{}, &slog.HandlerOptions{Level: level}))
	app := webapp.New(server, js.Global().Get("natterIDB"), log)
	js.Global().Call("natterReady", app.API())
	select {} // the page calls into the app from now on
}

// consoleWriter writes log lines to the browser's console.
type consoleWriter struct{}

func (consoleWriter) Write(p []byte) (int, error) {
	js.Global().Get("console").Call("log", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
