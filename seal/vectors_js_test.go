//go:build js

package seal

// Under js/wasm (the browser build) TestCrossBuildVectors writes what this
// build seals to vectorsMine (with -update-vectors; Node's fs shim writes
// the real file) and must open vectorsOther, which the native build sealed.
const (
	vectorsMine  = "testdata/vectors-js.json"
	vectorsOther = "testdata/vectors-native.json"
)
