;; A helios ABI v1 operator in WebAssembly text: every input record is
;; emitted unchanged (key, value, headers, timestamp). Used by the host tests
;; and by the ABI-overhead benchmark; it shows that the batch layout needs no
;; library to parse.
(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $out (mut i32) (i32.const 0))     ;; output buffer
  (global $outcap (mut i32) (i32.const 0))

  (func (export "helios_abi_version") (result i32) (i32.const 1))

  ;; Bump allocator; memory grows as needed. dealloc is a no-op.
  (func $alloc (export "helios_alloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))
              (i32.const 0))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) (i64.const 0))

  ;; Input record header: key_len@0 value_len@4 headers_len@8 partition@12
  ;; offset@16 timestamp@24 id@32, data@48. Output entry header: kind@0
  ;; index@4 key_len@8 value_len@12 headers_len@16 code@20 timestamp@24, data@32.
  (func (export "helios_process") (param $in i32) (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $r i32) (local $o i32) (local $data i32)
    ;; An output is never larger than the input: entry headers (32) are
    ;; smaller than record headers (48), and the output header equals the
    ;; batch header (16).
    (if (i32.lt_u (global.get $outcap) (local.get $len))
      (then
        (global.set $out (call $alloc (local.get $len)))
        (global.set $outcap (local.get $len))))
    (local.set $n (i32.load offset=4 (local.get $in)))
    (local.set $r (i32.add (local.get $in) (i32.const 16)))
    (local.set $o (i32.add (global.get $out) (i32.const 16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (local.get $o) (i32.const 0))
        (i32.store offset=4 (local.get $o) (local.get $i))
        (i32.store offset=8 (local.get $o) (i32.load (local.get $r)))
        (i32.store offset=12 (local.get $o) (i32.load offset=4 (local.get $r)))
        (i32.store offset=16 (local.get $o) (i32.load offset=8 (local.get $r)))
        (i32.store offset=20 (local.get $o) (i32.const 0))
        (i64.store offset=24 (local.get $o) (i64.load offset=24 (local.get $r)))
        (local.set $data (i32.add (i32.add (i32.load (local.get $r)) (i32.load offset=4 (local.get $r))) (i32.load offset=8 (local.get $r))))
        (memory.copy (i32.add (local.get $o) (i32.const 32)) (i32.add (local.get $r) (i32.const 48)) (local.get $data))
        (local.set $o (i32.add (local.get $o) (i32.add (i32.const 32) (local.get $data))))
        (local.set $r (i32.add (local.get $r) (i32.add (i32.const 48) (local.get $data))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store (global.get $out) (i32.const 0x314f4c48))
    (i32.store offset=4 (global.get $out) (i32.const 0))
    (i32.store offset=8 (global.get $out) (local.get $n))
    (i32.store offset=12 (global.get $out) (i32.const 0))
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $o) (global.get $out))))))
