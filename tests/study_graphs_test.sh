#!/usr/bin/env bash
# Every graph of graphs/study validates and runs on stand-in data laid out like the real datasets
# (docs/reproduce-the-study.md): data/NCT-CRC-HE-100K and data/CRC-VAL-HE-7K as class folders named as NCT's,
# data/TCGA-CRC/manifest.csv and data/CPTAC-COAD/manifest.csv (cohort "external"), synthetic weights instead of
# weights/, and tiny iteration, epoch and input sizes through --set. Each run must write its comparison table with
# the paper's reference rows (graphs/study/reference/paper_results.csv) where the paper has numbers for its encoders.
# The ViT-g graphs run with ViT-S/14 in place of ViT-g/14 (ViT-g's training state does not fit a CI machine); their
# other settings are theirs.
# usage: study_graphs_test.sh FLOWRUN MAKE_SYNTHETIC_COHORT SOURCE_DIR WORK_DIR
set -u
flowrun=$(realpath "$1") synth=$(realpath "$2") source=$(realpath "$3") work=$4
rm -rf "$work" && mkdir -p "$work" && work=$(realpath "$work")
source "$(dirname "$0")/support/cli_checks.sh"

# The repository layout the graphs expect, around a copy of graphs/study.
repo=$work/repo
mkdir -p "$repo/graphs" "$repo/data/TCGA-CRC" "$repo/data/CPTAC-COAD"
cp -r "$source/graphs/study" "$repo/graphs/study"
check cohort 0 "$synth" --out "$work/cohort" --slides 8 --external 4 --width 2048 --height 1536 --without-mpp 0 \
  --patches-per-class 6 --patch-size 64 --threads 2
ln -s "$work/cohort/patches/train" "$repo/data/NCT-CRC-HE-100K"
ln -s "$work/cohort/patches/test" "$repo/data/CRC-VAL-HE-7K"
# Slide paths absolute, so that the manifests can live in the TCGA and CPTAC folders.
for pair in "manifest.csv TCGA-CRC" "external/manifest.csv CPTAC-COAD"; do
  read -r from to <<<"$pair"
  awk -F, -v OFS=, -v dir="$(dirname "$work/cohort/$from")" 'NR > 1 { $1 = dir "/" $1 } { print }' "$work/cohort/$from" >"$repo/data/$to/manifest.csv"
done

synthetic=(--set encode.weights= --set encode.synthetic_weights=true)
small_patch=(--set encode.input_size=56)
finetune_small=(--set finetune.weights= --set finetune.synthetic_weights=true --set finetune.device=cpu --set finetune.precision=fp32
  --set finetune.iterations=2 --set finetune.batch_size=4 --set finetune.checkpoint_every=0 --set finetune.eval_every=0
  --set finetune.eval_linear_probe=false --set finetune.global_size=56 --set finetune.local_size=28 --set finetune.local_number=2
  --set finetune.dino_head_n_prototypes=256 --set finetune.ibot_head_n_prototypes=256 --set crops.global_size=56
  --set crops.local_size=28 --set crops.local_number=2 --set encode_original.weights= --set encode_original.synthetic_weights=true
  --set encode_original.input_size=56 --set encode_finetuned.input_size=56)
mil_small=(--set mil.epochs=2 --set mil.folds=2 --set mil.bootstrap=50 --set mil.heatmaps=false --set tiles.mpp=2.0 --set tiles.size=64)
vitg_as_vits=(--set finetune.backbone=dinov2_vits14 --set encode_original.backbone=dinov2_vits14 --set encode_finetuned.backbone=dinov2_vits14)

run_graph() {  # run_graph NAME TABLE [--set ...]: validate, run, and keep the table's Markdown in $work/NAME.md
  local name=$1 table=$2; shift 2
  check "$name-validates" 0 "$flowrun" validate "$repo/graphs/study/$name.toml" "$@"
  check "$name-runs" 0 "$flowrun" run "$repo/graphs/study/$name.toml" --progress off --set "experiment.output=$work/runs/$name" "$@"
  cp "$work/runs/$name/$table.md" "$work/$name.md" 2>/dev/null
  cp "$work/out" "$work/$name.log"
}
frozen_encoders='lists.encoders=["resnet50_trunc", "dinov2_vits14"]'
slide_frozen_encoders='lists.encoders=["retccl", "dinov2_vits14"]'  # both have the paper's numbers (its Figure 1)

run_graph patch_frozen_extractors patch_comparison --set "$frozen_encoders" "${synthetic[@]}" "${small_patch[@]}"
contains patch-frozen-table "| dinov2_vits14 |"
contains patch-frozen-reference "| dinov2_vits14_finetuned_nct (reference) |"  # what finetuning should reach beside it
run_graph patch_finetuned_vits14 patch_comparison "${finetune_small[@]}"
run_graph patch_finetuned_vitg14 patch_comparison "${finetune_small[@]}" "${vitg_as_vits[@]}"
run_graph slide_frozen_extractors slide_comparison --set "$slide_frozen_encoders" "${synthetic[@]}" "${small_patch[@]}" "${mil_small[@]}"
run_graph slide_finetuned_vits14 slide_comparison "${finetune_small[@]}" "${mil_small[@]}" --set training_tiles.mpp=2.0 --set training_tiles.size=64
run_graph slide_finetuned_vitg14 slide_comparison "${finetune_small[@]}" "${mil_small[@]}" "${vitg_as_vits[@]}" --set training_tiles.mpp=2.0 --set training_tiles.size=64

# The tables of the graphs whose encoders the paper gives numbers for: its rows beside the run's, and the differences.
for pair in "slide_frozen_extractors retccl" "slide_frozen_extractors dinov2_vits14" \
            "patch_finetuned_vits14 dinov2_vits14_finetuned_nct" "patch_finetuned_vitg14 dinov2_vitg14_finetuned_nct" \
            "slide_finetuned_vits14 dinov2_vits14_finetuned_tcga" "slide_finetuned_vitg14 dinov2_vitg14_finetuned_tcga"; do
  read -r name encoder <<<"$pair"
  cp "$work/$name.md" "$work/out" 2>/dev/null || : >"$work/out"
  contains "$name-$encoder-run-row" "| $encoder |"
  contains "$name-$encoder-reference-row" "| $encoder (reference) |"
  contains "$name-$encoder-against" "## Against the reference"
  # A row of that section: encoder, cell, run, reference, signed difference.
  sed -n '/^## Against the reference/,$p' "$work/out" >"$work/against" && mv "$work/against" "$work/out"
  if grep -qE "^\| $encoder \| [^|]+ \| [0-9.]+ \| [0-9.]+ \| [+-][0-9.]+ \|" "$work/out"; then
    passed=$((passed + 1)); echo "ok $name-$encoder-difference-row"
  else failed=$((failed + 1)); echo "FAIL $name-$encoder-difference-row: no run, reference and difference for $encoder"; fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
