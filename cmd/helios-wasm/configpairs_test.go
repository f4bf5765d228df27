package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseConfigPairs: --config splits at the first '=', "k=" is the key k
// with an empty value, repeats are kept in order (the plugin sees them all;
// config_get returns the last), and a pair without key or '=' is refused.
func TestParseConfigPairs(t *testing.T) {
	tests := []struct {
		in   []string
		want string // key=value pairs, '|' separated
		err  string
	}{
		{in: []string{"expr=a=b"}, want: "expr=a=b"},
		{in: []string{"k="}, want: "k="},
		{in: []string{"mode=first", "mode=fast"}, want: "mode=first|mode=fast"},
		{in: []string{"k= spaced "}, want: "k= spaced "},
		{in: []string{"novalue"}, err: `--config "novalue": want key=value`},
		{in: []string{"=v"}, err: `--config "=v": want key=value`},
	}
	for _, tt := range tests {
		got, err := parseConfig(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		var pairs []string
		for _, h := range got {
			pairs = append(pairs, fmt.Sprintf("%s=%s", h.Key, h.Value))
		}
		if err != nil || strings.Join(pairs, "|") != tt.want {
			t.Errorf("%q: got %q %v, want %q", tt.in, pairs, err, tt.want)
		}
	}
}
