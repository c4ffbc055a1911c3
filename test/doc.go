// Package test holds natterd's black-box tests: real servers on 127.0.0.1,
// real TLS, real SQLite files, spoken to frame by frame with a raw protocol
// client so that every clause of the protocol and the delivery contract
// (docs/delivery.md) is pinned independently of the SDK.
package test
