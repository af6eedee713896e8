#!/usr/bin/env bash
# The demo's slide-level benchmark (graphs/slide_benchmark.toml) on the test cohort plus one slide that is not a
# slide, run with --report and --trace; its report.html rendered in headless Chromium (check_report.py): no
# console errors, no network requests, every image decoded, the comparison table's numbers equal to
# comparison.csv, the failing slide named. Then a copy of the run as a kill leaves it (no run_summary.json, one
# stage's metrics gone): `flowrun report` still writes a page saying what is missing. Last, the checker itself
# fails a page that reaches the network or logs an error (so a pass means something).
# Usage: report_test.sh FLOWRUN SOURCE_DIR WORK_DIR COHORT_DIR
set -euo pipefail
flowrun=$1 source_dir=$2 work=$3 cohort=$(cd "$4" && pwd)
check=(/usr/bin/python3 "$source_dir/tests/report/check_report.py")
rm -rf "$work"
mkdir -p "$work"

# The cohort's slides with absolute paths, and one file that is not a slide (it fails alone, with its name).
{
  echo "slide,patient,label,cohort"
  tail -n +2 "$cohort/manifest.csv" | sed "s|^slides/|$cohort/slides/|"
  echo "$cohort/bad/not_a_slide.svs,BP004,0,train"
} > "$work/manifest.csv"
sed "s|^slides/|$cohort/external/slides/|" "$cohort/external/manifest.csv" > "$work/external.csv"

run=$work/run
status=0
"$flowrun" run "$source_dir/graphs/slide_benchmark.toml" --progress off --report --trace "$run/trace.json" \
  --set experiment.output="$run" --set slides.manifest="$work/manifest.csv" --set external_slides.manifest="$work/external.csv" \
  --set tiles.assume_mpp=0.5 --set mil.folds=3 --set mil.epochs=5 > "$work/run.log" 2>&1 || status=$?
cat "$work/run.log"
[[ $status == 1 ]] || { echo "FAIL: expected the run to end with exit 1 (one failed slide), got $status"; exit 1; }
grep -q "^report: $run/report.html$" "$work/run.log" || { echo "FAIL: the run did not print its report's path"; exit 1; }

"${check[@]}" "$run/report.html" --comparison "$run/comparison.csv" --screenshot "$work/report.png" \
  --expect-text "completed with errors" --expect-text "not_a_slide" \
  --expect-text "ROC, in-domain: encoders overlaid" --expect-text "Busy spans per stage"
grep -q 'data-encoder="dinov2_vits14"' "$run/report.html"
# The stages' own PNGs are the report's figures: titled, with a legend.
for png in "$run"/gated_attention_*/roc.png "$run"/gated_attention_*/heatmaps/*.png; do
  [[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' ') == 89504e470d0a1a0a ]] || { echo "FAIL: $png is not a PNG"; exit 1; }
done

# A run as a kill leaves it: no summary; one stage's metrics lost.
partial=$work/partial
cp -r "$run" "$partial"
rm "$partial/run_summary.json" "$partial/report.html" "$partial/gated_attention_resnet50_trunc/metrics.json"
"$flowrun" report "$partial" | tee "$work/partial.log"
grep -q "run_summary.json: not written" "$work/partial.log"
"${check[@]}" "$partial/report.html" --comparison "$partial/comparison.csv" \
  --expect-text "This run did not finish" --expect-text "gated_attention_resnet50_trunc/metrics.json: not written"

# The checker fails a page that loads from the network and one that logs an error.
sed 's|</body>|<img src="http://127.0.0.1:9/x.png"><script>console.error("planted")</script></body>|' "$run/report.html" > "$work/planted.html"
if "${check[@]}" "$work/planted.html" > "$work/planted.log" 2>&1; then
  echo "FAIL: the checker passed a page with a network request and a console error"; cat "$work/planted.log"; exit 1
fi
grep -q "FAIL: external request: http://127.0.0.1:9/x.png" "$work/planted.log"
grep -q "FAIL: console.error: planted" "$work/planted.log"
echo "report test: passed ($run/report.html, screenshot $work/report.png)"
