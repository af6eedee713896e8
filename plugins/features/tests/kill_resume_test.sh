#!/usr/bin/env bash
# Crash safety and resumption. A clean, traced run gives the reference files and how many tiles each slide has.
# Then, at each kill point, a run is killed with SIGKILL once a given number of slide files are finished
# (point 1: once the tiler has cached its first grid, before any slide is finished), and:
#  (a) the kill landed while the run was working: the process died of SIGKILL (it had not exited) with fewer
#      slide files than the clean run has, and at least the number that triggered the kill;
#  every file that carries its final name verifies;
#  (b) the traced rerun does not read the slides finished before the kill again: no tiling and no tile read for
#      them in its trace, their files untouched (same inode, size and modification time), the store restored as
#      many as there were; every other slide is tiled once and all its tiles are read, as in the clean run;
#  (c) the rerun's feature files are byte-identical to the clean run's, and gc leaves no temporaries.
#   usage: kill_resume_test.sh FLOWRUN GRAPH COHORT WORKDIR [KILL_POINTS]
set -euo pipefail
shopt -s nullglob
flowrun=$1 graph=$2 cohort=$(realpath "$3") work=$(realpath -m "$4") points=${5:-10}
slide_work="python3 $(dirname "$(realpath "$0")")/slide_work_in_trace.py"
rm -rf "$work" && mkdir -p "$work"
sets=(--progress off --set "slides.manifest=$cohort/manifest.csv" --set "patches.root=$cohort/patches/train")

run_to_end() {  # OUT: a traced run until done
  "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$1" --trace "$1.trace.json" >"$1.log" 2>&1 ||
    { cat "$1.log"; exit 1; }
}
features_of() { (cd "$1/features" && find . -name '*.h5' | sort | xargs sha256sum); }
# Slide feature files are named <slide>-<fingerprint>.h5 (the patch dataset's file is not).
slide_files() { [[ -d $1/features ]] || return 0; find "$1/features" -regextype posix-extended -regex '.*/[^/]+-[0-9a-f]{12}\.h5' | sort; }
slide_of() { basename "$1" | sed -E 's/-[0-9a-f]{12}\.h5$//'; }

start=$(date +%s%N)
run_to_end "$work/clean"
clean_ms=$(( ($(date +%s%N) - start) / 1000000 ))
reference=$(features_of "$work/clean")
$slide_work "$work/clean.trace.json" >"$work/clean.work"
slides=$(slide_files "$work/clean" | wc -l)
echo "clean run: $slides slide feature files ($(grep -c '\.h5' <<<"$reference") files in all) in $clean_ms ms"
[[ $slides -ge 3 ]] || { echo "expected at least 3 slide files from the clean run"; exit 1; }
[[ $(wc -l <"$work/clean.work") -eq $slides ]] || { echo "the clean trace does not show every slide read"; cat "$work/clean.work"; exit 1; }
store_id=$(python3 -c 'import json,sys; print([s["id"] for s in json.load(open(sys.argv[1]))["histoflow"]["stages"] if s["type"]=="slide_store"][0])' "$work/clean.trace.json")

# Waits until the run in the background has finished TARGET slide files (0: has cached its first tile grid).
wait_for_progress() {  # PID OUT TARGET
  while kill -0 "$1" 2>/dev/null; do
    if (($3 == 0)); then local found=("$2"/cache/tiling/*/*.grid); else local found=("$2"/features/*/*-????????????.h5); fi
    ((${#found[@]} >= ($3 == 0 ? 1 : $3))) && return 0
    sleep 0.005
  done
  return 1
}

for ((i = 1; i <= points; i++)); do
  out="$work/kill-$i"
  # Kill points cycle through 0 .. slides-2 finished files, a little later after the trigger each round.
  target=$(( (i - 1) % (slides - 1) )) later_ms=$(( (i - 1) / (slides - 1) * 20 ))
  "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$out" >"$out.killed.log" 2>&1 &
  pid=$!
  wait_for_progress "$pid" "$out" "$target" || { echo "kill $i: the run ended before $target slide file(s) were finished"; cat "$out.killed.log"; exit 1; }
  sleep "0.$(printf '%03d' "$later_ms")"
  kill -KILL "$pid" 2>/dev/null || true
  status=0
  wait "$pid" 2>/dev/null || status=$?
  # (a) Killed, not exited (a process that had exited reports its own status), and in the middle of the work.
  ((status == 128 + 9)) || { echo "kill $i: the run was not killed by SIGKILL (exit status $status)"; cat "$out.killed.log"; exit 1; }
  mapfile -t finished < <(slide_files "$out")
  if ((${#finished[@]} < target || ${#finished[@]} >= slides)); then
    echo "kill $i: ${#finished[@]} of $slides slide files were finished at the kill, expected $target to $((slides - 1))"; exit 1
  fi
  if [[ -d $out/features ]]; then
    # Every file with a final name is complete: it verifies. Temporaries may be left; they never count.
    "$flowrun" cache verify "$out/features" >"$out.verify.log" || { echo "kill $i: a final-named file fails verification"; cat "$out.verify.log"; exit 1; }
  fi
  before=$( ((${#finished[@]})) && stat -c '%n %i %s %.9Y' "${finished[@]}" || true)

  run_to_end "$out"
  # (b) The finished slides were restored, not read again; the others were read in full.
  $slide_work "$out.trace.json" >"$out.work"
  declare -A was_finished=()
  for file in "${finished[@]}"; do was_finished[$(slide_of "$file")]=1; done
  while read -r slide tilings reads; do
    read -r _ rerun_tilings rerun_reads < <(grep "^$slide " "$out.work" || echo "$slide 0 0")
    if [[ -n ${was_finished[$slide]:-} ]]; then
      ((rerun_tilings == 0 && rerun_reads == 0)) ||
        { echo "kill $i: slide $slide was finished before the kill, but the rerun tiled it $rerun_tilings time(s) and read $rerun_reads tile(s)"; exit 1; }
    elif ((rerun_tilings != tilings || rerun_reads != reads)); then
      echo "kill $i: unfinished slide $slide: the rerun tiled it $rerun_tilings time(s) and read $rerun_reads tile(s), the clean run $tilings and $reads"; exit 1
    fi
  done <"$work/clean.work"
  unset was_finished
  after=$( ((${#finished[@]})) && stat -c '%n %i %s %.9Y' "${finished[@]}" || true)
  [[ $after == "$before" ]] || { echo "kill $i: the rerun rewrote files finished before the kill"; diff <(echo "$before") <(echo "$after") || true; exit 1; }
  restored=$(python3 -c 'import json,sys; print(next(x["restored"] for x in json.load(open(sys.argv[1]))["stages"] if x["id"] == sys.argv[2]))' "$out/run_summary.json" "$store_id")
  ((restored == ${#finished[@]})) || { echo "kill $i: ${#finished[@]} slide files were finished, the store restored $restored"; exit 1; }
  # (c) The same files as an uninterrupted run, and no temporaries left after gc.
  if [[ "$(features_of "$out")" != "$reference" ]]; then
    echo "kill $i: rerun differs from the clean run"; diff <(echo "$reference") <(features_of "$out") || true; exit 1
  fi
  "$flowrun" cache gc "$out/features" >/dev/null
  leftovers=$(find "$out/features" -name '*.tmp-*' | wc -l)
  ((leftovers == 0)) || { echo "kill $i: gc left $leftovers temporaries"; exit 1; }
  echo "kill $i (at $target finished + ${later_ms} ms): killed with ${#finished[@]}/$slides slides finished; rerun restored $restored without reading them, read the other $((slides - ${#finished[@]})) in full; outputs identical"
done
echo "kill-and-resume: $points kills during the work, every rerun restored the finished slides unread and matched the clean run"
