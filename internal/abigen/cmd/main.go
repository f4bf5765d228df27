// Command abigen rewrites the SDKs' generated ABI constant files from
// abi/abi.go. Run it through `go generate ./abi` (or `make generate`).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/heliosdb/helios-wasm/internal/abigen"
)

func main() {
	root, err := filepath.Abs("..")
	if len(os.Args) > 1 {
		root, err = filepath.Abs(os.Args[1])
	}
	if err == nil {
		err = abigen.Write(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "abigen:", err)
		os.Exit(1)
	}
}
