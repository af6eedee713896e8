#!/usr/bin/env bash
# Finetuning as a graph, killed and resumed: a clean run of finetune_tiny.toml gives the reference teacher; a
# second run is killed with SIGKILL after its first checkpoint and before its last step, and rerunning the same
# command must finish with a teacher byte-identical to the reference, having skipped (restored) the samples
# trained on before the checkpoint. Every run evaluates the teacher (k-NN, linear probe) at 0 and every 2 steps on
# PATCH_ROOT and the test set beside it: the resumed run's curve equals the clean run's. A third run ends by
# max_time. Tiles sampled from slides train too. MODE quick (for the sanitizer build): the bad-input checks, the
# slide run and a clean run of 2 iterations.
#   usage: finetune_graph_test.sh FLOWRUN GRAPH PATCH_ROOT WORKDIR [full|quick]
set -euo pipefail
flowrun=$1 graph=$2 patches=$(realpath "$3") work=$(realpath -m "$4") mode=${5:-full}
rm -rf "$work" && mkdir -p "$work"
eval_test=$(realpath "$patches/../test")
sets=(--progress off --set "patches.root=$patches" --set "finetune.eval_train=$patches" --set "finetune.eval_test=$eval_test"
      --set finetune.eval_every=2 --set finetune.eval_k=5)
iterations=6
if [[ $mode == quick ]]; then iterations=2; sets+=(--set finetune.iterations=2); fi
teacher() { sha256sum <"$1/finetune/export/teacher_backbone.safetensors"; }
steps_in() { [[ -f $1/finetune/losses.jsonl ]] && wc -l <"$1/finetune/losses.jsonl" || echo 0; }

# An empty patch folder stops the run before any training, naming the folder.
mkdir -p "$work/empty/ADI"
if "$flowrun" run "$graph" --progress off --set "patches.root=$work/empty" --set "experiment.output=$work/empty-run" >"$work/empty.log" 2>&1 ||
   ! grep -q "no images found in '$work/empty' (looked for .jpeg .jpg .png .tif .tiff files in its class sub-folders)" "$work/empty.log" ||
   [[ -e $work/empty-run/finetune/checkpoint.safetensors ]]; then
  echo "an empty patch folder: expected a clear failure before training"; cat "$work/empty.log"; exit 1
fi

# Evaluation sets whose classes differ stop the run before any training, naming both sets and the class.
mkdir -p "$work/eval-missing"
for class in "$eval_test"/*/; do [[ $(basename "$class") == TUM ]] || ln -s "$class" "$work/eval-missing/"; done
if "$flowrun" run "$graph" "${sets[@]}" --set "finetune.eval_test=$work/eval-missing" --set "experiment.output=$work/eval-missing-run" \
     >"$work/eval-missing.log" 2>&1 ||
   ! grep -qF "the evaluation sets have different classes: only in eval_train ($patches): TUM; only in eval_test ($work/eval-missing): (none)" "$work/eval-missing.log" ||
   [[ -e $work/eval-missing-run/finetune/checkpoint.safetensors ]]; then
  echo "evaluation sets with different classes: expected a clear failure before training"; cat "$work/eval-missing.log"; exit 1
fi

# Tiles sampled from whole slides: a manifest whose slides have no tissue tile stops the run before training,
# naming the manifest; the manifest as it is trains.
slides_graph=$(dirname "$graph")/finetune_slides_tiny.toml manifest=$(realpath "$patches/../../manifest.csv")
if "$flowrun" run "$slides_graph" --progress off --set "tiles.manifest=$manifest" --set tiles.size=2048 --set tiles.min_tissue=1.0 \
     --set "experiment.output=$work/no-tissue" >"$work/no-tissue.log" 2>&1 ||
   ! grep -qF "no tissue tile in any of the 6 slides of $manifest" "$work/no-tissue.log" ||
   [[ -e $work/no-tissue/finetune/checkpoint.safetensors ]]; then
  echo "a manifest without tissue: expected a clear failure before training"; cat "$work/no-tissue.log"; exit 1
fi
"$flowrun" run "$slides_graph" --progress off --set "tiles.manifest=$manifest" --set "experiment.output=$work/slides" \
  >"$work/slides.log" 2>&1 || { cat "$work/slides.log"; exit 1; }
grep -q "ended training: it trained 2 iterations" "$work/slides.log" && [[ $(steps_in "$work/slides") == 2 ]] ||
  { echo "training on slide tiles: expected 2 steps"; cat "$work/slides.log"; exit 1; }

"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/clean" >"$work/clean.log" 2>&1 || { cat "$work/clean.log"; exit 1; }
grep -q "input ended early: stage 'finetune' ended training: it trained $iterations iterations" "$work/clean.log" ||
  { echo "clean run: no end-of-training line"; cat "$work/clean.log"; exit 1; }
[[ $(steps_in "$work/clean") == "$iterations" ]] || { echo "clean run: expected $iterations steps in losses.jsonl"; exit 1; }
reference=$(teacher "$work/clean")
# The curve: one point at 0 and every 2 steps, the best teacher exported beside the last.
expected_points=$(seq -s ' ' 0 2 "$iterations")
points=$(tail -n +2 "$work/clean/finetune/evaluation_curve.csv" | cut -d, -f1 | tr '\n' ' ' | sed 's/ $//')
[[ $points == "$expected_points" ]] || { echo "evaluated at iterations '$points', expected '$expected_points'"; exit 1; }
for f in evaluation_curve.png best/teacher_backbone.safetensors best/model_card.json; do
  [[ -s $work/clean/finetune/$f ]] || { echo "clean run: no $f"; exit 1; }
done
if [[ $mode == quick ]]; then echo "quick: $iterations iterations trained, teacher exported"; exit 0; fi

# The same command once more: training is done, so nothing is trained, evaluated or written again.
stamp=$(stat -c %Y.%N "$work/clean/finetune/export/teacher_backbone.safetensors" "$work/clean/finetune/checkpoint.safetensors" \
        "$work/clean/finetune/evaluation.jsonl")
sleep 1
"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/clean" >"$work/again.log" 2>&1 || { cat "$work/again.log"; exit 1; }
grep -q "ended training: its budget was spent in an earlier run" "$work/again.log" &&
  [[ $(stat -c %Y.%N "$work/clean/finetune/export/teacher_backbone.safetensors" "$work/clean/finetune/checkpoint.safetensors" \
       "$work/clean/finetune/evaluation.jsonl") == "$stamp" ]] ||
  { echo "rerun of a finished training: expected no new training or files"; cat "$work/again.log"; exit 1; }

# A time budget ends training before the iteration budget: 1 s of step time is spent within the first steps.
"$flowrun" run "$graph" "${sets[@]}" --set finetune.iterations=100 --set finetune.max_time=1s \
  --set "experiment.output=$work/timed" >"$work/timed.log" 2>&1 || { cat "$work/timed.log"; exit 1; }
grep -q "ended training: it trained for max_time (1s)" "$work/timed.log" || { echo "max_time did not end training"; cat "$work/timed.log"; exit 1; }
timed_steps=$(steps_in "$work/timed")
((timed_steps >= 1 && timed_steps < 100)) || { echo "max_time run: $timed_steps steps"; exit 1; }
[[ -f $work/timed/finetune/export/teacher_backbone.safetensors ]] || { echo "max_time run: no teacher exported"; exit 1; }

out=$work/killed
"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$out" >"$out.killed.log" 2>&1 &
pid=$!
# Kill once the checkpoint of step 2 or 4 exists, while the run is still training.
for _ in $(seq 6000); do
  steps=$(steps_in "$out")
  ((steps >= 2)) && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
checkpointed=$(steps_in "$out")
if ((checkpointed < 2 || checkpointed >= 6)) || [[ -f $out/finetune/export/teacher_backbone.safetensors ]]; then
  echo "the kill did not land mid-training (checkpointed steps: $checkpointed)"; cat "$out.killed.log"; exit 1
fi

"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$out" >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
[[ $(teacher "$out") == "$reference" ]] || { echo "resumed teacher differs from the clean run's"; exit 1; }
cmp -s "$work/clean/finetune/losses.jsonl" "$out/finetune/losses.jsonl" ||
  python3 - "$work/clean/finetune/losses.jsonl" "$out/finetune/losses.jsonl" <<'PY' || exit 1
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
# Step times differ between runs; every loss must not.
keys = ["iteration", "total", "dino_local", "dino_global", "koleo", "ibot"]
bad = [i for i, (x, y) in enumerate(zip(a, b)) if any(x[k] != y[k] for k in keys)]
if len(a) != len(b) or bad:
    sys.exit(f"loss curves differ at steps {bad} (lengths {len(a)}, {len(b)})")
PY
# Evaluation scores depend only on the teacher: the resumed run's points equal the clean run's.
python3 - "$work/clean/finetune/evaluation.jsonl" "$out/finetune/evaluation.jsonl" <<'PY' || exit 1
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
keys = ["iteration", "knn_balanced_accuracy", "linear_balanced_accuracy"]
if [[x[k] for k in keys] for x in a] != [[x[k] for k in keys] for x in b]:
    sys.exit(f"evaluation curves differ: {a} vs {b}")
PY
restored=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(x.get("restored",0) for x in s["stages"]))' "$out/run_summary.json")
((restored >= checkpointed * 4)) || { echo "rerun restored $restored samples, expected at least $((checkpointed * 4))"; exit 1; }
echo "killed after $checkpointed checkpointed steps; the rerun restored $restored samples and its teacher equals the clean run's"
