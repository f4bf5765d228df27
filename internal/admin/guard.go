package admin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// hostSet is the Host header values a server answers to: host -> ports,
// where the port "" matches any port.
type hostSet map[string]map[string]bool

func (h hostSet) add(host, port string) {
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if h[host] == nil {
		h[host] = map[string]bool{}
	}
	h[host][port] = true
}

func (h hostSet) with(o hostSet) hostSet {
	for host, ports := range o {
		for port := range ports {
			h.add(host, port)
		}
	}
	return h
}

// allows reports whether hostport (a Host header, or an Origin's host; the
// port defaults to defPort) names this server.
func (h hostSet) allows(hostport, defPort string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil { // no port
		host, port = hostport, defPort
	}
	ports := h[strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))]
	return ports[port] || ports[""]
}

func (h hostSet) String() string {
	var out []string
	for host, ports := range h {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		for port := range ports {
			if port == "" {
				out = append(out, host)
			} else {
				out = append(out, host+":"+port)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// listenHosts is what a listener on addr (bound to bound) answers to: the
// address as configured and as bound (the port resolved), and for a
// loopback listener every loopback spelling of it.
func listenHosts(addr string, bound net.Addr) hostSet {
	h := hostSet{}
	host, _, _ := net.SplitHostPort(addr)
	_, port, _ := net.SplitHostPort(bound.String())
	if host != "" && !net.ParseIP(host).Equal(net.IPv4zero) && !net.ParseIP(host).Equal(net.IPv6unspecified) {
		h.add(host, port)
	}
	if isLoopback(host) {
		for _, l := range []string{"localhost", "127.0.0.1", "::1"} {
			h.add(l, port)
		}
	}
	return h
}

// ErrBadAllowedHost is an unusable Config.AllowedHosts entry.
var ErrBadAllowedHost = errors.New("admin: allowed host")

// parseHosts parses allowed Host values: "host:port", or "host" for any port.
func parseHosts(list []string) (hostSet, error) {
	h := hostSet{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			host, port = s, ""
		}
		if n, perr := strconv.Atoi(port); port != "" && (perr != nil || n < 1 || n > 65535) || host == "" || strings.ContainsAny(host, "/@ ") {
			return nil, fmt.Errorf("%w %q: want HOST or HOST:PORT", ErrBadAllowedHost, s)
		}
		h.add(host, port)
	}
	return h, nil
}

// guard refuses, before any handler runs:
//   - a Host header that does not name this server (421): a web page whose
//     name was re-pointed at this address (DNS rebinding) sends its own name;
//   - a request from another origin's web page (403): browsers send Origin
//     on cross-origin POSTs and Sec-Fetch-Site on every request, and a
//     plain form or text/plain POST needs no CORS preflight.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allows(r.Host, "80") {
			http.Error(w, fmt.Sprintf("admin API: Host %q is not an address of this server (allowed: %s); "+
				"connect by one of those, or add it to the server's allowed hosts", r.Host, s.hosts), http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !s.sameOrigin(o) {
			http.Error(w, fmt.Sprintf("admin API: cross-origin request from %q refused; use the CLI or curl", o), http.StatusForbidden)
			return
		}
		switch site := r.Header.Get("Sec-Fetch-Site"); site {
		case "", "same-origin", "none":
		default:
			http.Error(w, fmt.Sprintf("admin API: %s browser request refused; use the CLI or curl", site), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether an Origin header names this server.
func (s *Server) sameOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // includes "null" (sandboxed frames, file: pages)
	}
	switch u.Scheme {
	case "http":
		return s.hosts.allows(u.Host, "80")
	case "https":
		return s.hosts.allows(u.Host, "443")
	}
	return false
}
