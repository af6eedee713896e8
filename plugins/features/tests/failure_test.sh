#!/usr/bin/env bash
# Failures while storing features: a corrupt cached file is recomputed, a full disk and a read-only folder
# fail with clear errors, leave earlier files intact and never leave a partial file under a final name.
#   usage: failure_test.sh FLOWRUN GRAPH COHORT WORKDIR
set -euo pipefail
flowrun=$(realpath "$1") graph=$(realpath "$2") cohort=$(realpath "$3") work=$(realpath -m "$4")
rm -rf "$work" && mkdir -p "$work"
sets=(--progress off --set "slides.manifest=$cohort/manifest.csv" --set "patches.root=$cohort/patches/train")
features_of() { (cd "$1/features" && find . -name '*.h5' | sort | xargs sha256sum); }
fail() { echo "FAIL: $*"; exit 1; }

"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/ref" >"$work/ref.log" 2>&1 || fail "reference run"
reference=$(features_of "$work/ref")

# 1. A cached file that no longer verifies is recomputed (and the run says so).
cp -r "$work/ref" "$work/corrupt"
flip_byte() { python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(6000); b=f.read(1); f.seek(6000); f.write(bytes([b[0]^0xff]))' "$1"; }
victim=$(find "$work/corrupt/features" -name '*-*.h5' | sort | head -1)  # a slide's file (<slide>-<fingerprint>.h5)
dataset=$(find "$work/corrupt/features" -name 'train.h5')                # the patch dataset
flip_byte "$victim"
flip_byte "$dataset"
status=0
"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/corrupt" >"$work/corrupt.log" 2>&1 || status=$?
[[ $status == 1 ]] || fail "a corrupt cached file should give exit status 1 (error record), got $status"
grep -q "cannot restore, recomputing: .*$(basename "$victim").*checksum mismatch" "$work/corrupt.log" || fail "no error naming the corrupt file"
grep -q "cannot restore, recomputing: .*train.h5.*checksum mismatch" "$work/corrupt.log" || fail "no error naming the corrupt dataset"
[[ "$(features_of "$work/corrupt")" == "$reference" ]] || fail "the recomputed files differ from the reference"
echo "corrupt cached files (a slide, a patch dataset): reported, recomputed, identical to the reference"

# 2. Disk full (a file-size limit makes writes fail with EFBIG, as ENOSPC would).
status=0
(trap '' XFSZ; ulimit -f 24; "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/full" >"$work/full.log" 2>&1) || status=$?
[[ $status != 0 ]] || fail "a run that cannot write should not succeed"
grep -qiE "disk full|file too large" "$work/full.log" || { cat "$work/full.log"; fail "no clear disk-full error"; }
if [[ -d $work/full/features ]]; then "$flowrun" cache verify "$work/full/features" >/dev/null || fail "a partial file took a final name"; fi
"$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/full" >"$work/full2.log" 2>&1 || fail "rerun after disk full"
[[ "$(features_of "$work/full")" == "$reference" ]] || fail "after disk full, the rerun differs from the reference"
echo "disk full: clear error ($(grep -ciE 'disk full|file too large' "$work/full.log") records), no partial file, rerun identical"

# 3. A read-only features folder (as an unprivileged user, since root writes anywhere).
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
elif [[ $(id -u) != 0 ]]; then
  as_user=()
else
  echo "read-only folder: skipped (root without setpriv)"; exit 0
fi
cp -r "$work/ref" "$work/readonly"
rm -f "$(find "$work/readonly/features" -name '*.h5' | sort | head -1)"  # one slide to write
before=$(features_of "$work/readonly")
chmod -R a+rwX "$work/readonly" && chmod -R a-w "$work/readonly/features"
chmod a+rx "$work" "$(dirname "$work")" 2>/dev/null || true
status=0
"${as_user[@]}" "$flowrun" run "$graph" "${sets[@]}" --set "experiment.output=$work/readonly" >"$work/readonly.log" 2>&1 || status=$?
[[ $status != 0 ]] || fail "writing into a read-only folder should fail"
grep -qiE "read-only|permission denied" "$work/readonly.log" || { cat "$work/readonly.log"; fail "no clear read-only error"; }
[[ "$(features_of "$work/readonly")" == "$before" ]] || fail "files written earlier changed"
echo "read-only folder: clear error, earlier files intact"
