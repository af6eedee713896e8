#!/usr/bin/env bash
# Scale-out without a cluster: the graph run as shards of the extraction, then once as the evaluation, against one
# process running it whole; and shards that overlap, run at the same time on one output folder.
#  (a) four `--stage-set extract --shard I/4` runs write every slide's feature file once, each shard's summary in its
#      own folder and none of the whole run's; `--stage-set evaluate` then restores every slide (no tile is read
#      again) and its mil_cv results and feature files are byte-identical to the single process's;
#  (b) `flowrun status` reports the four shards and the evaluation; a graph that cannot be split is refused before
#      any work (exit 2) with the stage that needs every item named; `flowrun submit --dry-run` prints the array and
#      evaluation scripts (and writes nothing), wants a shard count, and reports a failing sbatch;
#  (c) ROUNDS times: three concurrent extractions over overlapping shards (0/2, 1/3 and the whole cohort) on one fresh
#      output folder leave exactly one verified, byte-identical file per slide, no temporary, and wrote each slide
#      once between them (the others restored it or left it to its holder).
#   usage: scale_out_test.sh FLOWRUN GRAPH COHORT WORKDIR [ROUNDS]
set -euo pipefail
shopt -s nullglob
flowrun=$1 graph=$2 cohort=$(realpath "$3") work=$(realpath -m "$4") rounds=${5:-5}
rm -rf "$work" && mkdir -p "$work"
slides=$(($(grep -c . "$cohort/manifest.csv") - 1))
graph_sets=(--set "slides.manifest=$cohort/manifest.csv" --set mil.epochs=4 --set mil.patience=4)
sets=(--progress off "${graph_sets[@]}")
fail() { echo "FAIL: $*"; exit 1; }
run() {  # OUT LOG ARGS...: a run that must succeed
  local out=$1 log=$2
  shift 2
  "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$out" "$@" >"$log" 2>&1 || { cat "$log"; fail "flowrun run $* (see above)"; }
}
source "$(dirname "$(realpath "$0")")/support/run_outputs.sh"

# (a) One process, then four shards and the evaluation.
run "$work/single" "$work/single.log"
reference=$(features_of "$work/single")
[[ $(grep -c '\.h5' <<<"$reference") -eq $slides ]] || fail "the single run wrote $(grep -c '\.h5' <<<"$reference") files for $slides slides"
sharded=$work/sharded
for i in 0 1 2 3; do
  run "$sharded" "$work/shard-$i.log" --stage-set extract --shard "$i/4"
  summary=$sharded/shards/$i-of-4/run_summary.json
  [[ -f $summary ]] || fail "shard $i/4 wrote no summary in its folder"
  [[ $(json "$summary" 's["status"]') == completed && $(json "$summary" 's["shard"]["count"]') == 4 ]] || fail "shard $i/4: $(cat "$summary")"
  [[ ! -e $sharded/run_summary.json && ! -e $sharded/mil ]] || fail "shard $i/4 wrote the whole run's summary or ran mil_cv"
  grep -q "mil" "$work/shard-$i.log" && fail "shard $i/4 mentions mil_cv: $(cat "$work/shard-$i.log")"
done
items=$(cat "$sharded"/shards/*/items-slides.txt | sort)
[[ $(wc -l <<<"$items") -eq $slides && $(uniq <<<"$items" | wc -l) -eq $slides ]] || fail "the shards' items are not every slide once: $items"
[[ $(features_of "$sharded") == "$reference" ]] || fail "the shards' feature files differ from the single run's"
run "$sharded" "$work/evaluate.log" --stage-set evaluate
summary=$sharded/run_summary.json
[[ $(json "$summary" 's["status"]') == completed ]] || fail "evaluation: $(cat "$summary")"
[[ $(stage_stat "$summary" store restored) -eq $slides ]] || fail "evaluation did not restore all $slides slides"
[[ $(stage_stat "$summary" read calls) -eq 0 ]] || fail "evaluation read tiles again"
[[ $(mil_results_of "$sharded") == "$(mil_results_of "$work/single")" ]] || fail "mil_cv's results differ from the single run's"
[[ -n $(mil_results_of "$sharded") ]] || fail "mil_cv wrote no results"
echo "(a) 4 shards + evaluation: $slides feature files and $(($(mil_results_of "$sharded" | wc -l) - 1)) mil_cv result files and its metrics identical to one process"

# (b) Status, and a graph that cannot run in shards.
"$flowrun" status "$sharded" >"$work/status.log" 2>&1 || { cat "$work/status.log"; fail "flowrun status exited non-zero"; }
grep -q "extraction in 4 shards" "$work/status.log" && grep -q "4 completed" "$work/status.log" &&
  grep -q "evaluation: completed" "$work/status.log" || { cat "$work/status.log"; fail "flowrun status"; }
status=0
"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/refused" --shard 1/4 >"$work/refused.log" 2>&1 || status=$?
((status == 2)) || fail "a graph with mil_cv run as a shard: exit $status, expected 2"
grep -q "stage 'mil' (mil_cv) needs every item" "$work/refused.log" || { cat "$work/refused.log"; fail "no reason given"; }
[[ ! -e $work/refused ]] || fail "a refused shard created its output folder"
status=0
"$flowrun" submit "$graph" --slurm "${graph_sets[@]}" --dry-run >"$work/submit.log" 2>&1 || status=$?
((status == 2)) && grep -q "how many shards" "$work/submit.log" || fail "flowrun submit without a shard count: exit $status"
mkdir -p "$work/lab-plugins"  # a --plugins folder (empty): the jobs' flowrun gets it too
"$flowrun" --plugins "$work/lab-plugins" submit "$graph" --slurm "${graph_sets[@]}" --set "experiment.output=$work/submitted" --shards 3 \
  --parallel 2 --cpus 4 --dry-run >"$work/submit.log" 2>&1 || fail "flowrun submit --dry-run: $(cat "$work/submit.log")"
for expected in "#SBATCH --array=0-2%2" "#SBATCH --cpus-per-task=4" '--stage-set extract --shard "${SLURM_ARRAY_TASK_ID}/3"' \
                "--stage-set evaluate" "stages only the evaluation runs: mil" "--plugins '$work/lab-plugins'"; do
  grep -qF -- "$expected" "$work/submit.log" || fail "flowrun submit --dry-run lacks '$expected': $(cat "$work/submit.log")"
done
[[ ! -e $work/submitted ]] || fail "flowrun submit --dry-run wrote files"
status=0
HISTOFLOW_SBATCH=false "$flowrun" submit "$graph" --slurm "${graph_sets[@]}" --set "experiment.output=$work/submitted" --shards 3 \
  >"$work/submit.log" 2>&1 || status=$?
((status == 1)) && grep -q "sbatch failed" "$work/submit.log" || fail "a failing sbatch: exit $status, $(cat "$work/submit.log")"
echo "(b) status, refusals and the job scripts as expected"

# (c) Overlapping shards at the same time.
for ((round = 1; round <= rounds; round++)); do
  out=$work/overlap-$round
  pids=()
  for shard in 0/2 1/3 whole; do
    args=(--stage-set extract)
    [[ $shard == whole ]] || args+=(--shard "$shard")
    "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$out" "${args[@]}" >"$out.${shard/\//-of-}.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || fail "round $round: a concurrent run failed: $(cat "$out".*.log)"; done
  [[ $(features_of "$out") == "$reference" ]] || fail "round $round: the files differ from the single run's (missing, duplicate or corrupt)"
  [[ -z $(find "$out" -name '*.tmp-*') ]] || fail "round $round: temporaries left"
  "$flowrun" cache verify "$out/features" >"$out.verify.log" 2>&1 || { cat "$out.verify.log"; fail "round $round: cache verify"; }
  written=0 left=0
  for summary in "$out"/shards/*/run_summary.json; do  # 0-of-2, 1-of-3 and 0-of-1 (the whole cohort)
    written=$((written + $(stage_stat "$summary" tiles calls)))
    left=$((left + $(json "$summary" 's["stages"][0]["left_to_others"]')))
  done
  ((written == slides)) || fail "round $round: the slides were tiled $written times between the three runs, expected $slides (once each)"
  echo "(c) round $round: 3 concurrent runs, each slide computed once ($left left to another run's lock)"
done
