// Package runtime runs helios-wasm pipelines: a source is read in batches per
// partition, each batch goes through a WebAssembly operator (package host),
// and the outputs, the source offsets and the operator's state changes are
// committed exactly once by a TransactionCoordinator doing two-phase commit
// over its participants (sink, OffsetManager, StateStore).
//
// The package is embeddable: it never reads flags or the environment, every
// type takes a context and returns errors, and the CLI in cmd/helios-wasm is
// one user of it.
package runtime
