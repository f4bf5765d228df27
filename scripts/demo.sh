#!/usr/bin/env bash
# make demo: a real pipeline on the embedded default (one data directory).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
H="$B/helios-wasm"
D=$B/demo
rm -rf "$D" && mkdir -p "$D"
export HELIOS_DATA_DIR="$D/data"

echo "== 1. 20,000 click events into the embedded log (topic 'events', 4 partitions, keyed by user)"
awk 'BEGIN { split("view view view cart buy", a, " ");
  for (i = 0; i < 20000; i++) printf "{\"user\":\"u%d\",\"action\":\"%s\",\"item\":%d}\n", i % 7, a[i % 5 + 1], i }' > "$D/events.jsonl"
"$H" produce --topic events --partitions 4 --key-field user < "$D/events.jsonl"

echo
echo "== 2. filter (Rust) keeps the purchases: log:events -> log:purchases (exactly once)"
"$H" run --plugin $B/plugins/rust/filter.wasm --config field=action --config equals=buy \
  --input log:events --output log:purchases --name purchases

echo
echo "== 3. count (C) counts purchases per user in operator state: log:purchases -> file:$D/counts.jsonl"
"$H" run --plugin $B/plugins/c/count.wasm --config key_field=user \
  --input log:purchases --output "file:$D/counts.jsonl" --name counts

echo
echo "== 4. rerun both: nothing is processed twice"
"$H" run --plugin $B/plugins/rust/filter.wasm --config field=action --config equals=buy \
  --input log:events --output log:purchases --name purchases
"$H" run --plugin $B/plugins/c/count.wasm --config key_field=user \
  --input log:purchases --output "file:$D/counts.jsonl" --name counts

echo
echo "== 5. the same count written in Go, C++, AssemblyScript and Zig gives byte-identical records"
echo "   (partitions run concurrently, so the file's interleaving differs: compare sorted)"
for lang in go cpp assemblyscript zig; do
  "$H" run --plugin $B/plugins/$lang/count.wasm --config key_field=user \
    --input log:purchases --output "file:$D/counts-$lang.jsonl" --name "counts-$lang" 2>/dev/null
  cmp <(sort "$D/counts.jsonl") <(sort "$D/counts-$lang.jsonl") && echo "   $lang: identical ($(wc -l < "$D/counts-$lang.jsonl") lines)"
done

echo
echo "== topics"
"$H" topics
echo
echo "== final purchase count per user (last line per key of $D/counts.jsonl)"
tac "$D/counts.jsonl" | awk -F'"' '!seen[$4]++' | sort
echo
echo "$(wc -l < "$D/events.jsonl") events in, $("$H" consume --topic purchases | wc -l) purchases, $(wc -l < "$D/counts.jsonl") count updates written"
