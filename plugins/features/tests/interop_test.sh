#!/usr/bin/env bash
# The store's files as the field's tools read them: runs the colour-feature graph on the test cohort, then
# reads every file with h5py (Debian's python3-h5py), and checks the cache commands on the result.
#   usage: interop_test.sh FLOWRUN GRAPH COHORT WORKDIR
set -euo pipefail
flowrun=$1 graph=$2 cohort=$(realpath "$3") work=$(realpath -m "$4")
rm -rf "$work"
"$flowrun" run "$graph" --progress off --set "slides.manifest=$cohort/manifest.csv" \
  --set "patches.root=$cohort/patches/train" --set "experiment.output=$work"
slides=$(tail -n +2 "$cohort/manifest.csv" | wc -l)
/usr/bin/python3 "$(dirname "$0")/check_h5py.py" "$work/features" --expect-slides "$slides" --expect-dataset train
"$flowrun" cache ls "$work/features"
"$flowrun" cache verify "$work/features"
"$flowrun" cache verify "$work/cache/tiling"

# The same slides exported in CLAM's and TRIDENT's layouts, with resampled tiles, read as their loaders read them.
"$flowrun" run "$(dirname "$0")/export_layouts.toml" --progress off --set "slides.manifest=$cohort/manifest.csv" \
  --set "experiment.output=$work/export"
/usr/bin/python3 "$(dirname "$0")/check_foreign_layouts.py" "$work/export/export" "$work/export/features"
