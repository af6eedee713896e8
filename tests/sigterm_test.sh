#!/usr/bin/env bash
# SIGTERM, as Slurm ends a job (scancel, a time limit), during extraction and during mil_cv's training:
#  (a) the run exits within 5 s with status 130, says so on stderr, and writes run_summary.json with status
#      "cancelled"; the signal landed mid-work (some but not all slide files finished; mil_cv busy for seconds);
#  (b) the next run does not redo what was done: the slide files finished before a SIGTERM are untouched (same
#      inode, size and modification time) and restored by the store, and the last run completes the graph.
#   usage: sigterm_test.sh FLOWRUN GRAPH COHORT WORKDIR
set -euo pipefail
shopt -s nullglob
flowrun=$1 graph=$2 cohort=$(realpath "$3") work=$(realpath -m "$4")
rm -rf "$work" && mkdir -p "$work"
out=$work/out
sets=(--progress off --set "slides.manifest=$cohort/manifest.csv" --set "experiment.output=$out")
slides=$(($(grep -c . "$cohort/manifest.csv") - 1))
slide_files() { local files=("$out"/features/*/*-????????????.h5); ((${#files[@]})) && printf '%s\n' "${files[@]}"; return 0; }
summary() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$out/run_summary.json" "$1"; }
fail() { echo "FAIL: $*"; for log in "$work"/*.log; do echo "--- $log"; cat "$log"; done; exit 1; }

# terminate NAME PID: SIGTERM, then waits; a watchdog kills the run after 5 s. Sets `seconds`.
terminate() {
  local name=$1 pid=$2 start status=0
  start=$(date +%s%N)
  kill -TERM "$pid"
  (sleep 5 && kill -KILL "$pid") >/dev/null 2>&1 &  # holds none of ctest's pipes
  local watchdog=$!
  wait "$pid" || status=$?
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  seconds=$(python3 -c "print(round(($(date +%s%N) - $start) / 1e9, 2))")
  ((status != 137)) || fail "$name: still running 5 s after SIGTERM (killed)"
  ((status == 130)) || fail "$name: exit status $status after SIGTERM, expected 130"
  grep -q "flowrun: SIGTERM: stopping" "$work/$name.log" || fail "$name: no message on stderr"
  [[ $(summary 's["status"]') == cancelled ]] || fail "$name: run_summary.json status is not cancelled"
}

# 1. During extraction: once the first slide file is finished.
"$flowrun" run "$graph" "${sets[@]}" >"$work/extraction.log" 2>&1 &
pid=$!
until (($(slide_files | wc -l) >= 1)); do
  kill -0 "$pid" 2>/dev/null || fail "extraction: the run ended before a slide file was finished"
  sleep 0.005
done
terminate extraction "$pid"
mapfile -t finished < <(slide_files)
((${#finished[@]} < slides)) || fail "extraction: all $slides slide files were finished: SIGTERM came too late"
before=$(stat -c '%n %i %s %.9Y' "${finished[@]}")
echo "extraction: stopped ${seconds} s after SIGTERM with ${#finished[@]} of $slides slide files finished"

# 2. During training: the rerun finishes extraction, then mil_cv trains (10,000 epochs) until SIGTERM.
"$flowrun" run "$graph" "${sets[@]}" >"$work/training.log" 2>&1 &
pid=$!
until (($(slide_files | wc -l) == slides)); do
  kill -0 "$pid" 2>/dev/null || fail "training: the run ended before extraction was finished"
  sleep 0.01
done
sleep 3
terminate training "$pid"
[[ $(stat -c '%n %i %s %.9Y' "${finished[@]}") == "$before" ]] || fail "training: slide files finished before the first SIGTERM were rewritten"
restored=$(summary '[x["restored"] for x in s["stages"] if x["id"] == "store"][0]')
((restored == ${#finished[@]})) || fail "training: the store restored $restored slides, expected ${#finished[@]}"
busy=$(summary '[x["busy_seconds"] for x in s["stages"] if x["id"] == "mil"][0]')
python3 -c "import sys; sys.exit(0 if $busy >= 1 else 1)" || fail "training: mil_cv was busy $busy s: SIGTERM did not land during training"
[[ ! -e $out/mil/summary.md ]] || fail "training: mil_cv wrote its summary although it was stopped"
echo "training: stopped ${seconds} s after SIGTERM, mil_cv had trained for $busy s; $restored slides restored, not read again"

# 3. The last run: nothing extracted again, mil_cv (a few epochs now) completes.
mapfile -t all < <(slide_files)
before=$(stat -c '%n %i %s %.9Y' "${all[@]}")
"$flowrun" run "$graph" "${sets[@]}" --set mil.epochs=2 --set mil.patience=2 >"$work/final.log" 2>&1 || fail "final run failed"
[[ $(summary 's["status"]') == completed ]] || fail "final: status is not completed"
[[ $(stat -c '%n %i %s %.9Y' "${all[@]}") == "$before" ]] || fail "final: slide files were rewritten"
restored=$(summary '[x["restored"] for x in s["stages"] if x["id"] == "store"][0]')
((restored == slides)) || fail "final: the store restored $restored of $slides slides"
echo "final: completed; all $slides slides restored, mil_cv finished"
