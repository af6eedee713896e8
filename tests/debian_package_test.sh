#!/usr/bin/env bash
# The Debian package (docs/install.md): cpack builds histoflow_<version>_amd64.deb from the build; its control
# file depends on the Debian runtime libraries (derived by dpkg-shlibdeps); `dpkg -x` gives the /usr layout, whose
# flowrun runs (--version, plugins: every plugin from the package's own folder). apt-get resolves the package's
# dependencies on this machine; as root, with no histoflow installed, it really installs it (the local file; its
# dependencies are installed already), checks /usr/bin/flowrun, and purges it again.
# usage: debian_package_test.sh BUILD_DIR WORK_DIR
set -u
build=$(realpath "$1") work=$2
rm -rf "$work" && mkdir -p "$work" && work=$(realpath "$work")
unset HISTOFLOW_PLUGIN_PATH HISTOFLOW_FEATURE_READER LD_LIBRARY_PATH
source "$(dirname "$0")/support/cli_checks.sh"
cd "$work"

check cpack 0 cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work"
debs=("$work"/histoflow_*_amd64.deb)
deb=${debs[0]}
[[ ${#debs[@]} == 1 && -f $deb ]] && { passed=$((passed + 1)); echo "ok one-package: $(basename "$deb")"; } || { failed=$((failed + 1)); echo "FAIL no single .deb in $work"; }

check control 0 dpkg-deb -f "$deb" Package Version Depends Recommends
for dependency in "libtorch1.13" "libopenslide0" "libhdf5-" "libvips42" "libtbb12" "libboost-filesystem" "librsvg2-2" "libtomlplusplus3"; do
  contains "depends-$dependency" "$dependency"
done
contains recommends-openblas "Recommends: libopenblas0-openmp"

# The layout, unpacked.
check unpack 0 dpkg -x "$deb" "$work/root"
usr=$work/root/usr
check layout 0 bash -c "cd '$work/root' && ls usr/bin/flowrun usr/bin/histoflow-read-features usr/bin/histoflow-ssl-train \
  usr/lib/libhistoflow.so usr/lib/libhistoflow_torch_encoders.so usr/lib/cmake/histoflow/histoflowConfig.cmake \
  usr/lib/cmake/histoflow/HistoflowPlugin.cmake usr/include/histoflow/plugin_api.hpp usr/include/histoflow/version.hpp \
  usr/include/histoflow/torch_encoders/backbone.hpp usr/share/histoflow/examples/example_backbone/CMakeLists.txt \
  usr/share/histoflow/graphs/demo.toml usr/share/doc/histoflow/write-a-plugin.md"
expected_plugins=$(grep -c '^libhf_' "$build/plugins/.histoflow-built-plugins")  # the build's, less the two examples
check plugin-count 0 bash -c "ls '$usr/lib/histoflow/plugins' | grep -c '^libhf_'"
contains plugin-count-value "$((expected_plugins - 2))"

check version 0 "$usr/bin/flowrun" --version
contains version-text "flowrun (histoflow) "
check plugins 0 "$usr/bin/flowrun" plugins
contains plugins-from-package "torch_encoders  $usr/lib/histoflow/plugins/libhf_torch_encoders.so"
contains plugins-origin "  found in: the installed plugin folder"
cp "$work/out" "$work/plugins.txt"
check plugins-only-package 1 grep -Ev "^[a-z_]+  $usr/lib/histoflow/plugins/libhf_[a-z_]+\.so$|^ |^$|^histoflow " "$work/plugins.txt"  # no other line

# apt-get: the dependencies resolve here; a real install where this runs as root and no histoflow is installed.
if ! command -v apt-get >/dev/null; then
  echo "skip apt-get: not a Debian system"
elif [[ $(id -u) == 0 ]] && ! dpkg -s histoflow >/dev/null 2>&1; then
  check apt-install 0 apt-get install -y -o DPkg::Lock::Timeout=120 "$deb"  # the dependencies are installed: nothing to download
  check installed-version 0 /usr/bin/flowrun --version
  check installed-plugins 0 /usr/bin/flowrun plugins
  contains installed-plugins-folder "torch_encoders  /usr/lib/histoflow/plugins/libhf_torch_encoders.so"
  check apt-purge 0 dpkg --purge histoflow
else
  check apt-simulate 0 apt-get install -s "$deb"
  contains apt-simulate-installs "Inst histoflow"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]] && rm -rf "$work/_CPack_Packages" "$work/root"  # the package itself stays
