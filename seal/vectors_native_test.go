//go:build !js

package seal

// In a native build TestCrossBuildVectors writes what this build seals to
// vectorsMine (with -update-vectors) and must open vectorsOther, which the
// js/wasm (browser) build sealed.
const (
	vectorsMine  = "testdata/vectors-native.json"
	vectorsOther = "testdata/vectors-js.json"
)
