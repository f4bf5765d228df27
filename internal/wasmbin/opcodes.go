package wasmbin

import "fmt"

// skipImmediates advances r past the immediates of opcode op. It covers the
// WebAssembly 2.0 core instruction set plus the proposals wazero runs
// (threads, tail calls, exception handling); an unknown opcode is an error,
// so a module is never rewritten on a misparse.
func skipImmediates(r *reader, op byte) {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06: // block loop if try: blocktype
		r.sleb(5)
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x19 || op == 0x0a ||
		op == 0x1a || op == 0x1b || op == 0xd1 || op == 0xd3 || (op >= 0x45 && op <= 0xc4):
		// no immediates
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18 || op == 0x0c || op == 0x0d ||
		op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15 || op == 0xd2 || op == 0xd4 || op == 0xd6 ||
		(op >= 0x20 && op <= 0x26): // one index
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x11 || op == 0x13: // call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.byte()
		}
	case op == 0x1f: // try_table: blocktype, catch clauses
		r.sleb(5)
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			switch kind := r.byte(); kind {
			case 0, 1:
				r.u32()
				r.u32()
			case 2, 3:
				r.u32()
			default:
				r.fail(fmt.Errorf("unknown catch kind %d", kind))
			}
		}
	case op >= 0x28 && op <= 0x3e: // loads and stores
		skipMemarg(r)
	case op == 0x3f || op == 0x40: // memory.size/grow
		r.u32()
	case op == 0x41:
		r.sleb(5)
	case op == 0x42:
		r.sleb(10)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0: // ref.null heaptype
		r.sleb(5)
	case op == 0xfc:
		skipFC(r)
	case op == 0xfd:
		skipSIMD(r)
	case op == 0xfe:
		skipAtomic(r)
	default:
		r.fail(fmt.Errorf("unsupported opcode %#x at byte %d", op, r.pos-1))
	}
}

func skipMemarg(r *reader) {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: explicit memory index
		r.u32()
	}
	r.u32() // offset (memory64 offsets are u64; wazero has no memory64)
}

func skipFC(r *reader) {
	switch sub := r.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init data, mem
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17: // one index
		r.u32()
	case sub == 10, sub == 12, sub == 14: // two indices
		r.u32()
		r.u32()
	default:
		r.fail(fmt.Errorf("unsupported opcode 0xfc %d", sub))
	}
}

func skipSIMD(r *reader) {
	switch sub := r.u32(); {
	case sub <= 11 || sub == 92 || sub == 93: // v128 loads/stores
		skipMemarg(r)
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract/replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane
		skipMemarg(r)
		r.byte()
	case sub <= 0x113: // every other SIMD opcode has no immediates
	default:
		r.fail(fmt.Errorf("unsupported opcode 0xfd %d", sub))
	}
}

func skipAtomic(r *reader) {
	switch sub := r.u32(); {
	case sub == 3: // atomic.fence
		r.byte()
	case sub <= 0x4e:
		skipMemarg(r)
	default:
		r.fail(fmt.Errorf("unsupported opcode 0xfe %d", sub))
	}
}
