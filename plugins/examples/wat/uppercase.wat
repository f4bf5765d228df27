;; uppercase: ASCII-upper-cases each record's value and keeps its key.
;; Written by hand against abi.md, with no SDK: a bump allocator, the batch
;; decoder and the output encoder. Build: wat2wasm uppercase.wat -o uppercase.wasm
(module
  (memory (export "memory") 2)
  (data (i32.const 64) "uppercase: malformed input batch")  ;; 32 bytes
  (global $heap (mut i32) (i32.const 1024))  ;; next free byte
  (global $out (mut i32) (i32.const 0))      ;; output buffer, reused
  (global $out_cap (mut i32) (i32.const 0))

  (func (export "helios_abi_version") (result i32) (i32.const 1))

  ;; Bump allocator (8-byte aligned), growing memory as needed.
  (func $alloc (export "helios_alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then unreachable))  ;; wrapped
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                                          (memory.size)))
                    (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  ;; Frees only the most recent allocation: the host reallocates its input
  ;; buffer only when a batch outgrows it (doubling), so little is lost.
  (func (export "helios_dealloc") (param $ptr i32) (param $len i32)
    (if (i32.eq (i32.add (local.get $ptr) (local.get $len)) (global.get $heap))
      (then (global.set $heap (local.get $ptr)))))

  ;; No configuration to check.
  (func (export "helios_init") (param i32 i32) (result i64) (i64.const 0))

  ;; A batch-level failure (status 1) with the message at 64.
  (func $bad_input (result i64)
    (i32.store (global.get $out) (i32.const 0x314f4c48))         ;; "HLO1"
    (i32.store offset=4 (global.get $out) (i32.const 1))          ;; status: bad input
    (i32.store offset=8 (global.get $out) (i32.const 32))         ;; message length
    (i32.store offset=12 (global.get $out) (i32.const 0))
    (memory.copy (i32.add (global.get $out) (i32.const 16)) (i32.const 64) (i32.const 32))
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32)) (i64.const 48)))

  (func (export "helios_process") (param $in i32) (param $len i32) (result i64)
    (local $end i32) (local $count i32) (local $i i32) (local $p i32) (local $o i32)
    (local $kl i32) (local $vl i32) (local $hl i32) (local $src i32) (local $dst i32) (local $stop i32) (local $c i32) (local $v v128)
    ;; Every record shrinks (48-byte header in, 32 out, headers dropped), so
    ;; an output as large as the input plus 48 always fits.
    (if (i32.lt_u (global.get $out_cap) (i32.add (local.get $len) (i32.const 48)))
      (then
        (global.set $out_cap (i32.add (local.get $len) (i32.const 48)))
        (global.set $out (call $alloc (global.get $out_cap)))))
    (local.set $end (i32.add (local.get $in) (local.get $len)))
    (if (i32.lt_u (local.get $len) (i32.const 16)) (then (return (call $bad_input))))
    (if (i32.ne (i32.load (local.get $in)) (i32.const 0x31424c48)) (then (return (call $bad_input))))  ;; "HLB1"
    (local.set $count (i32.load offset=4 (local.get $in)))
    (local.set $p (i32.add (local.get $in) (i32.const 16)))
    (local.set $o (i32.add (global.get $out) (i32.const 16)))
    (block $done
      (loop $records
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (if (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 48)) (then (return (call $bad_input))))
        (local.set $kl (i32.load (local.get $p)))
        (local.set $vl (i32.load offset=4 (local.get $p)))
        (local.set $hl (i32.load offset=8 (local.get $p)))
        ;; key, value and headers must lie inside the batch (64-bit sum: no wrap)
        (if (i64.gt_u (i64.add (i64.add (i64.extend_i32_u (local.get $kl)) (i64.extend_i32_u (local.get $vl)))
                               (i64.extend_i32_u (local.get $hl)))
                      (i64.extend_i32_u (i32.sub (i32.sub (local.get $end) (local.get $p)) (i32.const 48))))
          (then (return (call $bad_input))))
        ;; entry header: kind 0, input index, key_len, value_len, headers_len 0, code 0, timestamp
        (i32.store (local.get $o) (i32.const 0))
        (i32.store offset=4 (local.get $o) (local.get $i))
        (i32.store offset=8 (local.get $o) (local.get $kl))
        (i32.store offset=12 (local.get $o) (local.get $vl))
        (i32.store offset=16 (local.get $o) (i32.const 0))
        (i32.store offset=20 (local.get $o) (i32.const 0))
        (i64.store offset=24 (local.get $o) (i64.load offset=24 (local.get $p)))
        (memory.copy (i32.add (local.get $o) (i32.const 32)) (i32.add (local.get $p) (i32.const 48)) (local.get $kl))
        ;; the value, upper-cased 16 bytes at a time (SIMD), then byte by byte:
        ;; a byte c in 'a'..'z' is exactly one with (c - 97) <u 26; subtract 32
        (local.set $src (i32.add (i32.add (local.get $p) (i32.const 48)) (local.get $kl)))
        (local.set $dst (i32.add (i32.add (local.get $o) (i32.const 32)) (local.get $kl)))
        (local.set $stop (i32.add (local.get $src) (local.get $vl)))
        (block $wide_done
          (loop $wide
            (br_if $wide_done (i32.lt_u (i32.sub (local.get $stop) (local.get $src)) (i32.const 16)))
            (local.set $v (v128.load align=1 (local.get $src)))
            (v128.store align=1 (local.get $dst)
              (i8x16.sub (local.get $v)
                (v128.and
                  (i8x16.lt_u (i8x16.sub (local.get $v) (v128.const i8x16 97 97 97 97 97 97 97 97 97 97 97 97 97 97 97 97))
                              (v128.const i8x16 26 26 26 26 26 26 26 26 26 26 26 26 26 26 26 26))
                  (v128.const i8x16 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32))))
            (local.set $src (i32.add (local.get $src) (i32.const 16)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
            (br $wide)))
        (block $vdone
          (loop $bytes
            (br_if $vdone (i32.ge_u (local.get $src) (local.get $stop)))
            (local.set $c (i32.load8_u (local.get $src)))
            (i32.store8 (local.get $dst)
              (select (i32.sub (local.get $c) (i32.const 32)) (local.get $c)
                      (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))))
            (local.set $src (i32.add (local.get $src) (i32.const 1)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
            (br $bytes)))
        (local.set $o (local.get $dst))
        (local.set $p (i32.add (local.get $stop) (local.get $hl)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $records)))
    ;; output header: magic, status 0, count
    (i32.store (global.get $out) (i32.const 0x314f4c48))
    (i32.store offset=4 (global.get $out) (i32.const 0))
    (i32.store offset=8 (global.get $out) (local.get $count))
    (i32.store offset=12 (global.get $out) (i32.const 0))
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $o) (global.get $out)))))
)
