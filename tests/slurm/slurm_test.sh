#!/usr/bin/env bash
# A real Slurm (slurmctld, slurmd and munged started here by cluster.sh, stopped by pid at the end) runs a graph
# submitted with `flowrun submit --slurm`:
#  (a) a 4-task extraction array (2 at once) and the dependent evaluation job all complete; every feature file and
#      mil_cv's results are byte-identical to a single process's run; each task and the evaluation left its log;
#      `flowrun status` reports 4 completed shards and the evaluation;
#  (c) data-parallel finetuning: `srun -n 2 flowrun run` of the finetuning graph (ranks from SLURM_PROCID and
#      SLURM_STEP_NUM_TASKS, meeting through a file in the output folder) exports the teacher one process exports,
#      within 1e-5 (drop path and KoLeo off: per process in the official recipe too);
#  (b) a task cancelled with scancel while it works (some of its slides finished, not all) ends cancelled with its
#      summary, the evaluation job is cancelled rather than left pending, `flowrun status` names the shard, its items
#      and the command that reruns it with the evaluation after it; that command finishes the rest without redoing
#      anything (the finished files are untouched and restored, only the others are tiled), and the evaluation then
#      matches the single run.
#   usage: slurm_test.sh FLOWRUN GRAPH COHORT WORKDIR [full|quick]   (needs root: slurmd runs jobs as their submitter)
#   quick (the sanitizer build): without (c), whose ViT training takes minutes there; the Gloo group itself is
#   checked under the sanitizers by finetune_tests "[data_parallel]".
set -euo pipefail
shopt -s nullglob
flowrun=$(realpath "$1") graph=$(realpath "$2") cohort=$(realpath "$3") work=$(realpath -m "$4") mode=${5:-full}
here=$(dirname "$(realpath "$0")")
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: the test cluster's slurmd needs root"; exit 77; fi
source "$here/cluster.sh"
source "$here/../support/run_outputs.sh"
rm -rf "$work" && mkdir -p "$work/cluster"
fail() {
  echo "FAIL: $*"
  for log in "$work"/*.log "$work"/*/slurm/logs/*.out; do echo "--- $log"; cat "$log"; done
  exit 1
}
trap slurm_cluster_stop EXIT
slurm_cluster_start "$work/cluster" || fail "the test cluster did not start"
slides=$(($(grep -c . "$cohort/manifest.csv") - 1))
sets=(--set "slides.manifest=$cohort/manifest.csv" --set mil.epochs=4 --set mil.patience=4)

"$flowrun" run "$graph" --progress off "${sets[@]}" --set "experiment.output=$work/single" >"$work/single.log" 2>&1 || fail "single run"
reference=$(features_of "$work/single")
reference_mil=$(mil_results_of "$work/single")

submit() {  # OUT LOG ARGS...: flowrun submit --slurm; sets $extract and $evaluate to the job ids it printed
  "$flowrun" submit "$graph" --slurm "${sets[@]}" --set "experiment.output=$1" "${@:3}" >"$2" 2>&1 || fail "flowrun submit"
  extract=$(sed -n 's/^extraction: array job \([0-9][0-9]*\) .*/\1/p' "$2")
  evaluate=$(sed -n 's/^evaluation: job \([0-9][0-9]*\) .*/\1/p' "$2")
  [[ -n $extract && -n $evaluate ]] || fail "flowrun submit printed no job ids: $(cat "$2")"
}
states() { slurm_job_states "$1" | tr '\n' ';'; }

# (a) The whole graph on the cluster.
out=$work/cluster-run
submit "$out" "$work/submit.log" --shards 4 --parallel 2 --cpus 1
slurm_wait_jobs --timeout 240 "$extract" "$evaluate" || fail "(a) the jobs did not finish"
[[ $(states "$extract") == "0 COMPLETED 0:0;1 COMPLETED 0:0;2 COMPLETED 0:0;3 COMPLETED 0:0;" ]] || fail "(a) array tasks: $(states "$extract")"
[[ $(states "$evaluate") == "- COMPLETED 0:0;" ]] || fail "(a) evaluation job: $(states "$evaluate")"
[[ $(features_of "$out") == "$reference" ]] || fail "(a) the cluster's feature files differ from the single run's"
[[ $(mil_results_of "$out") == "$reference_mil" ]] || fail "(a) mil_cv's results differ from the single run's"
for task in 0 1 2 3; do [[ -s $out/slurm/logs/extract-${extract}_$task.out ]] || fail "(a) no log for task $task"; done
grep -q "run completed" "$out/slurm/logs/evaluate-$evaluate.out" || fail "(a) the evaluation's log"
"$flowrun" status "$out" >"$work/status-a.log" 2>&1 || fail "(a) flowrun status exited non-zero"
grep -q "4 completed" "$work/status-a.log" && grep -q "evaluation: completed" "$work/status-a.log" || fail "(a) flowrun status"
echo "(a) array job $extract (4 tasks) and evaluation job $evaluate completed; $slides feature files and mil_cv's results identical to one process"

# (c) Data-parallel finetuning: two ranks of one srun step against one process.
if [[ $mode == full ]]; then
finetune_graph=$here/../../plugins/finetune/tests/finetune_tiny.toml
finetune_sets=(--progress off --set "patches.root=$cohort/patches/train" --set finetune.threads=1 --set finetune.drop_path_rate=0
               --set finetune.koleo_loss_weight=0 --set finetune.momentum_teacher=0.5 --set finetune.final_momentum_teacher=0.5
               --set finetune.base_lr=0.01 --set finetune.warmup_epochs=0.5 --set finetune.iterations=3)
for run in one early; do  # early: one iteration, to show how far the teacher moves over the other two
  "$flowrun" run "$finetune_graph" "${finetune_sets[@]}" --threads 1 --set "experiment.output=$work/finetune-$run" \
    $([[ $run == early ]] && echo --set finetune.iterations=1) >"$work/finetune-$run.log" 2>&1 || fail "(c) finetuning in one process"
done
quoted=$(printf ' %q' "$flowrun" run "$finetune_graph" "${finetune_sets[@]}" --threads 1 --set "experiment.output=$work/finetune-two")
job=$(sbatch --parsable --ntasks=2 --cpus-per-task=1 --output="$work/finetune-two.log" --wrap "srun$quoted")
slurm_wait_jobs --timeout 300 "$job" || fail "(c) the data-parallel job did not finish"
[[ $(states "$job") == "- COMPLETED 0:0;" ]] || fail "(c) the data-parallel job: $(states "$job")"
teacher=finetune/export/teacher_backbone.safetensors
read -r difference tensors worst < <(/usr/bin/python3 "$here/../support/safetensors_diff.py" "$work/finetune-one/$teacher" "$work/finetune-two/$teacher")
read -r moved _ < <(/usr/bin/python3 "$here/../support/safetensors_diff.py" "$work/finetune-one/$teacher" "$work/finetune-early/$teacher")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-5 < 50 * 1e-5 < float(sys.argv[2]) else 1)" "$difference" "$moved" ||
  fail "(c) the 2-rank teacher differs from one process's by $difference ($worst); it moved $moved over two steps"
grep -q "rank 0 of 2" "$work/finetune-two.log" && grep -q "rank 1 of 2" "$work/finetune-two.log" || fail "(c) the ranks did not both join"
[[ $(grep -c "run completed" "$work/finetune-two.log") -eq 2 ]] || fail "(c) not two ranks completed"
echo "(c) srun -n 2: the teacher ($tensors tensors) is within $difference of one process's (it moved $moved over its last two steps)"
fi

# (b) scancel one task mid-run, then the rerun that flowrun status gives. Small tiles at a fine resolution make a
# slide take about half a second, so that the task is cancelled between its first slide and its last.
sets+=(--set tiles.size=16 --set tiles.mpp=0.25)
"$flowrun" run "$graph" --progress off "${sets[@]}" --set "experiment.output=$work/single-b" >"$work/single-b.log" 2>&1 || fail "single run (b)"
reference=$(features_of "$work/single-b")
reference_mil=$(mil_results_of "$work/single-b")
out=$work/cancelled
submit "$out" "$work/submit-b.log" --shards 2 --cpus 1
items=$out/shards/0-of-2/items-slides.txt
shard_files() {  # the feature files of shard 0's slides
  [[ -f $items ]] || return 0
  local id file
  while read -r id; do for file in "$out"/features/*/"$id"-????????????.h5; do echo "$file"; done; done <"$items"
}
until (($(shard_files | wc -l) >= 1)); do
  [[ -n $(squeue -h -j "${extract}_0" -t R,PD 2>/dev/null) ]] || fail "(b) task 0 ended before a slide of it was finished"
  sleep 0.005
done
scancel "${extract}_0"
slurm_wait_jobs --timeout 120 "$extract" "$evaluate" || fail "(b) the jobs did not end after scancel"
mapfile -t finished < <(shard_files)
total=$(wc -l <"$items")
((${#finished[@]} < total)) || fail "(b) task 0 had finished all $total slides: scancel came too late"
[[ $(states "$extract") == "0 CANCELLED 0:0;1 COMPLETED 0:0;" ]] || fail "(b) array tasks: $(states "$extract")"
[[ $(states "$evaluate") == "- CANCELLED 0:0;" ]] || fail "(b) the evaluation job was not cancelled: $(states "$evaluate")"
[[ $(json "$out/shards/0-of-2/run_summary.json" 's["status"]') == cancelled ]] || fail "(b) the cancelled task's summary"
status=0
"$flowrun" status "$out" >"$work/status-b.log" 2>&1 || status=$?
((status == 1)) || fail "(b) flowrun status exit $status with a cancelled shard, expected 1"
grep -q "shard 0/2: cancelled" "$work/status-b.log" && grep -q "its items" "$work/status-b.log" || fail "(b) flowrun status: $(cat "$work/status-b.log")"
rerun=$(grep -A1 "rerun them, then the evaluation:" "$work/status-b.log" | tail -n 1)
[[ $rerun == *"sbatch --parsable --array=0 "*"--dependency=afterok:"* ]] || fail "(b) flowrun status gave no rerun command: $(cat "$work/status-b.log")"
before=$(stat -c '%n %i %s %.9Y' "${finished[@]}")
bash -c "$rerun" >"$work/rerun.log" 2>&1 || fail "(b) the rerun command: $(cat "$work/rerun.log")"
# The evaluation's id is what the second sbatch printed; it waits for the rerun, whose id is then the newest array
# job that logged task 0.
evaluate=$(sed -n 's/^Submitted batch job \([0-9][0-9]*\).*/\1/p' "$work/rerun.log")
[[ -n $evaluate ]] || fail "(b) no evaluation job id: $(cat "$work/rerun.log")"
slurm_wait_jobs --timeout 180 "$evaluate" || fail "(b) the rerun or the evaluation did not finish"
rerun_id=$(cd "$out/slurm/logs" && ls extract-*_0.out | sed 's/extract-\([0-9]*\)_0.out/\1/' | sort -n | tail -n 1)
[[ $rerun_id != "$extract" ]] || fail "(b) the rerun left no log: $(ls "$out/slurm/logs")"
[[ $(states "$rerun_id") == "0 COMPLETED 0:0;" ]] || fail "(b) the rerun: $(states "$rerun_id")"
summary=$out/shards/0-of-2/run_summary.json
[[ $(stage_stat "$summary" store restored) -eq ${#finished[@]} ]] || fail "(b) the rerun restored $(stage_stat "$summary" store restored) slides, expected ${#finished[@]}"
[[ $(stage_stat "$summary" tiles calls) -eq $((total - ${#finished[@]})) ]] || fail "(b) the rerun tiled $(stage_stat "$summary" tiles calls) slides, expected $((total - ${#finished[@]}))"
[[ $(stat -c '%n %i %s %.9Y' "${finished[@]}") == "$before" ]] || fail "(b) the finished files were written again"
[[ $(states "$evaluate") == "- COMPLETED 0:0;" ]] || fail "(b) evaluation: $(states "$evaluate")"
[[ $(features_of "$out") == "$reference" && $(mil_results_of "$out") == "$reference_mil" ]] || fail "(b) results differ from the single run's"
echo "(b) task 0 cancelled with ${#finished[@]} of $total slides done; the rerun status gave finished the other $((total - ${#finished[@]})) and chained the evaluation; results identical to one process"
