// Package helioswasm holds the guest SDK sources, embedded so that
// `helios-wasm plugin new` can vendor them into a new operator project
// (the projects build offline, without fetching this module). It is not an
// API: the runtime lives in package runtime.
package helioswasm

import "embed"

// SDKSources are the files a scaffolded project vendors: the ABI package and
// the Go SDK (for Go projects), and every other language's SDK.
//
// Go tests are embedded too (a pattern cannot exclude them); scaffolding
// skips them.
//
//go:embed abi/*.go plugins/sdk/go/*.go plugins/sdk/go/internal/hook/*.go plugins/sdk/go/window/*.go
//go:embed plugins/sdk/rust/Cargo.toml plugins/sdk/rust/src/*.rs
//go:embed plugins/sdk/c/*.h
//go:embed plugins/sdk/assemblyscript/package.json plugins/sdk/assemblyscript/package-lock.json plugins/sdk/assemblyscript/transform.js plugins/sdk/assemblyscript/assembly/*.ts
//go:embed plugins/examples/zig/helios.zig
var SDKSources embed.FS
