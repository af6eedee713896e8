#!/usr/bin/env bash
# docs/encoders.md, "Add a backbone as a plugin", followed step by step with the page's own code blocks (so
# the docs cannot drift from what works): the plugin source and its CMakeLists.txt, the add_subdirectory line,
# a build against this build tree, `flowrun backbones` / `describe backbone`, convert_weights, and the graph.
# Then: a backbone registered twice names both plugin files; a library in a plugin folder that the build's
# manifest does not list is warned about.
# usage: new_backbone_walkthrough.sh FLOWRUN CONVERT_WEIGHTS SOURCE_DIR BUILD_DIR WORK_DIR [CXX_COMPILER]
set -u
flowrun=$1 convert=$2 root=$3 build=$(realpath "$4") work=$5 cxx=${6:-c++}
docs=$root/docs/encoders.md
rm -rf "$work" && mkdir -p "$work" && work=$(realpath "$work")
unset HISTOFLOW_PLUGIN_PATH
source "$(dirname "$0")/support/cli_checks.sh"
matches() {  # matches NAME REGEX : a line of the last output matches REGEX
  if grep -qE -- "$2" "$work/out"; then passed=$((passed + 1)); echo "ok $1"
  else failed=$((failed + 1)); echo "FAIL $1: no line matches '$2'"; sed 's/^/    /' "$work/out"; fi
}
lacks() {  # lacks NAME REGEX : no line of the last output matches REGEX
  if ! grep -qE -- "$2" "$work/out"; then passed=$((passed + 1)); echo "ok $1"
  else failed=$((failed + 1)); echo "FAIL $1: a line matches '$2'"; sed 's/^/    /' "$work/out"; fi
}
extract() {  # extract MARKER FILE : the fenced block of the docs whose first line is MARKER, into FILE
  mkdir -p "$(dirname "$2")"
  awk -v marker="$1" '
    /^```/ { if (inside) { if (keep) exit; inside = 0; next } inside = 1; first = 1; next }
    inside && first { first = 0; if ($0 == marker) keep = 1 }
    inside && keep { print }' "$docs" >"$2"
  if [[ ! -s $2 ]]; then echo "FAIL: $docs has no code block starting with '$1'"; echo "0 passed, 1 failed"; exit 1; fi
}

# Step 1 and 2: the plugin folder, its CMakeLists.txt and the add_subdirectory line, as the docs give them.
src=$work/src
extract "// plugins/newcomer/plugin.cpp" "$src/plugins/newcomer/plugin.cpp"
extract "# plugins/newcomer/CMakeLists.txt" "$src/plugins/newcomer/CMakeLists.txt"
extract "# plugins/CMakeLists.txt (add this line)" "$src/plugins/CMakeLists.txt"
extract "# graphs/newcomer.toml" "$work/graphs/newcomer.toml"
# The project around the plugins folder: what histoflow's top-level CMakeLists.txt gives plugin folders
# (histoflow_add_plugin, histoflow::framework, histoflow_torch_core), taken from the existing build tree, so
# that one plugin is built rather than the whole project again.
cat >"$src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.22)
project(newcomer_walkthrough LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
find_package(Torch REQUIRED)
add_library(histoflow::framework SHARED IMPORTED)
set_target_properties(histoflow::framework PROPERTIES IMPORTED_LOCATION "$build/lib/libhistoflow.so"
  INTERFACE_INCLUDE_DIRECTORIES "$root/framework/include;$build/framework/generated")
add_library(histoflow_torch_core SHARED IMPORTED)
set_target_properties(histoflow_torch_core PROPERTIES IMPORTED_LOCATION "$build/lib/libhistoflow_torch_encoders.so"
  INTERFACE_INCLUDE_DIRECTORIES "$root/plugins/torch_encoders/include" INTERFACE_LINK_LIBRARIES "histoflow::framework;\${TORCH_LIBRARIES}")
set(HISTOFLOW_PLUGIN_DIR \${CMAKE_BINARY_DIR}/plugins)
function(histoflow_add_plugin name)
  add_library(\${name} MODULE \${ARGN})
  target_link_libraries(\${name} PRIVATE histoflow::framework)
  set_target_properties(\${name} PROPERTIES PREFIX "libhf_" LIBRARY_OUTPUT_DIRECTORY \${HISTOFLOW_PLUGIN_DIR}
    CXX_VISIBILITY_PRESET hidden)
endfunction()
add_subdirectory(plugins)
EOF
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)  # reruns reuse the compilation
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
check configure 0 cmake -S "$src" -B "$work/build" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx"
# Step 3: build, then check.
check build 0 cmake --build "$work/build" --target newcomer
plugin=$work/build/plugins/libhf_newcomer.so
[[ -f $plugin ]] && { passed=$((passed + 1)); echo "ok build-output"; } || { failed=$((failed + 1)); echo "FAIL no $plugin"; }

# The build's own plugin folder: every library in it is one the build produced.
check plugins-build-only 0 "$flowrun" plugins
lacks plugins-no-leftover-warning "^warning:"
contains plugins-example-backbones "  backbones: example_small_cnn"
matches plugins-torch-backbones "^  backbones: ctranspath dinov2_vitb14 .*resnet50 "
lacks plugins-no-empty-stages "^  stages:$"

export HISTOFLOW_PLUGIN_PATH=$work/build/plugins
check plugins 0 "$flowrun" plugins
contains plugins-newcomer "$plugin"
contains plugins-newcomer-backbones "  backbones: newcomer_tiny_cnn"
lacks plugins-newcomer-no-stages "^  stages:$"

check backbones 0 "$flowrun" backbones
matches backbones-header "^name +family +width +input size +outputs +plugin$"
matches backbones-newcomer "^newcomer_tiny_cnn +cnn +16 +64 px +pooled +libhf_newcomer.so$"
matches backbones-example "^example_small_cnn +cnn +32 +224 px +pooled +libhf_example_backbone.so$"
matches backbones-builtin "^resnet50 +resnet +2048 +224 px +pooled +libhf_torch_encoders.so$"

check describe 0 "$flowrun" describe backbone newcomer_tiny_cnn
contains describe-description "Newcomer: two strided 3x3 convolutions (8, 16 channels), average-pooled, 16-d"
matches describe-width "^  width +16$"
matches describe-input "^  input size +64 px$"
matches describe-mean "^  mean +0.485, 0.456, 0.406$"
matches describe-weights "^  weights source +a state dict with stem"
matches describe-plugin "^  plugin +$plugin$"
check describe-typo 2 "$flowrun" describe backbone newcomer_tiny_cn
contains describe-typo-suggestion "unknown backbone 'newcomer_tiny_cn' (did you mean 'newcomer_tiny_cnn'?)"

# Step 4: a training checkpoint (the model under "backbone.", with a classifier head), written as safetensors by
# hand (no python torch needed), converted to the backbone's plain names.
python3 - "$work/my_training_checkpoint.safetensors" <<'EOF'
import json, math, struct, sys
shapes = {"backbone.stem.weight": [8, 3, 3, 3], "backbone.stem.bias": [8], "backbone.conv.weight": [16, 8, 3, 3],
          "backbone.conv.bias": [16], "backbone.fc.weight": [2, 16], "backbone.fc.bias": [2]}
header, data = {"__metadata__": {"format": "pt"}}, b""
for name, shape in shapes.items():
    count = math.prod(shape)
    values = struct.pack("<%df" % count, *(0.2 * math.sin(len(data) // 4 + i) for i in range(count)))
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(values)]}
    data += values
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + data)
EOF
mkdir -p "$work/models"
weights=$work/models/newcomer_tiny_cnn.safetensors
check convert 0 "$convert" "$work/my_training_checkpoint.safetensors" "$weights" --backbone newcomer_tiny_cnn
contains convert-report "4 tensors, prefix 'backbone.' stripped"
check convert-without-plugin-path 1 env -u HISTOFLOW_PLUGIN_PATH "$convert" "$work/my_training_checkpoint.safetensors" \
  "$work/never.safetensors" --backbone newcomer_tiny_cnn
contains convert-unknown "unknown backbone 'newcomer_tiny_cnn'"
# convert_weights loads build/plugins by itself: a plugin's backbone there is known (and this checkpoint does not fit it).
check convert-build-plugin 1 env -u HISTOFLOW_PLUGIN_PATH "$convert" "$work/my_training_checkpoint.safetensors" \
  "$work/never.safetensors" --backbone example_small_cnn
contains convert-build-plugin-known "do not fit this backbone"

# Step 5: the docs' graph, as written (its relative paths: $work/models, $work/runs).
check run 0 "$flowrun" run "$work/graphs/newcomer.toml" --progress off
contains run-completed "run completed: 64 items"
csv=$work/runs/newcomer/newcomer_features.csv
rows=$( [[ -f $csv ]] && tail -n +2 "$csv" | wc -l || echo 0)
[[ $rows -eq 64 ]] && { passed=$((passed + 1)); echo "ok run-features"; } || { failed=$((failed + 1)); echo "FAIL $csv: $rows rows, expected 64"; }

# The same backbone registered by two plugin files: the error names both.
mkdir -p "$work/dup"
cp "$build/plugins/libhf_example_backbone.so" "$work/dup/"
check duplicate 2 env HISTOFLOW_PLUGIN_PATH="$work/dup" "$flowrun" backbones
contains duplicate-names-both "backbone 'example_small_cnn' is registered twice: by '$build/plugins/libhf_example_backbone.so' and by '$work/dup/libhf_example_backbone.so'"

# A copy of the build's plugin folder (its manifest, links to its libraries) plus a library the build did not
# produce: that one is warned about, by `flowrun plugins` and by the commands that run graphs.
stale=$work/plugins-copy
mkdir -p "$stale"
cp "$build/plugins/.histoflow-built-plugins" "$stale/"
for f in "$build"/plugins/*.so; do ln -s "$f" "$stale/"; done
ln -s "$build/plugins/libhf_example.so" "$stale/libhf_retired.so"  # what a removed plugin leaves behind
check stale-plugins 0 env HISTOFLOW_PLUGIN_PATH="$stale" "$flowrun" plugins
contains stale-warning "warning: $stale/libhf_retired.so was not produced by the current build (a removed plugin's leftover?); delete it"
lacks stale-only-the-leftover "warning: $stale/libhf_(core|example)\.so"
check stale-validate 0 env HISTOFLOW_PLUGIN_PATH="$stale" "$flowrun" validate "$root/graphs/synthetic_tiles.toml"
contains stale-validate-warning "warning: $stale/libhf_retired.so was not produced by the current build"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
