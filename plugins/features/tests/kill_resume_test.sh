#!/usr/bin/env bash
# Crash safety: a clean run gives the reference files; then, for many kill points, a run is killed with
# SIGKILL, every file that carries its final name must verify, and a rerun must finish with files
# byte-identical to the reference, restoring (not recomputing) the slides finished before the kill.
#   usage: kill_resume_test.sh FLOWRUN GRAPH COHORT WORKDIR [KILL_POINTS]
set -euo pipefail
flowrun=$1 graph=$2 cohort=$(realpath "$3") work=$(realpath -m "$4") points=${5:-10}
rm -rf "$work" && mkdir -p "$work"
sets=(--progress off --set "slides.manifest=$cohort/manifest.csv" --set "patches.root=$cohort/patches/train")

run_to_end() {  # OUT: runs until done; prints the run summary
  "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$1" >"$1.log" 2>&1 || { cat "$1.log"; exit 1; }
}
features_of() { (cd "$1/features" && find . -name '*.h5' | sort | xargs sha256sum); }

start=$(date +%s%N)
run_to_end "$work/clean"
clean_ns=$(( $(date +%s%N) - start ))
reference=$(features_of "$work/clean")
slides=$(grep -c '\.h5' <<<"$reference")
echo "clean run: $slides feature files in $((clean_ns / 1000000)) ms"
[[ $slides -ge 2 ]] || { echo "expected feature files from the clean run"; exit 1; }

killed_with_files=0
for ((i = 1; i <= points; i++)); do
  out="$work/kill-$i"
  delay_ms=$(( clean_ns * i / (points + 1) / 1000000 ))
  "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$out" >"$out.killed.log" 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  finished=0
  if [[ -d $out/features ]]; then
    # Every file with a final name is complete: it verifies. Temporaries may be left; they never count.
    "$flowrun" cache verify "$out/features" >"$out.verify.log" || { echo "kill $i: a final-named file fails verification"; cat "$out.verify.log"; exit 1; }
    finished=$(find "$out/features" -name '*.h5' | wc -l)
  fi
  ((finished > 0)) && killed_with_files=$((killed_with_files + 1))
  run_to_end "$out"
  if [[ "$(features_of "$out")" != "$reference" ]]; then
    echo "kill $i (after ${delay_ms} ms): rerun differs from the clean run"; diff <(echo "$reference") <(features_of "$out") || true; exit 1
  fi
  restored=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(x.get("restored",0) for x in s["stages"]))' "$out/run_summary.json")
  if ((restored < finished)); then echo "kill $i: $finished files existed, only $restored restored"; exit 1; fi
  "$flowrun" cache gc "$out/features" >/dev/null
  leftovers=$(find "$out/features" -name '*.tmp-*' | wc -l)
  ((leftovers == 0)) || { echo "kill $i: gc left $leftovers temporaries"; exit 1; }
  echo "kill $i after ${delay_ms} ms: $finished finished file(s) survived, rerun restored $restored, outputs identical"
done
echo "kill-and-resume: $points kill points, $killed_with_files with finished files before the kill: all reruns identical to the clean run"
