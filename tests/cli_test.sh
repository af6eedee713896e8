#!/usr/bin/env bash
# flowrun end to end: every command, its exit status, and the demo graph's outputs.
set -u
flowrun=$1
root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/support/cli_checks.sh"

check version 0 "$flowrun" --version;                      contains version-text "flowrun (histoflow)"
check help 0 "$flowrun" --help;                            contains help-text "validate GRAPH"
for cmd in run validate plugins describe graph trace; do
  check "help-$cmd" 0 "$flowrun" "$cmd" --help;            contains "help-$cmd-usage" "usage: flowrun $cmd"
done
check unknown-command 2 "$flowrun" frobnicate
check unknown-option 2 "$flowrun" run "$root/graphs/synthetic_tiles.toml" --fast;  contains unknown-option-text "unknown option '--fast'"
check plugins 0 "$flowrun" plugins;                        contains plugins-core "stages: color_stats csv_writer item_log null_sink synthetic_tiles tissue_filter"
check describe 0 "$flowrun" describe csv_writer;           contains describe-example "example:"
check describe-unknown 2 "$flowrun" describe nope
check validate-demo 0 "$flowrun" validate "$root/graphs/synthetic_tiles.toml"
check dot 0 "$flowrun" graph "$root/graphs/synthetic_tiles.toml" --dot; contains dot-edge '"tissue" -> "stats"'
check dry-run 0 "$flowrun" run "$root/graphs/synthetic_tiles.toml" --dry-run --set experiment.output="$work/never"
[[ ! -e "$work/never" ]] && { passed=$((passed + 1)); echo "ok dry-run-writes-nothing"; } || { failed=$((failed + 1)); echo "FAIL dry-run wrote output"; }

# An invalid graph starts no work: exit 2 and no output folder.
printf 'schema_version = 1\n[experiment]\nname = "bad"\noutput = "%s/bad"\n[stage.t]\nuse = "synthetic_tiles"\ncount = -1\n' "$work" >"$work/bad.toml"
check invalid-graph 2 "$flowrun" run "$work/bad.toml";     contains invalid-line "bad.toml:7:9: error: stage 't': parameter 'count' = -1 is out of range >= 0"
[[ ! -e "$work/bad" ]] && { passed=$((passed + 1)); echo "ok invalid-writes-nothing"; } || { failed=$((failed + 1)); echo "FAIL invalid graph wrote output"; }

# A stage that cannot be built is a clear error, never a signal. The two first-hour mistakes are caught by
# validation (exit 2, file:line:column); a weights file that exists but is no checkpoint fails at open().
printf '%s\n' 'schema_version = 1' '[experiment]' 'name = "encode"' "output = \"$work/encode-run\"" \
  '[stage.tiles]' 'use = "synthetic_tiles"' 'count = 4' \
  '[stage.encode]' 'use = "torch_encoder"' 'input = "tiles"' 'backbone = "resnet50_trunc"' \
  '[stage.sink]' 'use = "null_sink"' 'input = "encode"' >"$work/encode.toml"
check encoder-without-weights 2 "$flowrun" run "$work/encode.toml" --progress off
contains encoder-without-weights-text "error: stage 'encode': needs 'weights' or 'synthetic_weights = true'"
contains encoder-without-weights-line "encode.toml:8:"
check cnn-with-cls-output 2 "$flowrun" run "$work/encode.toml" --progress off --set encode.synthetic_weights=true --set encode.output=cls
contains cnn-with-cls-output-text "error: stage 'encode': output 'cls' is not offered by backbone 'resnet50_trunc' (resnet), which gives 'pooled'"
printf 'not a checkpoint' >"$work/garbage.safetensors"
check encoder-garbage-weights 1 "$flowrun" run "$work/encode.toml" --progress off --set encode.weights="$work/garbage.safetensors"
contains encoder-garbage-weights-text "fatal: stage 'encode' (torch_encoder): cannot be opened: "
if grep -q '"status": "failed"' "$work/encode-run/run_summary.json" 2>/dev/null; then passed=$((passed + 1)); echo "ok failed-run-summary"
else failed=$((failed + 1)); echo "FAIL failed run left no run_summary.json with status failed"; fi

# The demo, small, traced: completes, writes its outputs, and the trace summary names a bottleneck.
check demo-run 0 "$flowrun" run "$root/graphs/synthetic_tiles.toml" --set tiles.count=300 --set experiment.output="$work/demo" \
  --trace "$work/trace.json" --progress lines --threads 2
contains demo-summary "run completed: 300 items"
contains demo-bottleneck "bottleneck: "
for f in color_features.csv tiles_kept.tsv run_summary.json resolved_graph.toml; do
  [[ -s "$work/demo/$f" ]] && { passed=$((passed + 1)); echo "ok demo-output-$f"; } || { failed=$((failed + 1)); echo "FAIL demo output $f missing"; }
done
check trace-summary 0 "$flowrun" trace summary "$work/trace.json"; contains trace-columns "p95 ms"
check trace-missing 1 "$flowrun" trace summary "$work/none.json"

# Ctrl-C: the run stops cleanly with status 130 and leaves no output that looks complete.
"$flowrun" run "$root/graphs/synthetic_tiles.toml" --set tiles.count=100000000 --set experiment.output="$work/interrupted" \
  --progress off >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -e "$work/interrupted" ]] && break; sleep 0.1; done
sleep 1
kill -INT $pid
wait $pid
status=$?
if [[ $status -eq 130 ]]; then passed=$((passed + 1)); echo "ok sigint-status"
else failed=$((failed + 1)); echo "FAIL sigint: status $status, expected 130"; sed 's/^/    /' "$work/out"; fi
contains sigint-summary "run cancelled"
leftovers=$(find "$work/interrupted" -name 'color_features.csv' -o -name 'tiles_kept.tsv' -o -name '*.tmp-*' | wc -l)
[[ $leftovers -eq 0 ]] && { passed=$((passed + 1)); echo "ok sigint-no-partial-output"; } || { failed=$((failed + 1)); echo "FAIL sigint left $leftovers partial files"; }

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
