#!/usr/bin/env bash
# The benchmark graphs written with templates give the same results as the same graphs written stage by stage
# (tests/graphs/*_by_hand.toml, the graphs as they were before templates): the same feature files (names carry
# the lineage, so the same upstream configuration) and the same comparison tables, value for value.
#
# usage: template_results_test.sh FLOWRUN SYNTHETIC_COHORT_TOOL SOURCE_DIR WORK_DIR
set -euo pipefail
flowrun=$1 synth=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
data=$work/demo-data/cohort
# The data of the graphs' "# Data:" header line.
"$synth" --out "$data" --slides 12 --external 4 --width 3072 --height 2048 --without-mpp 0 --patches-per-class 4 \
  --patch-size 64 >"$work/generate.log" 2>&1

failed=0
run() {  # name graph output extra-args...
  local name=$1 graph=$2 out=$3
  shift 3
  if ! "$flowrun" run "$graph" --progress off --set experiment.output="$out" "$@" >"$work/$name.log" 2>&1; then
    echo "FAIL $name: flowrun exited with an error"; tail -20 "$work/$name.log"; failed=1
  fi
}
# Table rows without the last column (the producing stage's id, which templates name differently), sorted.
table() { cut -d, -f1-8 "$1" | sort; }
same() {  # what a b
  if ! cmp -s "$2" "$3"; then echo "FAIL $1 differ:"; diff "$2" "$3" | head -20; failed=1; else echo "ok $1"; fi
}

patch_sets=(--set train_patches.root="$data/patches/train" --set test_patches.root="$data/patches/test")
run patch-templated "$src/graphs/patch_benchmark.toml" "$work/templated/patch" "${patch_sets[@]}"
run patch-by-hand "$src/tests/graphs/patch_benchmark_by_hand.toml" "$work/by-hand/patch" "${patch_sets[@]}"
slide_sets=(--set slides.manifest="$data/manifest.csv" --set external_slides.manifest="$data/external/manifest.csv")
run slide-templated "$src/graphs/slide_benchmark.toml" "$work/templated/slide" "${slide_sets[@]}"
run slide-by-hand "$src/tests/graphs/slide_benchmark_by_hand.toml" "$work/by-hand/slide" "${slide_sets[@]}"
((failed == 0)) || exit 1

for kind in patch slide; do
  (cd "$work/templated/$kind/features" && find . -name '*.h5' | sort) >"$work/$kind-files-templated"
  (cd "$work/by-hand/$kind/features" && find . -name '*.h5' | sort) >"$work/$kind-files-by-hand"
  [[ -s $work/$kind-files-templated ]] || { echo "FAIL $kind: no feature files"; failed=1; }
  same "$kind feature files" "$work/$kind-files-templated" "$work/$kind-files-by-hand"
done
table "$work/templated/patch/patch_comparison.csv" >"$work/patch-table-templated"
table "$work/by-hand/patch/patch_comparison.csv" >"$work/patch-table-by-hand"
table "$work/templated/slide/comparison.csv" >"$work/slide-table-templated"
table "$work/by-hand/slide/comparison.csv" >"$work/slide-table-by-hand"
for kind in patch slide; do
  rows=$(wc -l <"$work/$kind-table-templated")
  ((rows > 4)) || { echo "FAIL $kind table has $rows lines"; failed=1; }
  same "$kind comparison table ($rows lines)" "$work/$kind-table-templated" "$work/$kind-table-by-hand"
done
((failed == 0))
