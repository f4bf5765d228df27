//go:build !race

package runtime

import "testing"

// TestHotSwap50UnderLoad: 50 swaps back and forth while over 100,000
// records a second arrive on three partitions. It needs full speed, so it is
// built without the race detector (make test runs it separately).
func TestHotSwap50UnderLoad(t *testing.T) { hotSwapUnderLoad(t, 50, 2000, 100_000) }
