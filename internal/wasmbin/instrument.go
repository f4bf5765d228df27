// Package wasmbin rewrites WebAssembly binaries. InstrumentLoops makes any
// module interruptible at a cost of one global load and branch per loop
// iteration, instead of wazero's termination check (an exit to Go at every
// loop header and function entry, which costs a Go guest about 7x).
package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
)

var errTruncated = errors.New("truncated")

const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secCode      = 10
	kindGlobal   = 3
	opLoop       = 0x03
	opEnd        = 0x0b
	opGlobalGet  = 0x23
	opIf         = 0x04
	opUnreachble = 0x00
	blockEmpty   = 0x40
)

// sectionRank orders sections as the spec requires (custom sections aside).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id   byte
	body []byte
}

// InstrumentLoops adds a mutable i32 global exported as exportName (initially
// 0) and, at the start of every loop body, a check that traps with
// `unreachable` once the global is non-zero. Setting the global from the
// host therefore stops a running call within one loop iteration; code
// without loops runs to completion in bounded time, and unbounded recursion
// exhausts the stack. DWARF sections are dropped (their code offsets would be
// stale). The result is a valid module whose other indices are unchanged.
func InstrumentLoops(wasm []byte, exportName string) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly binary")
	}
	if !bytes.Equal(wasm[4:8], []byte{1, 0, 0, 0}) {
		return nil, fmt.Errorf("unsupported binary version %x", wasm[4:8])
	}
	var secs []section
	r := &reader{b: wasm, pos: 8}
	for r.pos < len(r.b) && r.err == nil {
		id := r.byte()
		n := int(r.u32())
		start := r.pos
		r.skip(n)
		if r.err != nil {
			break
		}
		secs = append(secs, section{id, wasm[start:r.pos]})
	}
	if r.err != nil {
		return nil, fmt.Errorf("section table: %w", r.err)
	}

	importedGlobals, definedGlobals := uint32(0), uint32(0)
	for _, s := range secs {
		switch s.id {
		case secImport:
			n, err := countImportedGlobals(s.body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			importedGlobals = n
		case secGlobal:
			gr := &reader{b: s.body}
			definedGlobals = gr.u32()
			if gr.err != nil {
				return nil, fmt.Errorf("global section: %w", gr.err)
			}
		}
	}
	flag := importedGlobals + definedGlobals // index of the new global

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, opEnd} // mut i32 = i32.const 0
	newExport := appendU32(nil, uint32(len(exportName)))
	newExport = append(newExport, exportName...)
	newExport = append(append(newExport, kindGlobal), appendU32(nil, flag)...)
	haveGlobal, haveExport := false, false
	for _, s := range secs {
		if s.id != secCustom {
			// Insert missing global/export sections at their place in the order.
			if !haveGlobal && sectionRank[s.id] > sectionRank[secGlobal] {
				emit(secGlobal, append([]byte{1}, newGlobal...))
				haveGlobal = true
			}
			if !haveExport && sectionRank[s.id] > sectionRank[secExport] {
				emit(secExport, append([]byte{1}, newExport...))
				haveExport = true
			}
		}
		switch s.id {
		case secCustom:
			nr := &reader{b: s.body}
			if name := nr.name(); nr.err == nil && bytes.HasPrefix(name, []byte(".debug")) {
				continue
			}
			emit(s.id, s.body)
		case secGlobal:
			body, err := appendVecEntry(s.body, newGlobal)
			if err != nil {
				return nil, fmt.Errorf("global section: %w", err)
			}
			emit(s.id, body)
			haveGlobal = true
		case secExport:
			body, err := appendVecEntry(s.body, newExport)
			if err != nil {
				return nil, fmt.Errorf("export section: %w", err)
			}
			emit(s.id, body)
			haveExport = true
		case secCode:
			body, err := instrumentCode(s.body, flag)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(s.id, body)
		default:
			emit(s.id, s.body)
		}
	}
	if !haveGlobal {
		emit(secGlobal, append([]byte{1}, newGlobal...))
	}
	if !haveExport {
		emit(secExport, append([]byte{1}, newExport...))
	}
	return out, nil
}

// appendVecEntry increments a vector's count and appends entry.
func appendVecEntry(body, entry []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(nil, n+1)
	out = append(out, body[r.pos:]...)
	return append(out, entry...), nil
}

func countImportedGlobals(body []byte) (uint32, error) {
	r := &reader{b: body}
	n := r.u32()
	var globals uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0: // func
			r.u32()
		case 1: // table: reftype, limits
			r.byte()
			skipLimits(r)
		case 2: // memory
			skipLimits(r)
		case 3: // global: valtype, mut
			r.byte()
			r.byte()
			globals++
		case 4: // tag
			r.byte()
			r.u32()
		default:
			r.fail(fmt.Errorf("unknown import kind %d", kind))
		}
	}
	return globals, r.err
}

func skipLimits(r *reader) {
	flags := r.u32()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// instrumentCode rewrites every function body of the code section.
func instrumentCode(body []byte, flag uint32) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	check := append(appendU32([]byte{opGlobalGet}, flag), opIf, blockEmpty, opUnreachble, opEnd)
	var fn []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := int(r.u32())
		start := r.pos
		r.skip(size)
		if r.err != nil {
			break
		}
		var err error
		fn, err = instrumentFunc(fn[:0], body[start:r.pos], check)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.pos != len(body) {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

// instrumentFunc copies one function body, inserting check after each
// loop's block type.
func instrumentFunc(dst, fn, check []byte) ([]byte, error) {
	r := &reader{b: fn}
	locals := r.u32()
	for j := uint32(0); j < locals && r.err == nil; j++ {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	copied := 0 // the locals are copied with the first chunk
	for r.pos < len(fn) && r.err == nil {
		op := r.byte()
		if op == opLoop {
			r.sleb(5) // block type
			dst = append(dst, fn[copied:r.pos]...)
			dst = append(dst, check...)
			copied = r.pos
			continue
		}
		skipImmediates(r, op)
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(dst, fn[copied:]...), nil
}
