package localkafka

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// freePorts returns n loopback ports that are free now. They are taken
// below the kernel's ephemeral range when it can be read: a port the
// kernel hands out (":0") may be given again as the local port of an
// outgoing connection, and a broker restarted on it after a kill then
// fails with "Address already in use" (seen in CI).
func freePorts(n int) ([]int, error) {
	lo, hi := nonEphemeralRange()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo {
			addr = "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if hi > lo && tries < 1000 {
				continue // taken: try another
			}
			return nil, fmt.Errorf("localkafka: no free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// nonEphemeralRange is [10000, start of the ephemeral range), or an empty
// range when that cannot be read or leaves too little room.
func nonEphemeralRange() (lo, hi int) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < 12000 {
		return 0, 0
	}
	return 10000, start
}
