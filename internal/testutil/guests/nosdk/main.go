// Command nosdk is a valid WASI program that is not a helios operator: it
// exports none of the ABI functions.
package main

import "fmt"

func main() { fmt.Println("hello from a plain WASI program") }
