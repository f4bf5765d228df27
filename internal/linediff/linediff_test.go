package linediff

import (
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		diff      string
	}{
		{name: "equal", want: "a b c", got: "a b c", diff: ""},
		{name: "both empty", want: "", got: "", diff: ""},
		{name: "changed line", want: "a b c d e f g", got: "a b C d e f g",
			diff: "--- want\n+++ got\n@@ -1 +1 @@\n a\n b\n-c\n+C\n d\n e\n"},
		{name: "missing at end", want: "a b c", got: "a b",
			diff: "--- want\n+++ got\n@@ -1 +1 @@\n a\n b\n-c\n"},
		{name: "extra at start", want: "b c", got: "x b c",
			diff: "--- want\n+++ got\n@@ -1 +1 @@\n+x\n b\n c\n"},
		{name: "two hunks", want: "1 2 3 4 5 6 7 8 9 10", got: "1 X 3 4 5 6 7 8 Y 10",
			diff: "--- want\n+++ got\n@@ -1 +1 @@\n 1\n-2\n+X\n 3\n 4\n@@ -7 +7 @@\n 7\n 8\n-9\n+Y\n 10\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unified("want", "got", strings.Fields(tt.want), strings.Fields(tt.got), 2); got != tt.diff {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.diff)
			}
		})
	}
}

func TestUnifiedLargeFallsBack(t *testing.T) {
	a := make([]string, 5000)
	b := make([]string, 5000)
	for i := range a {
		a[i], b[i] = "x", "y"
	}
	d := Unified("want", "got", a, b, 1)
	if strings.Count(d, "\n-x") != 5000 || strings.Count(d, "\n+y") != 5000 {
		t.Fatalf("fallback diff lost lines: %d bytes", len(d))
	}
}
