#!/usr/bin/env bash
# make profile: CPU, block and mutex profiles of the end-to-end log -> log
# benchmark (WAT passthrough, 2 partitions) next to raw synced Pebble writes
# of the same bytes, with the top entries of each printed. The profiles stay
# in build/profile/ for `go tool pprof build/profile/runtime.test build/profile/cpu.prof`.
# HELIOS_BENCH_RECORDS sets the input (default here: 3M records).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/profile
mkdir -p "$OUT"
export HELIOS_BENCH_RECORDS=${HELIOS_BENCH_RECORDS:-3000000}
HELIOS_BENCH_ROUNDS=1 go test -run '^$' -bench 'EndToEnd/plugin=wat-passthrough' -benchtime 1x \
  -cpuprofile "$OUT/cpu.prof" -blockprofile "$OUT/block.prof" -mutexprofile "$OUT/mutex.prof" \
  -o "$OUT/runtime.test" -timeout 30m ./runtime/ | grep -E '^Benchmark'
for p in cpu block mutex; do
  echo
  echo "## $p (top, cumulative)"
  go tool pprof -top -cum -nodecount 25 "$OUT/runtime.test" "$OUT/$p.prof" 2>/dev/null | sed -n '/flat%/,$p'
done
