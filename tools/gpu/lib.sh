# Functions of tools/gpu/check (sourced). Each phase records one line in $work/results.tsv (phase, status, seconds,
# detail) and never stops the script: a failed phase leaves the next ones to run where they can, and
# tools/gpu/summary.py turns the records and figures into $out/summary.md and summary.json.

say() { echo "[$(date +%T) +$((SECONDS - check_start))s] $*"; }

# start_check PROFILE OUT WORK BUDGET_SECONDS
start_check() {
  profile=$1 out=$2 work=$3 budget=$4
  mkdir -p "$out" "$work"
  check_start=$SECONDS
  results=$work/results.tsv
  : >"$results"
  : >"$work/figures.tsv"
  rm -f "$work"/bench*.json "$work/e2e.tsv" "$work/tests.log"  # an earlier check's figures are not this one's
  device=cpu
  [[ $profile == gpu ]] && device=cuda
  # Everything printed also goes to check.log; the summary is printed last (the device tool returns the output's end).
  exec 3>&1 4>&2
  exec > >(tee "$out/check.log") 2>&1
  tee_pid=$!
  say "tools/gpu/check $profile: out $out, work $work, budget ${budget}s"
}

# record PHASE STATUS DETAIL (STATUS: ok, failed or skipped; the phase's seconds are those since the last record)
record() {
  local now=$SECONDS
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$((now - ${last_record:-$check_start}))" "$(tr '\t\n' '  ' <<<"$3")" >>"$results"
  last_record=$now
  say "$1: $2 - $3"
}
# figure KEY VALUE: a measured number or fact for the summary.
figure() { printf '%s\t%s\n' "$1" "$2" >>"$work/figures.tsv"; }

# Seconds a phase may take: CAP, or what is left of the budget less a reserve for the summary.
phase_limit() {
  local left=$((budget - (SECONDS - check_start) - 15))
  ((left < $1)) && echo $((left > 0 ? left : 0)) || echo "$1"
}

# --- the prefix of Debian packages (run step) --------------------------------------------------------------------

# fix_prefix PREFIX: .pc files name Debian's /usr: point them into the prefix, and drop Requires.private (linking is
# dynamic, and the private requirements' .pc files are not carried).
fix_prefix() {
  local pc
  while IFS= read -r pc; do
    sed -i -E -e "s#(^|[=[:space:]]|-I|-L)/usr(/|\$|[[:space:]])#\\1$1/usr\\2#g" -e '/^Requires\.private:/d' "$pc"
  done < <(find "$1/usr" -name '*.pc' -type f)
}

# pkg_config_wrapper PREFIX FILE: Debian's pkgconf from the prefix, reading the prefix's .pc files only.
pkg_config_wrapper() {
  mkdir -p "$(dirname "$2")"
  cat >"$2" <<EOF
#!/bin/sh
PKG_CONFIG_LIBDIR='$1/usr/lib/x86_64-linux-gnu/pkgconfig:$1/usr/lib/pkgconfig:$1/usr/share/pkgconfig' PKG_CONFIG_PATH= \\
  LD_LIBRARY_PATH='$1/usr/lib/x86_64-linux-gnu' exec '$1/usr/bin/pkgconf' "\$@"
EOF
  chmod +x "$2"
}

# setup_prefix DEPS_DIR PREFIX: unpacks DEPS_DIR/prefix.tar.xz (once per archive) and checks that the machine has the
# base-system libraries prepare left behind.
setup_prefix() {
  local archive=$1/prefix.tar.xz
  prefix=$2
  if [[ ! -f $archive ]]; then
    record prefix failed "no $archive: run 'tools/gpu/check prepare' on the Debian machine first and carry .gpu-deps"
    return 1
  fi
  local stamp
  stamp=$(cksum <"$archive")
  if [[ ! -f $prefix/.stamp || $(cat "$prefix/.stamp") != "$stamp" ]]; then
    rm -rf "$prefix" "$prefix.unpacking"
    mkdir -p "$prefix.unpacking"
    tar -xJf "$archive" -C "$prefix.unpacking" && mv "$prefix.unpacking/prefix" "$prefix" && rmdir "$prefix.unpacking" || {
      record prefix failed "cannot unpack $archive"
      return 1
    }
    fix_prefix "$prefix"
    echo "$stamp" >"$prefix/.stamp"
  fi
  pkg_config_wrapper "$prefix" "$work/bin/pkg-config"
  local missing=() so cache
  cache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
  for so in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["base_system_sonames"]))' "$1/manifest.json"); do
    grep -qF "$so (" <<<"$cache" || missing+=("$so")
  done
  if ((${#missing[@]})); then
    record prefix failed "this machine lacks ${missing[*]}, which prepare leaves to the base system: carry them (BASE_SYSTEM in tools/gpu/prepare.py)"
    return 1
  fi
  record prefix ok "$(du -sm "$prefix" | cut -f1) MiB unpacked in $prefix; $("$work/bin/pkg-config" --modversion vips openslide hdf5 | tr '\n' ' ')"
}

# selftest: fix_prefix and the wrapper on a mock prefix whose .pc files are laid out as Debian's.
check_prefix_fixups() {
  local mock=$work/mock-prefix pkgconf
  pkgconf=$(command -v pkgconf || true)
  if [[ -z $pkgconf ]]; then
    record prefix_fixups skipped "no pkgconf here"
    return 0
  fi
  rm -rf "$mock"
  mkdir -p "$mock/usr/lib/x86_64-linux-gnu/pkgconfig" "$mock/usr/bin" "$mock/usr/include/widget/serial" "$mock/usr/include/base-1.0"
  cp "$pkgconf" "$mock/usr/bin/pkgconf"
  printf 'prefix=/usr\nincludedir=${prefix}/include\nlibdir=${prefix}/lib/x86_64-linux-gnu\nName: base\nDescription: b\nVersion: 1.0\nLibs: -L${libdir} -lbase\nCflags: -I${includedir}/base-1.0\n' \
    >"$mock/usr/lib/x86_64-linux-gnu/pkgconfig/base-1.0.pc"
  printf 'prefix=/usr\nName: widget\nDescription: w\nVersion: 2.0\nRequires: base-1.0\nRequires.private: not-carried >= 1\nCflags: -I/usr/include/widget/serial\nLibs: -L/usr/lib/x86_64-linux-gnu -lwidget\n' \
    >"$mock/usr/lib/x86_64-linux-gnu/pkgconfig/widget.pc"
  fix_prefix "$mock"
  pkg_config_wrapper "$mock" "$work/mock-bin/pkg-config"
  local got want="-I$mock/usr/include/widget/serial -I$mock/usr/include/base-1.0 -L$mock/usr/lib/x86_64-linux-gnu -lwidget -lbase"
  got=$(LD_LIBRARY_PATH= "$work/mock-bin/pkg-config" --cflags --libs widget 2>&1 | xargs || true)
  if [[ $got == "$want" ]]; then
    record prefix_fixups ok ".pc paths moved into the prefix, Requires.private dropped: $got"
  else
    record prefix_fixups failed "pkg-config gave '$got', expected '$want'"
  fi
}

# --- toolchain and build (run step) ------------------------------------------------------------------------------

# Sets python, torch_cmake, torch_root, torch_abi, cmake_bin, ninja_bin, nvcc, cuda_home, nvtx3, cudnn_args.
find_toolchain() {
  python=${PYTHON:-python3}
  local info
  if ! info=$("$python" -c 'import os, torch
print(torch.utils.cmake_prefix_path, os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.__version__,
      torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no-GPU")' 2>&1); then
    record toolchain failed "python3 cannot import torch: $(tail -1 <<<"$info")"
    return 1
  fi
  read -r torch_cmake torch_root torch_abi torch_version torch_cuda gpu_name <<<"$info"
  cmake_bin=$(command -v cmake || "$python" -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))' 2>/dev/null || true)
  ninja_bin=$(command -v ninja || "$python" -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR, "ninja"))' 2>/dev/null || true)
  nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
  if [[ -z $cmake_bin || -z $ninja_bin || -z $nvcc ]] || ! command -v g++ >/dev/null; then
    record toolchain failed "missing: cmake '$cmake_bin', ninja '$ninja_bin', nvcc '$nvcc', g++ '$(command -v g++)'"
    return 1
  fi
  cuda_home=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
  export PATH="$cuda_home/bin:$PATH"
  local site d
  site=$(dirname "$torch_root")
  nvtx3=
  for d in "$cuda_home/include" "$cuda_home/targets/x86_64-linux/include" "$site"/nvidia/*/include "$site"/nvidia/*/*/include; do
    [[ -f $d/nvtx3/nvToolsExt.h ]] && { nvtx3=$d; break; }
  done
  cudnn_args=()
  local cudnn_h cudnn_so
  cudnn_h=$(find "$site/nvidia" "$cuda_home/include" -name cudnn_version.h 2>/dev/null | head -1 || true)
  cudnn_so=$(find "$site/nvidia" "$cuda_home/lib64" -name 'libcudnn.so*' 2>/dev/null | sort | head -1 || true)
  [[ -n $cudnn_h && -n $cudnn_so ]] && cudnn_args=(-DCUDNN_INCLUDE_PATH="$(dirname "$cudnn_h")" -DCUDNN_LIBRARY_PATH="$cudnn_so")
  figure torch "$torch_version (CUDA $torch_cuda)"
  figure gpu "$gpu_name"
  figure driver "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
  figure nvcc "$("$nvcc" --version | grep -o 'release [0-9.]*' | head -1)"
  figure compiler "$(g++ --version | head -1)"
  figure cmake "$("$cmake_bin" --version | head -1)"
  record toolchain ok "torch $torch_version (CUDA $torch_cuda, C++11 ABI $torch_abi), $gpu_name, nvcc in $cuda_home, nvtx3 '${nvtx3:-none}', cuDNN '${cudnn_h:-none}'"
}

# configure_and_build KEEP: configures with the pip torch's CMake package (or, when that fails, with its folder
# directly: HISTOFLOW_TORCH_ROOT) and builds the targets the checks run. Sets build.
configure_and_build() {
  build=$work/build
  [[ $1 == 1 ]] || rm -rf "$build"
  local libs=$prefix/usr/lib/x86_64-linux-gnu
  # DT_RPATH (not RUNPATH) reaches the carried libraries' own dependencies too: no LD_LIBRARY_PATH anywhere.
  local link="-Wl,--disable-new-dtags -Wl,-rpath,$libs:$libs/hdf5/serial"
  local common=(-S "$repo" -B "$build" -G Ninja -DCMAKE_MAKE_PROGRAM="$ninja_bin" -DCMAKE_BUILD_TYPE=Release
    -DHISTOFLOW_BUILD_TESTS=ON -DCMAKE_PREFIX_PATH="$prefix/usr" -DPKG_CONFIG_EXECUTABLE="$work/bin/pkg-config"
    -DCMAKE_EXE_LINKER_FLAGS="$link" -DCMAKE_SHARED_LINKER_FLAGS="$link" -DCMAKE_MODULE_LINKER_FLAGS="$link"
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  local cuda=(-DTorch_DIR="$torch_cmake/Torch" -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_CUDA_ARCHITECTURES=90
    -DCUDA_TOOLKIT_ROOT_DIR="$cuda_home" -DCUDAToolkit_ROOT="$cuda_home" -DCMAKE_CUDA_COMPILER="$nvcc" -DUSE_SYSTEM_NVTX=ON
    ${nvtx3:+-Dnvtx3_dir="$nvtx3"} "${cudnn_args[@]}")
  local how=package
  say "configuring (build.log)"
  if ! timeout "$(phase_limit 150)" "$cmake_bin" "${common[@]}" "${cuda[@]}" >"$out/build.log" 2>&1; then
    say "configuring with the pip torch's CMake package failed; its last lines:"
    grep -E -A3 'CMake Error|Error' "$out/build.log" | head -30 || true
    rm -rf "$build"
    how="without the pip torch's CMake package (HISTOFLOW_TORCH_ROOT)"
    if ! timeout "$(phase_limit 120)" "$cmake_bin" "${common[@]}" -DHISTOFLOW_TORCH_ROOT="$torch_root" \
      -DHISTOFLOW_TORCH_CXX11_ABI="$torch_abi" >>"$out/build.log" 2>&1; then
      tail -40 "$out/build.log"
      record configure failed "both ways; build.log: $(grep -m2 'CMake Error' "$out/build.log" | tr '\n' ' ')"
      return 1
    fi
  fi
  record configure ok "$how"
  local targets=(flowrun core slides torch_encoders features torch_tests bench_encoders make_synthetic_cohort)
  say "building ${targets[*]} on $(nproc) cores (build.log)"
  if ! timeout "$(phase_limit 360)" "$ninja_bin" -C "$build" "${targets[@]}" >>"$out/build.log" 2>&1; then
    grep -E -B2 -A6 'error:|FAILED' "$out/build.log" | head -60 || true
    record build failed "$(grep -m1 -E 'error:' "$out/build.log" | cut -c1-300)"
    return 1
  fi
  record build ok "${#targets[@]} targets"
}

# --- measurements (run step and selftest) ------------------------------------------------------------------------

# run_tests CATCH_FILTER CAP_SECONDS
run_tests() {
  local limit log=$work/tests.log
  limit=$(phase_limit "$2")
  if ((limit < 20)); then record tests skipped "out of time"; return 0; fi
  say "torch_tests '$1' on $device"
  local rc=0
  HISTOFLOW_TEST_DEVICE=$device HISTOFLOW_CHECK_PACKETS=1 timeout "$limit" "$build/bin/torch_tests" "$1" >"$log" 2>&1 || rc=$?
  grep -E 'parity |relative L2|FAILED|failed|passed' "$log" | head -80 || true
  local line
  line=$(grep -E 'All tests passed|test cases:' "$log" | tail -1 || true)
  if ((rc == 0)); then record tests ok "$line ($1, device $device)"; else record tests failed "exit $rc: ${line:-$(tail -3 "$log")}"; fi
}

# run_bench "BENCH_ENCODERS_ARGS" CAP_SECONDS [NAME]: one bench_encoders call, its rows in $work/NAME.json (bench_encoders
# writes them at its end: several short calls keep what finished when time runs out).
run_bench() {
  local limit name=${3:-bench}
  limit=$(phase_limit "$2")
  if ((limit < 20)); then record "$name" skipped "out of time"; return 0; fi
  say "bench_encoders --device $device $1"
  local status=0
  # shellcheck disable=SC2086  # the arguments are words
  timeout "$limit" "$build/bin/bench_encoders" --device "$device" $1 --json "$work/$name.json" || status=$?
  if ((status == 0)); then
    record "$name" ok "$1"
  elif ((status == 124)); then  # bench_encoders writes its JSON after every row: the finished rows are kept
    local rows
    rows=$(grep -c '"backbone"' "$work/$name.json" 2>/dev/null) || true
    record "$name" partial "stopped at the phase's ${limit} s with ${rows:-0} rows measured ($1)"
  else
    record "$name" failed "bench_encoders exit $status ($1)"
  fi
}

# run_end_to_end BACKBONE PRECISION BATCH STREAMS "COHORT_ARGS" CAP_SECONDS [OTHER_STREAMS]: tiles per second of the
# encoder alone (tiles made in memory) and of the whole-slide graph (slides, tissue tiling, reading, the encoder, the
# HDF5 store) on the same number of tiles, each over the run less the stages' opening (model loading); with
# OTHER_STREAMS, the encoder alone with that many streams too, while time is left.
run_end_to_end() {
  local backbone=$1 precision=$2 batch=$3 streams=$4 cohort_args=$5 other_streams=${7:-} limit
  limit=$(phase_limit "$6")
  if ((limit < 30)); then record end_to_end skipped "out of time"; return 0; fi
  local deadline=$((SECONDS + limit)) data=$work/e2e flowrun=$build/bin/flowrun
  mkdir -p "$data"
  if [[ ! -f $data/cohort/manifest.csv || $(cat "$data/cohort.args" 2>/dev/null) != "$cohort_args" ]]; then
    say "synthetic cohort: $cohort_args"
    rm -rf "$data/cohort"
    # shellcheck disable=SC2086
    if ! timeout $((deadline - SECONDS)) "$build/bin/make_synthetic_cohort" --out "$data/cohort" --seed 5 --external 0 \
      --without-mpp 0 --patches-per-class 0 $cohort_args >"$data/cohort.log" 2>&1; then
      tail -5 "$data/cohort.log"
      record end_to_end failed "make_synthetic_cohort: $(tail -1 "$data/cohort.log")"
      return 0
    fi
    echo "$cohort_args" >"$data/cohort.args"
  fi
  local header slides encoder
  header=$'schema_version = 1\n[run]\nmax_in_flight = 4\nmax_tiles_in_flight = '$((batch * 4))$'\n'
  slides=$'[stage.slides]\nuse = "slide_source"\nmanifest = "'$data/cohort/manifest.csv$'"\n[stage.tiles]\nuse = "tissue_tiler"\ninput = "slides"\nmpp = 0.5\nsize = 224\nmin_tissue = 0.25\ncache_grids = false\n[stage.read]\nuse = "tile_reader"\ninput = "tiles"\n'
  encoder() { printf '[stage.encode]\nuse = "torch_encoder"\ninput = "%s"\nbackbone = "%s"\nsynthetic_weights = true\nprecision = "%s"\ndevice = "%s"\nbatch = %s\nstreams = %s\n' "$1" "$backbone" "$precision" "$device" "$batch" "$streams"; }
  experiment() { printf '[experiment]\nname = "%s"\noutput = "%s"\n' "$1" "$data/runs/$1"; }
  { echo "$header"; experiment tiling; echo "$slides"
    printf '[stage.sink]\nuse = "null_sink"\ninput = "read"\n[stage.grids]\nuse = "null_sink"\ninput = "tiles.grid"\n'; } >"$data/tiling.toml"
  say "tiling the cohort (and reading every tile once: the slides are then in the page cache for both runs)"
  if ! timeout $((deadline - SECONDS)) "$flowrun" run "$data/tiling.toml" --progress off >"$data/tiling.log" 2>&1; then
    tail -5 "$data/tiling.log"
    record end_to_end failed "tiling run: $(grep -m1 -iE 'error|fatal' "$data/tiling.log")"
    return 0
  fi
  local tiles
  if ! tiles=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print([x["calls"] for x in s["stages"] if x["id"]=="sink"][0])' \
    "$data/runs/tiling/run_summary.json") || ((tiles == 0)); then
    record end_to_end failed "the tiling run found no tiles"
    return 0
  fi
  { echo "$header"; experiment encoder_only; printf '[stage.tiles]\nuse = "synthetic_tiles"\ncount = %s\nsize = 224\n' "$tiles"
    encoder tiles; printf '[stage.sink]\nuse = "null_sink"\ninput = "encode"\n'; } >"$data/encoder_only.toml"
  { echo "$header"; experiment end_to_end; echo "$slides"; encoder read
    printf '[stage.store]\nuse = "slide_store"\ninputs = ["encode", "tiles.grid"]\n'; } >"$data/end_to_end.toml"
  local run runs=(encoder_only end_to_end)
  if [[ -n $other_streams ]]; then
    sed "s/^streams = .*/streams = $other_streams/; s/name = \"encoder_only\"/name = \"encoder_only_streams\"/; s#/runs/encoder_only\"#/runs/encoder_only_streams\"#" \
      "$data/encoder_only.toml" >"$data/encoder_only_streams.toml"
    runs+=(encoder_only_streams)
  fi
  local began took=0
  for run in "${runs[@]}"; do
    if [[ $run == encoder_only_streams ]] && ((deadline - SECONDS < took * 3 / 2 + 10)); then
      say "no time left for encoder-only with $other_streams streams"
      break
    fi
    began=$SECONDS
    rm -rf "$data/runs/$run"
    say "$run: $tiles tiles, $backbone $precision, batch $batch, $streams streams, device $device"
    local trace=()
    [[ $run == end_to_end ]] && trace=(--trace "$data/end_to_end.trace.json")
    if ! timeout $((deadline - SECONDS)) "$flowrun" run "$data/$run.toml" --progress off "${trace[@]}" >"$data/$run.log" 2>&1; then
      tail -8 "$data/$run.log"
      record end_to_end failed "$run run: $(grep -m1 -iE 'error|fatal' "$data/$run.log" | cut -c1-300)"
      return 0
    fi
    grep -E 'run completed' "$data/$run.log" || true
    [[ $run == encoder_only ]] && took=$((SECONDS - began))
  done
  "$flowrun" trace summary "$data/end_to_end.trace.json" >"$out/e2e-trace.txt" 2>&1 || true
  python3 - "$data" "$tiles" "$backbone" "$precision" "$batch" "$streams" "$other_streams" >"$work/e2e.tsv" <<'PY'
import json, os, sys
data, tiles = sys.argv[1], int(sys.argv[2])
for run in ("encoder_only", "end_to_end", "encoder_only_streams"):
    if not os.path.exists(f"{data}/runs/{run}/run_summary.json"):
        continue
    s = json.load(open(f"{data}/runs/{run}/run_summary.json"))
    opening = sum(x["open_seconds"] for x in s["stages"])
    seconds = s["wall_seconds"] - opening
    print(f"{run}\t{tiles}\t{seconds:.3f}\t{tiles / seconds:.1f}\t{opening:.2f}\t{s['status']}")
print("config\t" + "\t".join(sys.argv[3:]))
PY
  record end_to_end ok "$(awk -F'\t' '$1!="config"{printf "%s %s tiles/s; ", $1, $4}' "$work/e2e.tsv")"
}

# Writes summary.md and summary.json into $out, prints the summary; the exit status says whether every phase that
# ran passed (and, on a GPU, whether the goals were met: it reports them, it does not fail on them).
finish_check() {
  local rc=0
  python3 "$here/summary.py" --profile "$profile" --work "$work" --out "$out" || rc=$?
  exec 1>&3 2>&4  # closes tee's pipe: wait for it to write the rest of check.log
  wait "$tee_pid" 2>/dev/null || true
  return "$rc"
}
