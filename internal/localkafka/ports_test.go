package localkafka

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortsAvoidEphemeralRange: the ports are distinct, can be
// listened on, and lie below the kernel's ephemeral range where it is
// known, so no outgoing connection can hold a broker's port when it
// restarts.
func TestFreePortsAvoidEphemeralRange(t *testing.T) {
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := nonEphemeralRange()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d given twice", p)
		}
		seen[p] = true
		if hi > lo && (p < lo || p >= hi) {
			t.Errorf("port %d outside [%d, %d)", p, lo, hi)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d: %v", p, err)
			continue
		}
		l.Close()
	}
}
