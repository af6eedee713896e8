#!/usr/bin/env bash
# Unreadable tiles (tile_reader on_tile_error): under skip_tile the cohort's corrupt-tile slide gets a feature
# file with every other tile of its grid and the lost tile named, and the run lists it as a warning; under
# fail_slide the slide gets no file (and does not borrow the skip_tile run's); above max_skipped_fraction the
# slide is refused, naming the slide file, the stage, the count and the fraction.
#   usage: skipped_tiles_test.sh FLOWRUN GRAPH COHORT WORKDIR
set -euo pipefail
flowrun=$(realpath "$1") graph=$(realpath "$2") cohort=$(realpath "$3") work=$(realpath -m "$4")
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

# The corrupt-tile slide and a good one. The graph tiles at 256 level-0 pixels, the TIFF's own tile size, so
# exactly one grid tile covers the corrupted TIFF tile.
printf 'slide,patient,label\n%s,BP000,1\n%s,P004,0\n' "$cohort/bad/corrupt_tile.tiff" "$cohort/slides/train_004.tiff" >"$work/manifest.csv"
read -r lost_x lost_y < <(/usr/bin/python3 -c '
import json, sys
for f in json.load(open(sys.argv[1]))["bad"]["files"]:
    if f["kind"] == "corrupt_tile": print(f["corrupt_tile"]["x"], f["corrupt_tile"]["y"])' "$cohort/layout.json")
run() {  # run NAME [--set ...]: the exit status in $status, the log in $work/NAME.log
  status=0
  "$flowrun" run "$graph" --progress off --set "slides.manifest=$work/manifest.csv" --set "experiment.output=$work/$1" "${@:2}" \
    >"$work/$1.log" 2>&1 || status=$?
}

# 1. skip_tile: both slides have files; the corrupt one lacks exactly the lost tile and names it.
run skip
[[ $status == 0 ]] || { cat "$work/skip.log"; fail "a skip_tile run whose losses are within max_skipped_fraction should exit 0, got $status"; }
/usr/bin/python3 - "$work/skip" "$lost_x" "$lost_y" <<'PY' || fail "skip_tile files"
import glob, json, sys
import h5py
out, x, y = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = {f.split("/")[-1].rsplit("-", 1)[0]: f for f in glob.glob(out + "/features/*/*.h5")}
assert sorted(files) == ["corrupt_tile", "train_004"], files
with h5py.File(files["corrupt_tile"]) as f:
    coords = [tuple(c) for c in f["coords"][:]]
    tiles, rows = int(f.attrs["tiles"]), int(f.attrs["rows"])
    assert rows == tiles - 1 == f["features"].shape[0] == len(coords), (rows, tiles, f["features"].shape)
    assert (x, y) not in coords and len(set(coords)) == rows, "the lost tile is in coords"
    lost = json.loads(f.attrs["skipped_tiles"])
    assert [(t["x"], t["y"], t["level"]) for t in lost] == [(x, y, 0)], lost
    assert "JPEG" in lost[0]["error"], lost
with h5py.File(files["train_004"]) as f:
    assert "skipped_tiles" not in f.attrs and f.attrs["rows"] == f.attrs["tiles"]
summary = json.load(open(out + "/run_summary.json"))
assert summary["status"] == "completed" and summary["errors"] == [], summary["errors"]
[w] = summary["warnings"]
assert w["stage"] == "read" and w["item"] == "corrupt_tile", w
assert f"skipped 1 of {tiles} tiles" in w["message"] and f"({x}, {y}) level 0: " in w["message"], w
print(f"skip_tile: corrupt_tile.h5 has {rows} of {tiles} grid tiles, ({x}, {y}) named; run summary warning: {w['message'][:80]}...")
PY
grep -q "1 warning(s):" "$work/skip.log" || fail "flowrun run does not list the warning"
grep -q "item 'corrupt_tile': slide '.*corrupt_tile.tiff': skipped 1 of" "$work/skip.log" || fail "the warning does not name the slide"

# 2. fail_slide in the same output folder: another lineage, so the skip_tile file is not restored.
run invalid --set read.on_tile_error=fail_slide
[[ $status == 2 ]] || fail "max_skipped_fraction with fail_slide should be a validation error (2), got $status"
grep -q "max_skipped_fraction applies only with on_tile_error" "$work/invalid.log" || fail "no validation message"
sed 's/^max_skipped_fraction = .*//' "$graph" >"$work/fail_slide.toml"
graph_skip=$graph graph=$work/fail_slide.toml
rm -rf "$work/fail" && cp -r "$work/skip" "$work/fail"
run fail --set read.on_tile_error=fail_slide
[[ $status == 1 ]] || fail "fail_slide should give exit status 1 (the corrupt tile's error record), got $status"
grep -q "cannot read the tile at ($lost_x, $lost_y) level 0" "$work/fail.log" || fail "no error naming the corrupt tile"
grep -q "item 'corrupt_tile': [0-9]* of [0-9]* tiles were encoded" "$work/fail.log" || fail "no incomplete-slide record"
[[ $(find "$work/fail/features" -mindepth 1 -maxdepth 1 -type d | wc -l) == 2 ]] || fail "fail_slide should write into a folder of its own lineage"
[[ $(find "$work/fail/features" -name 'corrupt_tile-*.h5' | wc -l) == 1 ]] || fail "fail_slide wrote or restored a file for the corrupt slide"
[[ $(find "$work/fail/features" -name 'train_004-*.h5' | wc -l) == 2 ]] || fail "fail_slide did not write the good slide in its own folder"
echo "fail_slide: error record for ($lost_x, $lost_y), no file for the corrupt slide, skip_tile's file not reused"
graph=$graph_skip

# 3. Above max_skipped_fraction: refused, naming the slide file, the stage, the count and the fraction.
run refuse --set read.max_skipped_fraction=0.001
[[ $status == 1 ]] || fail "a slide over max_skipped_fraction should give exit status 1, got $status"
grep -q "slide 'corrupt_tile' ('$cohort/bad/corrupt_tile.tiff'): stage 'read': 1 of [0-9]* tiles ([0-9.]*%) unreadable, more than max_skipped_fraction = 0.001" \
  "$work/refuse.log" || { cat "$work/refuse.log"; fail "no refusal naming slide, stage, count and fraction"; }
[[ -z $(find "$work/refuse/features" -name 'corrupt_tile-*.h5') ]] || fail "a refused slide has a file"
[[ -n $(find "$work/refuse/features" -name 'train_004-*.h5') ]] || fail "the good slide has no file"
echo "above max_skipped_fraction: slide refused with a clear error, the good slide written"
