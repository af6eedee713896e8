#!/usr/bin/env bash
# The installed histoflow as a lab uses it (docs/install.md, docs/write-a-plugin.md): `cmake --install` to a
# temporary prefix; the installed copy of plugins/example_backbone built as a project of its own with
# find_package(histoflow); a graph encoding with that backbone run by the installed flowrun, with no file of the
# build tree loaded (LD_DEBUG names every library the run loads). Then the plugin search path: where each plugin
# was found, one name from two files, a missing --plugins folder, and plugins built for another histoflow version
# or plugin ABI in the installed plugin folder.
# The prefix must lie outside the build tree, so the work folder is in $TMPDIR, named after the build (a fixed
# path: ccache then serves reruns); it is removed when every check passed.
# usage: install_test.sh BUILD_DIR TEST_PLUGIN_DIR [CXX_COMPILER]
set -u
build=$(realpath "$1") test_plugins=$(realpath "$2") cxx=${3:-c++}
work=${TMPDIR:-/tmp}/histoflow-install-test-$(printf %s "$build" | md5sum | cut -c1-12)
rm -rf "$work" && mkdir -p "$work" && work=$(realpath "$work")
[[ $work != "$build"* ]] || { echo "FAIL: the work folder $work is inside the build tree"; exit 1; }
unset HISTOFLOW_PLUGIN_PATH HISTOFLOW_FEATURE_READER LD_LIBRARY_PATH
source "$(dirname "$0")/support/cli_checks.sh"
lacks() {  # lacks NAME TEXT : the last output does not contain TEXT
  if ! grep -qF -- "$2" "$work/out"; then passed=$((passed + 1)); echo "ok $1"
  else failed=$((failed + 1)); echo "FAIL $1: output contains '$2'"; grep -F -- "$2" "$work/out" | head -5 | sed 's/^/    /'; fi
}
prefix=$work/prefix
flowrun=$prefix/bin/flowrun
cd "$work"  # nothing relative to the build tree

check install 0 cmake --install "$build" --prefix "$prefix"
check flowrun-version 0 "$flowrun" --version
contains version "flowrun (histoflow) "
# Installed binaries find their libraries relative to themselves, never in the build tree.
check runpaths 0 bash -c "for f in '$prefix'/bin/* '$prefix'/lib/*.so '$prefix'/lib/histoflow/plugins/*.so; do
  echo \"\$f: \$(readelf -d \"\$f\" | grep -E 'RUNPATH|RPATH')\"; done"
lacks runpaths-outside-build "$build"
contains runpaths-relative-bin 'bin/flowrun:  0x000000000000001d (RUNPATH)            Library runpath: [$ORIGIN/../lib]'
contains runpaths-relative-plugins 'plugins/libhf_core.so:  0x000000000000001d (RUNPATH)            Library runpath: [$ORIGIN/../..]'
check package-outside-build 1 grep -rl -- "$build" "$prefix/lib/cmake/histoflow"  # grep finds nothing: status 1

# The lab's backbone: the installed example, copied and built against the package.
cp -r "$prefix/share/histoflow/examples/example_backbone" "$work/lab_backbone"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)  # reruns reuse the compilation
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
check configure 0 cmake -S "$work/lab_backbone" -B "$work/lab_build" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix"
check build 0 cmake --build "$work/lab_build"
plugin=$work/lab_build/plugins/libhf_example_backbone.so
check plugin-links-installed 0 bash -c "readelf -d '$plugin' | grep -E 'RUNPATH|RPATH'"
contains plugin-runpath "$prefix/lib"
lacks plugin-runpath-outside-build "$build"

# flowrun plugins: the installed folder first, then --plugins.
check plugins 0 "$flowrun" plugins --plugins "$work/lab_build/plugins"
contains plugins-installed "torch_encoders  $prefix/lib/histoflow/plugins/libhf_torch_encoders.so"
contains plugins-installed-origin "  found in: the installed plugin folder"
contains plugins-lab "example_backbone  $plugin"
contains plugins-lab-origin "  found in: --plugins"
contains plugins-lab-backbone "  backbones: example_small_cnn"
lacks plugins-no-example-installed "$prefix/lib/histoflow/plugins/libhf_example"
lacks plugins-no-warning "warning:"

# A graph encoding with the lab's backbone, run by the installed flowrun; every library it loads is the prefix's or
# the system's.
cat >"$work/lab.toml" <<'EOF'
schema_version = 1
[experiment]
name = "lab_backbone"
output = "runs/lab"
[stage.tiles]
use = "synthetic_tiles"
count = 64
size = 224
[stage.encode]
use = "torch_encoder"
input = "tiles"
backbone = "example_small_cnn"
synthetic_weights = true
batch = 16
[stage.csv]
use = "csv_writer"
input = "encode"
file = "features.csv"
EOF
check run 0 env LD_DEBUG=files LD_DEBUG_OUTPUT="$work/loaded" "$flowrun" --plugins "$work/lab_build/plugins" run "$work/lab.toml" --progress off
check csv 0 /usr/bin/python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0][4:] == [f"f{i}" for i in range(32)], rows[0]  # example_small_cnn: 32 features
assert len(rows) == 65 and all(len(r) == 36 for r in rows), len(rows)
print(len(rows) - 1, "tiles x", len(rows[0]) - 4, "features")' "$work/runs/lab/features.csv"
check loaded 0 bash -c "grep -h 'calling init:' '$work'/loaded.*"
contains loaded-lab-plugin "calling init: $plugin"
contains loaded-installed-framework "calling init: $prefix/bin/../lib/libhistoflow.so.0"
lacks loaded-nothing-from-build "$build"

# HISTOFLOW_PLUGIN_PATH comes after the installed folder; the same backbone from a second file names both files.
mkdir -p "$work/copy" && cp "$plugin" "$work/copy/libhf_lab_copy.so"
check env-path 0 env HISTOFLOW_PLUGIN_PATH="$work/copy" "$flowrun" plugins
contains env-path-origin "  found in: HISTOFLOW_PLUGIN_PATH"
check duplicate 2 env HISTOFLOW_PLUGIN_PATH="$work/copy" "$flowrun" --plugins "$work/lab_build/plugins" plugins
contains duplicate-names-both "$work/copy/libhf_lab_copy.so"
contains duplicate-names-both-2 "$plugin"
check missing-folder 2 "$flowrun" --plugins "$work/no-such-folder" plugins
contains missing-folder-named "--plugins '$work/no-such-folder': no such folder"

# Plugins built for another histoflow version or plugin ABI, in the installed plugin folder: refused, both versions named.
cp "$test_plugins/wrong-version/"*.so "$test_plugins/wrong-abi/"*.so "$prefix/lib/histoflow/plugins/"
check wrong-versions 2 "$flowrun" plugins
contains wrong-version "$prefix/lib/histoflow/plugins/libwrong_version_plugin.so' was built against histoflow 7.3.0, but this is histoflow "
contains wrong-abi "$prefix/lib/histoflow/plugins/libwrong_abi_plugin.so' was built for plugin ABI version "
contains wrong-abi-both ") has plugin ABI version "
check run-refused 2 "$flowrun" --plugins "$work/lab_build/plugins" validate "$work/lab.toml"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]] && rm -rf "$work"
