// Package hook connects the Go SDK to its window package without widening
// the SDK's public API: the SDK fills these in at init.
package hook

// RunBatch runs an operator (a helios.Operator, passed as any to avoid an
// import cycle) over an encoded batch and returns the encoded output, as
// helios_process does.
var RunBatch func(in []byte, op any) []byte

// OnBatch, when set, is called at the start of every batch call, before the
// first record.
var OnBatch func()
