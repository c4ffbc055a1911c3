//go:build js

// Package webapp is the browser client's Go half: it runs the SDK (package
// client) inside the page, compiled to WebAssembly, and gives the page's
// JavaScript the API of docs/web.md on the global natter object. What a
// browser keeps (the device's keys, its session, its history and the
// history's search index) lives in IndexedDB, reached through the small
// JavaScript module web/dist/idb.js. Every call from JavaScript that does
// I/O returns a Promise and runs in a goroutine, so the page's thread
// never blocks.
package webapp
