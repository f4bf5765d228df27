//go:build wasmtime

package host

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
)

// The host's own wasi_snapshot_preview1 for engines that lack a configurable
// one (wasmtime's reads the real clocks and random source). It shows what
// wazero's does with the module configuration of wazero.go: no arguments,
// environment, filesystem or preopened directories; an empty stdin; stdout
// and stderr to the instance's tailWriter; clocks and random bytes from its
// determinism; sleeps that return at once. Functions that only make sense
// with files return EBADF (or, on stdio, the errno of a character device).
const wasiModule = "wasi_snapshot_preview1"

const (
	errnoSuccess  = 0
	errnoBadf     = 8
	errnoInval    = 28
	errnoNosys    = 52
	errnoNotdir   = 54
	errnoNotsock  = 57
	errnoNotsup   = 58
	errnoSpipe    = 70
	errnoNotcapab = 76
)

var i64t = api.ValueTypeI64

// wasiFunc builds a signature of i32 parameters, with i64 at the given
// positions, returning an errno.
func wasiFunc(name string, n int, i64At []int, fn hostFn) hostFunc {
	params := make([]api.ValueType, n)
	for i := range params {
		params[i] = i32
	}
	for _, i := range i64At {
		params[i] = i64t
	}
	return hostFunc{name, params, []api.ValueType{i32}, fn}
}

// wasiErrno is a function that only returns an errno: EBADF for any
// descriptor but stdio, onStdio for those.
func wasiErrno(name string, n int, i64At []int, onStdio int32) hostFunc {
	return wasiFunc(name, n, i64At, func(_ context.Context, _ *Instance, _ guestMemory, s []uint64) {
		if uint32(s[0]) <= 2 {
			errno(s, onStdio)
			return
		}
		errno(s, errnoBadf)
	})
}

func errno(s []uint64, e int32) { s[0] = uint64(uint32(e)) }

func put32(mem guestMemory, ptr, v uint32) bool {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return mem.Write(ptr, b[:])
}

func put64(mem guestMemory, ptr uint32, v uint64) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return mem.Write(ptr, b[:])
}

// wasiZeros answers args_sizes_get and environ_sizes_get: none.
func wasiZeros(_ context.Context, _ *Instance, mem guestMemory, s []uint64) {
	if !put32(mem, uint32(s[0]), 0) || !put32(mem, uint32(s[1]), 0) {
		errno(s, errnoInval)
		return
	}
	errno(s, errnoSuccess)
}

func wasiNothing(_ context.Context, _ *Instance, _ guestMemory, s []uint64) {
	errno(s, errnoSuccess)
}

func wasiClockRes(_ context.Context, _ *Instance, mem guestMemory, s []uint64) {
	if uint32(s[0]) > 1 { // realtime and monotonic only
		errno(s, errnoInval)
		return
	}
	if !put64(mem, uint32(s[1]), 1) {
		errno(s, errnoInval)
		return
	}
	errno(s, errnoSuccess)
}

func wasiClockTime(_ context.Context, inst *Instance, mem guestMemory, s []uint64) {
	var t uint64
	switch uint32(s[0]) {
	case 0:
		sec, nsec := inst.det.walltime()
		t = uint64(sec)*1e9 + uint64(nsec)
	case 1:
		t = uint64(inst.det.nanotime())
	default:
		errno(s, errnoInval)
		return
	}
	if !put64(mem, uint32(s[2]), t) {
		errno(s, errnoInval)
		return
	}
	errno(s, errnoSuccess)
}

func wasiRandom(_ context.Context, inst *Instance, mem guestMemory, s []uint64) {
	buf, ok := mem.Read(uint32(s[0]), uint32(s[1]))
	if !ok {
		errno(s, errnoInval)
		return
	}
	inst.det.Read(buf)
	errno(s, errnoSuccess)
}

// wasiIovecs calls fn with each buffer of an iovec array and writes the byte
// count fn returns to nPtr.
func wasiIovecs(mem guestMemory, s []uint64, fn func([]byte) int) {
	iovs, n, nPtr := uint32(s[1]), uint32(s[2]), uint32(s[3])
	total := 0
	for k := range n {
		hdr, ok := mem.Read(iovs+8*k, 8)
		if !ok {
			errno(s, errnoInval)
			return
		}
		buf, ok := mem.Read(binary.LittleEndian.Uint32(hdr), binary.LittleEndian.Uint32(hdr[4:]))
		if !ok {
			errno(s, errnoInval)
			return
		}
		total += fn(buf)
	}
	if !put32(mem, nPtr, uint32(total)) {
		errno(s, errnoInval)
		return
	}
	errno(s, errnoSuccess)
}

func wasiFdWrite(_ context.Context, inst *Instance, mem guestMemory, s []uint64) {
	if fd := uint32(s[0]); fd != 1 && fd != 2 {
		errno(s, errnoBadf)
		return
	}
	wasiIovecs(mem, s, func(b []byte) int {
		n, _ := inst.stderr.Write(b)
		return n
	})
}

func wasiFdRead(_ context.Context, _ *Instance, mem guestMemory, s []uint64) {
	if uint32(s[0]) != 0 {
		errno(s, errnoBadf)
		return
	}
	wasiIovecs(mem, s, func([]byte) int { return 0 }) // stdin is empty
}

// wasiFdstat describes stdio as character devices (fdstat: 24 bytes, the
// file type first).
func wasiFdstat(_ context.Context, _ *Instance, mem guestMemory, s []uint64) {
	stdioStat(mem, s, 24, 0)
}

// wasiFilestat likewise (filestat: 64 bytes, the file type at 16).
func wasiFilestat(_ context.Context, _ *Instance, mem guestMemory, s []uint64) {
	stdioStat(mem, s, 64, 16)
}

// stdioStat writes a zeroed stat record of size bytes with the character
// device file type at typeAt, for stdio descriptors only.
func stdioStat(mem guestMemory, s []uint64, size, typeAt int) {
	if uint32(s[0]) > 2 {
		errno(s, errnoBadf)
		return
	}
	b := make([]byte, size)
	b[typeAt] = 2 // character device
	if !mem.Write(uint32(s[1]), b) {
		errno(s, errnoInval)
		return
	}
	errno(s, errnoSuccess)
}

// wasiPoll answers every subscription at once: clocks have expired (sleeps
// do not wait), stdio is ready, other descriptors are bad.
func wasiPoll(_ context.Context, _ *Instance, mem guestMemory, s []uint64) {
	in, out, n, nPtr := uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[3])
	if n == 0 {
		errno(s, errnoInval)
		return
	}
	for k := range n {
		sub, ok := mem.Read(in+48*k, 48)
		if !ok {
			errno(s, errnoInval)
			return
		}
		var ev [32]byte
		copy(ev[:8], sub[:8]) // userdata
		ev[10] = sub[8]       // type
		switch sub[8] {
		case 0: // clock
		case 1, 2: // fd_read, fd_write
			if binary.LittleEndian.Uint32(sub[16:]) > 2 {
				binary.LittleEndian.PutUint16(ev[8:], errnoBadf)
			}
		default:
			binary.LittleEndian.PutUint16(ev[8:], errnoInval)
		}
		if !mem.Write(out+32*k, ev[:]) {
			errno(s, errnoInval)
			return
		}
	}
	if !put32(mem, nPtr, n) {
		errno(s, errnoInval)
		return
	}
	errno(s, errnoSuccess)
}

func wasiProcExit(_ context.Context, _ *Instance, _ guestMemory, s []uint64) {
	panic(exitError(uint32(s[0])))
}

// wasiFuncs is every function of WASI preview 1.
var wasiFuncs = []hostFunc{
	wasiFunc("args_get", 2, nil, wasiNothing),
	wasiFunc("args_sizes_get", 2, nil, wasiZeros),
	wasiFunc("environ_get", 2, nil, wasiNothing),
	wasiFunc("environ_sizes_get", 2, nil, wasiZeros),
	wasiFunc("clock_res_get", 2, nil, wasiClockRes),
	wasiFunc("clock_time_get", 3, []int{1}, wasiClockTime),
	wasiErrno("fd_advise", 4, []int{1, 2}, errnoSpipe),
	wasiErrno("fd_allocate", 3, []int{1, 2}, errnoSpipe),
	wasiErrno("fd_close", 1, nil, errnoSuccess),
	wasiErrno("fd_datasync", 1, nil, errnoInval),
	wasiFunc("fd_fdstat_get", 2, nil, wasiFdstat),
	wasiErrno("fd_fdstat_set_flags", 2, nil, errnoSuccess),
	wasiErrno("fd_fdstat_set_rights", 3, []int{1, 2}, errnoNotcapab),
	wasiFunc("fd_filestat_get", 2, nil, wasiFilestat),
	wasiErrno("fd_filestat_set_size", 2, []int{1}, errnoInval),
	wasiErrno("fd_filestat_set_times", 4, []int{1, 2}, errnoInval),
	wasiErrno("fd_pread", 5, []int{3}, errnoSpipe),
	wasiErrno("fd_prestat_get", 2, nil, errnoBadf),
	wasiErrno("fd_prestat_dir_name", 3, nil, errnoBadf),
	wasiErrno("fd_pwrite", 5, []int{3}, errnoSpipe),
	wasiFunc("fd_read", 4, nil, wasiFdRead),
	wasiErrno("fd_readdir", 5, []int{3}, errnoNotdir),
	wasiErrno("fd_renumber", 2, nil, errnoNotsup),
	wasiErrno("fd_seek", 4, []int{1}, errnoSpipe),
	wasiErrno("fd_sync", 1, nil, errnoInval),
	wasiErrno("fd_tell", 2, nil, errnoSpipe),
	wasiFunc("fd_write", 4, nil, wasiFdWrite),
	wasiErrno("path_create_directory", 3, nil, errnoNotdir),
	wasiErrno("path_filestat_get", 5, nil, errnoNotdir),
	wasiErrno("path_filestat_set_times", 7, []int{4, 5}, errnoNotdir),
	wasiErrno("path_link", 7, nil, errnoNotdir),
	wasiErrno("path_open", 9, []int{5, 6}, errnoNotdir),
	wasiErrno("path_readlink", 6, nil, errnoNotdir),
	wasiErrno("path_remove_directory", 3, nil, errnoNotdir),
	wasiErrno("path_rename", 6, nil, errnoNotdir),
	wasiErrno("path_symlink", 5, nil, errnoNotdir),
	wasiErrno("path_unlink_file", 3, nil, errnoNotdir),
	wasiFunc("poll_oneoff", 4, nil, wasiPoll),
	{"proc_exit", []api.ValueType{i32}, nil, wasiProcExit},
	wasiFunc("proc_raise", 1, nil, func(_ context.Context, _ *Instance, _ guestMemory, s []uint64) { errno(s, errnoNosys) }),
	wasiFunc("random_get", 2, nil, wasiRandom),
	wasiFunc("sched_yield", 0, nil, wasiNothing),
	wasiErrno("sock_accept", 3, nil, errnoNotsock),
	wasiErrno("sock_recv", 6, nil, errnoNotsock),
	wasiErrno("sock_send", 5, nil, errnoNotsock),
	wasiErrno("sock_shutdown", 2, nil, errnoNotsock),
}
