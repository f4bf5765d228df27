#!/usr/bin/env bash
# make bench: Go benchmarks, printed as tables with ratios taken in the same run,
# then written to build/bench.json for `make bench-check`.
# HELIOS_BENCH_RECORDS sets the end-to-end input (default: 20M records, a
# sustained run of ~20 s at 1M records/s); HELIOS_BENCH_ROUNDS how many
# pipeline and raw Pebble runs each end-to-end case alternates (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/bench.txt
mkdir -p build
export HELIOS_BENCH_RECORDS=${HELIOS_BENCH_RECORDS:-20000000}
: > "$OUT"
echo "running benchmarks (raw output in $OUT) ..."
go test -run '^$' -bench 'Uppercase' -benchtime 2s ./plugins/examples/go/uppercase/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'Count' -benchtime 2s ./plugins/examples/go/count/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'ABIOverhead' -benchtime 2s ./host/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'EndToEnd' -benchtime 1x -timeout 120m ./runtime/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'FlowControl' -benchtime 3x -timeout 30m ./runtime/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'SchemaMigration' -benchtime 3x -timeout 30m ./runtime/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'SwapStall' -benchtime 20x -timeout 30m ./runtime/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'KafkaToKafka|ChangelogRestore' -benchtime 1x -timeout 30m ./runtime/ | tee -a "$OUT" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'BoundedMemory' -benchtime 1x -timeout 30m ./cmd/helios-wasm/ | tee -a "$OUT" | grep -E '^Benchmark' || true
# Both engines in one process when a C compiler can build the wasmtime one.
ENGINE_TAGS=()
if command -v gcc >/dev/null; then ENGINE_TAGS=(-tags wasmtime); fi
CGO_ENABLED=1 go test "${ENGINE_TAGS[@]}" -run '^$' -bench 'Engines' -benchtime 1s -timeout 30m ./host/ | tee -a "$OUT" | grep -E '^Benchmark' || true
mkdir -p build/bench-bin
CGO_ENABLED=0 go build -trimpath -o build/bench-bin/helios-wasm ./cmd/helios-wasm
size_wazero=$(stat -c %s build/bench-bin/helios-wasm)
size_wasmtime=""
if [ ${#ENGINE_TAGS[@]} -gt 0 ]; then
  CGO_ENABLED=1 go build -tags wasmtime -trimpath -o build/bench-bin/helios-wasm-wasmtime ./cmd/helios-wasm
  size_wasmtime=$(stat -c %s build/bench-bin/helios-wasm-wasmtime)
fi

metric() { # metric NAME-REGEX UNIT: value of UNIT on the first matching line
  awk -v re="$1" -v unit="$2" '$1 ~ re { for (i = 2; i < NF; i++) if ($(i+1) == unit) { print $i; exit } }' "$OUT"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo
echo "## uppercase: WASM (Go guest) vs the same function compiled natively, ns/record"
echo
echo "| batch | native | wasm | ratio |"
echo "|---|---|---|---|"
for n in 1 100 1000 10000; do
  nat=$(metric "Uppercase/batch=$n/native" ns/record); w=$(metric "Uppercase/batch=$n/wasm" ns/record)
  echo "| $n | $nat | $w | $(ratio "$w" "$nat")x |"
done
echo
echo "## Per language, batch 1000: ns/record and ratio to native Go in the same run"
echo
echo "| language | uppercase | vs native | count | vs native |"
echo "|---|---|---|---|---|"
nu=$(metric "Uppercase/batch=1000/native-" ns/record); nc=$(metric "Count/batch=1000/native-" ns/record)
echo "| native Go (in-process SDK) | $nu | 1.00x | $nc | 1.00x |"
for l in go rust c cpp assemblyscript zig wat; do
  sub="lang=$l-"; [ "$l" = go ] && sub="wasm-"
  u=$(metric "Uppercase/batch=1000/$sub" ns/record); c=$(metric "Count/batch=1000/$sub" ns/record)
  cu="-"; cc="-"
  [ -n "$u" ] && cu="$(ratio "$u" "$nu")x"
  [ -n "$c" ] && cc="$(ratio "$c" "$nc")x"
  echo "| $l | ${u:--} | $cu | ${c:--} | $cc |"
  if [ "$l" = go ]; then
    f=$(metric "Uppercase/batch=1000/go-floor-" ns/record)
    echo "| go by hand, without the SDK (the floor) | ${f:--} | $([ -n "$f" ] && echo "$(ratio "$f" "$nu")x" || echo -) | - | - |"
  fi
done
echo
echo "## ABI overhead: WAT passthrough, whole batch path, ns/record"
echo
echo "| batch | ns/record | allocs/batch |"
echo "|---|---|---|"
for n in 1 100 1000 10000; do
  echo "| $n | $(metric "ABIOverhead/batch=$n-" ns/record) | $(metric "ABIOverhead/batch=$n-" allocs/op) |"
done
echo "| 1000, floor: the batch encoded beforehand and copied in one move, the guest's call, no decoding | $(metric "ABIOverhead/batch=1000/floor-" ns/record) | 0 |"
echo
echo "## End to end, log -> log, exactly-once, ${HELIOS_BENCH_RECORDS} x 100-byte records, batch 1000"
echo
echo "Medians of ${HELIOS_BENCH_ROUNDS:-3} pipeline runs, each followed by raw synced Pebble writes of the same bytes (1000 per batch)."
echo
echo "| run | records/s | raw Pebble records/s | vs raw Pebble |"
echo "|---|---|---|---|"
for c in "plugin=wat-passthrough/partitions=2-" "plugin=wat-passthrough/partitions=4-" "plugin=uppercase/partitions=2-"; do
  v=$(metric "EndToEnd/$c" records/s); raw=$(metric "EndToEnd/$c" raw-records/s)
  echo "| ${c%-} | ${v%.*} | ${raw%.*} | $(ratio "$v" "$raw")x |"
done
echo
on=$(metric "FlowControl/disabled=false" records/s); off=$(metric "FlowControl/disabled=true" records/s)
echo "## Flow control cost (end to end, 2M records, WAT passthrough)"
echo
echo "| flow control | records/s | ratio |"
echo "|---|---|---|"
echo "| on | ${on%.*} | $(ratio "$on" "$off")x |"
echo "| off | ${off%.*} | 1.00x |"
echo
echo "## Schema migration (end to end, 500k ~100-byte JSON records written with v1, read at v2, WAT passthrough)"
echo
echo "| pipeline | ns/record | ratio |"
echo "|---|---|---|"
echo "| without --schema | $(metric SchemaMigration ns/record-passthrough) | 1.00x |"
echo "| --schema (v1 -> v2: default, promotion, rename) | $(metric SchemaMigration ns/record-schema) | $(metric SchemaMigration x-passthrough)x |"
echo "| --schema (v2 -> v3 by the Go cents WASM migrator, ~50-byte records) | $(metric SchemaMigration ns/record-wasm-migrator) | $(metric SchemaMigration x-passthrough-wasm)x |"
echo
echo "## Hot swap (Go guests, 2 partitions, batch 1000, 20 swaps)"
echo
echo "| median gap between batches | median stall at the switch | median wait before the switch (preparation competing for 2 cores) |"
echo "|---|---|---|"
echo "| $(metric SwapStall µs-gap-median) µs | $(metric SwapStall µs-stall-median) µs | $(metric SwapStall µs-before-switch-median) µs |"
echo
echo "## Kafka -> Kafka exactly once (one local broker, 200k x 100-byte records, 4 partitions)"
echo
kp=$(metric KafkaToKafka pipeline-records/s); kf=$(metric KafkaToKafka franz-go-records/s)
echo "| | records/s | vs franz-go |"
echo "|---|---|---|"
echo "| pipeline (WAT passthrough; one instance of a fleet: outputs, marker and the group's offsets per Kafka transaction) | ${kp:--} | $(ratio "${kp:-0}" "${kf:-0}")x |"
echo "| bare franz-go transactional copy loop (no offsets in its transactions) | ${kf:--} | 1.00x |"
echo "| changelog restore of a moved partition (200k keys into a fresh data directory) | $(metric ChangelogRestore records/s) | |"
echo
echo "## Bounded memory (slow operator, 1.1 GB backlog, --memory-limit 256)"
echo
echo "| peak RSS | records/s (operator-bound) |"
echo "|---|---|"
echo "| $(metric BoundedMemory MiB-peak-RSS) MiB | $(metric BoundedMemory records/s) |"
echo
echo "## Engines side by side (uppercase operator; wasmtime only when gcc is present)"
echo
echo "| language | batch | wazero ns/record | wasmtime ns/record | wasmtime vs wazero |"
echo "|---|---|---|---|---|"
for l in go rust c cpp assemblyscript zig wat; do
  for n in 1 100 1000; do
    z=$(metric "Engines/engine=wazero/lang=$l/batch=$n-" ns/record); w=$(metric "Engines/engine=wasmtime/lang=$l/batch=$n-" ns/record)
    r="-"; [ -n "$w" ] && r="$(ratio "$w" "$z")x"
    echo "| $l | $n | ${z:--} | ${w:--} | $r |"
  done
done
ms() { awk -v v="$1" 'BEGIN { if (v != "") printf "%.1f ms", v / 1e6; else print "-" }'; }
echo
echo "| Go guest (uppercase) | wazero | wasmtime |"
echo "|---|---|---|"
for what in compile=cold compile=cached swap-prepare; do
  echo "| $what | $(ms "$(metric "Engines/engine=wazero/$what/lang=go-" ns/op)") | $(ms "$(metric "Engines/engine=wasmtime/$what/lang=go-" ns/op)") |"
done
mib() { awk -v v="$1" 'BEGIN { if (v != "") printf "%.1f MiB", v / 1048576; else print "-" }'; }
echo "| binary size (helios-wasm, -trimpath) | $(mib "$size_wazero") | $(mib "$size_wasmtime") |"
echo
# build/bench.json: every metric above and the ratios `make bench-check`
# compares with bench/baseline.json.
go run ./internal/cmd/bench-check -record -txt "$OUT" -json build/bench.json
