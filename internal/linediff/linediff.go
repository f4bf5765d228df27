// Package linediff renders a readable, unified-style diff of two lists of
// lines, for `helios-wasm plugin test`.
package linediff

import (
	"fmt"
	"strings"
)

// maxCells bounds the LCS table; larger inputs fall back to comparing line
// by line, which is still exact about which lines differ.
const maxCells = 16 << 20

type op struct {
	kind byte // ' ', '-', '+'
	text string
	a, b int // 1-based line numbers in want and got (0 when absent)
}

// Unified returns a diff of want against got with context lines around
// each change, or "" when they are equal.
func Unified(wantName, gotName string, want, got []string, context int) string {
	ops := diff(want, got)
	changed := false
	for _, o := range ops {
		if o.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", wantName, gotName)
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-context)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*context || run == len(ops) {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		fmt.Fprintf(&b, "@@ -%d +%d @@\n", lineOf(ops[start:], true), lineOf(ops[start:], false))
		for _, o := range ops[start:end] {
			fmt.Fprintf(&b, "%c%s\n", o.kind, o.text)
		}
		i = end
	}
	return b.String()
}

// lineOf is the first line number on one side within ops.
func lineOf(ops []op, wantSide bool) int {
	for _, o := range ops {
		if wantSide && o.a > 0 {
			return o.a
		}
		if !wantSide && o.b > 0 {
			return o.b
		}
	}
	return 0
}

func diff(a, b []string) []op {
	// Trim the common prefix and suffix: fixtures usually differ in a few lines.
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	var ops []op
	for i := 0; i < p; i++ {
		ops = append(ops, op{' ', a[i], i + 1, i + 1})
	}
	ops = append(ops, middle(a[p:len(a)-s], b[p:len(b)-s], p)...)
	for i := 0; i < s; i++ {
		ai, bi := len(a)-s+i, len(b)-s+i
		ops = append(ops, op{' ', a[ai], ai + 1, bi + 1})
	}
	return ops
}

// middle diffs the differing middle by longest common subsequence.
func middle(a, b []string, off int) []op {
	n, m := len(a), len(b)
	var ops []op
	if n*m > maxCells {
		for i := 0; i < max(n, m); i++ {
			if i < n {
				ops = append(ops, op{'-', a[i], off + i + 1, 0})
			}
			if i < m {
				ops = append(ops, op{'+', b[i], 0, off + i + 1})
			}
		}
		return ops
	}
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], off + i + 1, off + j + 1})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], off + i + 1, 0})
			i++
		default:
			ops = append(ops, op{'+', b[j], 0, off + j + 1})
			j++
		}
	}
	return ops
}
