// Package wasmbin rewrites WebAssembly binaries. InstrumentLoops makes any
// module interruptible and preemptible for a few instructions per loop
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
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
	secData     = 11
	kindFunc    = 0
	kindGlobal  = 3
	opLoop      = 0x03
	opEnd       = 0x0b
	opCall      = 0x10
	opRetCall   = 0x12
	opRefFunc   = 0xd2
	opGlobalGet = 0x23
	opGlobalSet = 0x24
	opI32Const  = 0x41
	opI32Eqz    = 0x45
	opI32Sub    = 0x6b
	opIf        = 0x04
	blockEmpty  = 0x40
)

// TickEvery is how many loop iterations run between two calls to the tick
// import.
const TickEvery = 10_000

// sectionRank orders sections as the spec requires (custom sections aside).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id   byte
	body []byte
}

// sections splits a module into its sections.
func sections(wasm []byte) ([]section, error) {
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
	return secs, nil
}

// rewriter holds what the rewrite needs to know about the module.
type rewriter struct {
	importedFuncs uint32 // before the tick import is added
	budget        uint32 // index of the added budget global
	tick          uint32 // function index of the added tick import
	reserved      string // an export name the module may not use
}

// InstrumentLoops imports tickModule.tickName, a function () -> (), and adds
// a mutable i32 global (a budget). At the top of every loop body it
// decrements the budget and, every TickEvery iterations, calls the import and
// resets the budget. The host's tick function stops a call that is past its
// deadline (by panicking, which traps the guest) and, being Go code, lets
// the Go scheduler preempt the goroutine, so that a guest spinning in native
// code never blocks a stop-the-world GC. Code without loops runs in bounded
// time; unbounded recursion exhausts the stack.
//
// The import shifts the index of every defined function by one; calls,
// ref.func, exports, the start function, element segments and the name
// section are renumbered. DWARF sections are dropped (their code offsets
// would be stale).
//
// When startExport is not empty, the start section is removed and its
// function exported under that name instead, for the host to call like any
// other export: under its deadline, and reported as the start function
// (wazero runs a start section inside instantiation, where no deadline
// applies, and names the wrong function when it fails). A module that
// already exports startExport is refused.
func InstrumentLoops(wasm []byte, tickModule, tickName, startExport string) ([]byte, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}

	var rw rewriter
	types, importedGlobals, definedGlobals := uint32(0), uint32(0), uint32(0)
	start, hasStart := uint32(0), false
	for _, s := range secs {
		sr := &reader{b: s.body}
		switch s.id {
		case secStart:
			start, hasStart = sr.u32(), true
		case secType:
			types = sr.u32()
		case secImport:
			funcs, globals, err := countImports(s.body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			rw.importedFuncs, importedGlobals = funcs, globals
		case secGlobal:
			definedGlobals = sr.u32()
		}
		if sr.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, sr.err)
		}
	}
	rw.budget = importedGlobals + definedGlobals
	rw.tick = rw.importedFuncs                        // appended after the other function imports
	extended := []byte{secType, secImport, secGlobal} // the sections we add to, in order
	var newExport []byte
	if hasStart && startExport != "" {
		rw.reserved = startExport
		newExport = appendU32(append(appendName(nil, startExport), kindFunc), rw.fn(start))
		extended = append(extended, secExport)
	}

	newType := []byte{0x60, 0x00, 0x00} // func () -> ()
	newImport := appendName(nil, tickModule)
	newImport = appendName(newImport, tickName)
	newImport = appendU32(append(newImport, kindFunc), types)
	newGlobal := appendS32([]byte{0x7f, 0x01, opI32Const}, TickEvery) // mut i32 = TickEvery
	newGlobal = append(newGlobal, opEnd)

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	have := map[byte]bool{}
	ensure := func(before byte) {
		// Create the sections we extend when the module has none, in order.
		for _, id := range extended {
			if !have[id] && sectionRank[before] > sectionRank[id] {
				switch id {
				case secType:
					emit(id, append([]byte{1}, newType...))
				case secImport:
					emit(id, append([]byte{1}, newImport...))
				case secGlobal:
					emit(id, append([]byte{1}, newGlobal...))
				case secExport:
					emit(id, append([]byte{1}, newExport...))
				}
				have[id] = true
			}
		}
	}
	for _, s := range secs {
		var body []byte
		var err error
		if s.id != secCustom {
			ensure(s.id)
		}
		switch s.id {
		case secCustom:
			body, err = rw.custom(s.body)
			if body == nil && err == nil {
				continue // dropped
			}
		case secType:
			body, err = appendVecEntry(s.body, newType)
		case secImport:
			body, err = insertImport(s.body, newImport)
		case secGlobal:
			body, err = rw.globals(s.body, newGlobal)
		case secExport:
			body, err = rw.exports(s.body)
			if err == nil && newExport != nil {
				body, err = appendVecEntry(body, newExport)
			}
		case secStart:
			if newExport != nil {
				have[s.id] = true
				continue // exported instead
			}
			sr := &reader{b: s.body}
			body = appendU32(nil, rw.fn(sr.u32()))
			err = sr.err
		case secElement:
			body, err = rw.elements(s.body)
		case secCode:
			body, err = rw.code(s.body)
		default:
			body = s.body
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
		emit(s.id, body)
		if s.id != secCustom {
			have[s.id] = true
		}
	}
	// A module whose last section precedes ours still needs them, in order.
	ensure(secData) // ranks above all of them
	return out, nil
}

// fn maps a function index of the original module to the rewritten one.
func (rw *rewriter) fn(idx uint32) uint32 {
	if idx >= rw.importedFuncs {
		return idx + 1
	}
	return idx
}

func appendName(dst []byte, s string) []byte { return append(appendU32(dst, uint32(len(s))), s...) }

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

// insertImport puts the new function import right after the last existing
// function import, so that it takes index importedFuncs.
func insertImport(body, imp []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n+1)
	start := r.pos
	insertAt := r.pos // after the last function import
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		kind := r.byte()
		skipImportDesc(r, kind)
		if kind == kindFunc {
			insertAt = r.pos
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	out = append(out, body[start:insertAt]...)
	out = append(out, imp...)
	return append(out, body[insertAt:]...), nil
}

func countImports(body []byte) (funcs, globals uint32, err error) {
	r := &reader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		kind := r.byte()
		switch kind {
		case kindFunc:
			funcs++
		case kindGlobal:
			globals++
		}
		skipImportDesc(r, kind)
	}
	return funcs, globals, r.err
}

func skipImportDesc(r *reader, kind byte) {
	switch kind {
	case 0: // func: type index
		r.u32()
	case 1: // table: reftype, limits
		r.byte()
		skipLimits(r)
	case 2: // memory
		skipLimits(r)
	case 3: // global: valtype, mut
		r.byte()
		r.byte()
	case 4: // tag
		r.byte()
		r.u32()
	default:
		r.fail(fmt.Errorf("unknown import kind %d", kind))
	}
}

func skipLimits(r *reader) {
	flags := r.u32()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// globals renumbers ref.func in initialisers and appends the budget global.
func (rw *rewriter) globals(body, newGlobal []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n+1)
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.pos
		r.byte() // valtype
		r.byte() // mutability
		out = append(out, body[start:r.pos]...)
		out = rw.expr(out, r)
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, newGlobal...), nil
}

// expr copies a constant expression (up to and including its end),
// renumbering ref.func.
func (rw *rewriter) expr(out []byte, r *reader) []byte {
	for r.err == nil {
		op := r.byte()
		switch op {
		case opEnd:
			return append(out, op)
		case opRefFunc:
			out = appendU32(append(out, op), rw.fn(r.u32()))
		default:
			start := r.pos
			skipImmediates(r, op)
			out = append(append(out, op), r.b[start:r.pos]...)
		}
	}
	return out
}

func (rw *rewriter) exports(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.name()
		kind := r.byte()
		idx := r.u32()
		if rw.reserved != "" && string(name) == rw.reserved {
			return nil, fmt.Errorf("export name %q is reserved for the host", name)
		}
		if kind == kindFunc {
			idx = rw.fn(idx)
		}
		out = append(appendU32(out, uint32(len(name))), name...)
		out = appendU32(append(out, kind), idx)
	}
	return out, r.err
}

func (rw *rewriter) funcVec(out []byte, r *reader) []byte {
	n := r.u32()
	out = appendU32(out, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		out = appendU32(out, rw.fn(r.u32()))
	}
	return out
}

func (rw *rewriter) exprVec(out []byte, r *reader) []byte {
	n := r.u32()
	out = appendU32(out, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		out = rw.expr(out, r)
	}
	return out
}

// elements renumbers the function indices of element segments (all eight
// encodings).
func (rw *rewriter) elements(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		out = appendU32(out, flags)
		copyU32 := func() { out = appendU32(out, r.u32()) }
		copyByte := func() { out = append(out, r.byte()) }
		switch flags {
		case 0:
			out = rw.expr(out, r)
			out = rw.funcVec(out, r)
		case 1, 3:
			copyByte() // elemkind
			out = rw.funcVec(out, r)
		case 2:
			copyU32() // table
			out = rw.expr(out, r)
			copyByte()
			out = rw.funcVec(out, r)
		case 4:
			out = rw.expr(out, r)
			out = rw.exprVec(out, r)
		case 5, 7:
			copyByte() // reftype
			out = rw.exprVec(out, r)
		case 6:
			copyU32()
			out = rw.expr(out, r)
			copyByte()
			out = rw.exprVec(out, r)
		default:
			r.fail(fmt.Errorf("unknown element segment flags %d", flags))
		}
	}
	return out, r.err
}

// custom drops DWARF sections and renumbers the name section's function
// indices; other custom sections are kept as they are.
func (rw *rewriter) custom(body []byte) ([]byte, error) {
	r := &reader{b: body}
	name := r.name()
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case bytes.HasPrefix(name, []byte(".debug")):
		return nil, nil
	case string(name) != "name":
		return body, nil
	}
	out := append([]byte(nil), body[:r.pos]...)
	for r.pos < len(body) && r.err == nil {
		id := r.byte()
		size := int(r.u32())
		start := r.pos
		r.skip(size)
		if r.err != nil {
			break
		}
		sub := body[start:r.pos]
		if id == 1 || id == 2 || id == 3 { // function, local and label names: keyed by function index
			sr := &reader{b: sub}
			n := sr.u32()
			nb := appendU32(nil, n)
			for i := uint32(0); i < n && sr.err == nil; i++ {
				nb = appendU32(nb, rw.fn(sr.u32()))
				if id == 1 {
					nm := sr.name()
					nb = append(appendU32(nb, uint32(len(nm))), nm...)
					continue
				}
				m := sr.u32() // indirect name map
				nb = appendU32(nb, m)
				for j := uint32(0); j < m && sr.err == nil; j++ {
					nb = appendU32(nb, sr.u32())
					nm := sr.name()
					nb = append(appendU32(nb, uint32(len(nm))), nm...)
				}
			}
			if sr.err != nil {
				return nil, nil // a malformed name section is only debug info: drop it
			}
			sub = nb
		}
		out = append(appendU32(append(out, id), uint32(len(sub))), sub...)
	}
	if r.err != nil {
		return nil, nil
	}
	return out, nil
}

// code rewrites every function body of the code section.
func (rw *rewriter) code(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	// budget -= 1; if budget == 0 { tick(); budget = TickEvery }
	check := appendU32([]byte{opGlobalGet}, rw.budget)
	check = append(check, opI32Const, 1, opI32Sub, opGlobalSet)
	check = appendU32(check, rw.budget)
	check = appendU32(append(check, opGlobalGet), rw.budget)
	check = append(check, opI32Eqz, opIf, blockEmpty, opCall)
	check = appendU32(check, rw.tick)
	check = appendS32(append(check, opI32Const), TickEvery)
	check = appendU32(append(check, opGlobalSet), rw.budget)
	check = append(check, opEnd)
	var fn []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := int(r.u32())
		start := r.pos
		r.skip(size)
		if r.err != nil {
			break
		}
		var err error
		fn, err = rw.function(fn[:0], body[start:r.pos], check)
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

// function copies one function body, inserting check after each loop's
// block type and renumbering function references.
func (rw *rewriter) function(dst, fn, check []byte) ([]byte, error) {
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
		switch op {
		case opLoop:
			r.sleb(5) // block type
			dst = append(dst, fn[copied:r.pos]...)
			dst = append(dst, check...)
			copied = r.pos
		case opCall, opRetCall, opRefFunc:
			dst = append(dst, fn[copied:r.pos]...)
			dst = appendU32(dst, rw.fn(r.u32()))
			copied = r.pos
		default:
			skipImmediates(r, op)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(dst, fn[copied:]...), nil
}
