#!/usr/bin/env python3
"""tools/gpu/check prepare: the Debian packages that a histoflow build on a CUDA machine needs and such a machine
lacks, extracted, pruned and packed into .gpu-deps/prefix.tar.xz, which travels with the working tree.

Which packages: the -dev packages the build compiles against (DEV below), plus every package owning a shared
library that those libraries load at run time (their ldd closure, read on this machine), less what the CUDA
machine's own compiler brings in a newer version (EXCLUDED). It runs on Debian 12 with tools/install-deps done:
resolution needs no network (`--resolve-only`); the download asks apt (`apt-get download`), then apt's cache.

    tools/gpu/prepare.py [--resolve-only] [--out .gpu-deps]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What the build compiles against (tools/install-deps' list, less LibTorch, which the GPU machine has as a pip
# torch, and less the Python packages).
DEV = [
    "libtbb-dev",                   # the flow graph runtime
    "libboost1.74-dev",             # Boost.DLL (pruned below to the headers the sources include)
    "libboost-filesystem1.74-dev",  # Boost's filesystem library and its CMake package
    "libtomlplusplus-dev",          # graph files
    "nlohmann-json3-dev",           # summaries, traces
    "catch2",                       # the test binaries
    "libopenslide-dev",             # the slides plugin
    "libvips-dev",                  # the slides plugin, the synthetic cohort
    "libglib2.0-dev",               # vips.pc requires glib-2.0, gobject-2.0, gio-2.0
    "libhdf5-dev",                  # the feature store
    "libtiff-dev",                  # the synthetic cohort
    "zlib1g-dev",                   # the framework
    "pkgconf-bin",                  # pkg-config itself (CUDA images need not have it)
]
# A CUDA image's compiler and C library bring these, newer than Debian 12's: carrying them would shadow the
# compiler's own libstdc++ (which the pip torch needs).
TOOLCHAIN = {"libc6", "libc6-dev", "libstdc++6", "libgcc-s1", "libgomp1", "gcc-12-base", "linux-libc-dev", "libcrypt1"}
# Every Ubuntu 24.04 image has these, with the same sonames and newer: apt, dpkg and the system Python (3.12, which
# the pip torch runs on) need them. Left behind to keep the working tree under the device tool's 64 MiB; the run
# step checks their sonames before it builds (manifest.json lists them). Not libunistring2: Ubuntu 24.04 has only
# libunistring.so.5, and carried libraries (libpsl5) link .so.2.
BASE_SYSTEM = {
    "libssl3", "libsqlite3-0", "libffi8", "libexpat1", "libuuid1", "libzstd1", "liblzma5", "libbz2-1.0", "libpcre2-8-0",
    "libselinux1", "libmount1", "libblkid1", "libgmp10", "libgnutls30", "libp11-kit0", "libtasn1-6", "libnettle8",
    "libhogweed6", "libidn2-0", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1",
}
EXCLUDED = TOOLCHAIN | BASE_SYSTEM
# Libraries of the -dev packages that nothing here links (HDF5's Fortran and C++ bindings).
UNUSED_DEV_LIBRARY = re.compile(r"fortran|_cpp\.so|hl_cpp")
# Kept of the extracted tree; everything else under usr/share, usr/bin, etc/ and every static library goes.
KEEP_SHARE = {"cmake", "pkgconfig"}
KEEP_BIN = {"pkgconf"}


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs).stdout


def installed_versions(packages):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status} ${Version}\n", *packages], capture_output=True, text=True)
    versions = {}
    for line in out.stdout.splitlines():
        name, *status, version = line.split(" ")
        if status[-1:] == ["installed"]:
            versions[name] = version
    missing = [p for p in packages if p not in versions]
    if missing:
        sys.exit("prepare: not installed here: " + " ".join(missing) + " (run tools/install-deps)")
    return versions


def shared_objects(packages):
    """The files the packages' .so links and programs resolve to."""
    files = set()
    for line in run(["dpkg", "-L", *packages]).splitlines():
        path = Path(line)
        if UNUSED_DEV_LIBRARY.search(path.name):
            continue
        if path.is_file() and (re.search(r"\.so(\.\d+)*$", path.name) or path.parent.name == "bin"):
            files.add(str(path.resolve()))
    return files


def ldd_closure(files):
    """Every library the files load, directly or not: resolved path -> the soname asked for."""
    closure = {f: Path(f).name for f in files}
    for f in sorted(files):
        out = subprocess.run(["ldd", f], capture_output=True, text=True).stdout
        for match in re.finditer(r"^\s*(\S+) => (/\S+)", out, re.MULTILINE):
            closure[str(Path(match.group(2)).resolve())] = match.group(1)
    return closure


def owners(paths):
    """Package owning each path (Debian 12 is usr-merged: dpkg may know a file under /lib instead of /usr/lib)."""
    candidates = {}
    for p in paths:
        candidates[p] = [p] + ([p[4:]] if p.startswith("/usr/lib/") else [])
    query = sorted({c for cs in candidates.values() for c in cs})
    out = subprocess.run(["dpkg", "-S", *query], capture_output=True, text=True).stdout
    owner_of = {}
    for line in out.splitlines():
        names, _, path = line.partition(": ")
        owner_of[path] = names.split(",")[0].split(":")[0].strip()
    found, unowned = {}, []
    for p, cs in candidates.items():
        owner = next((owner_of[c] for c in cs if c in owner_of), None)
        if owner:
            found[p] = owner
        else:
            unowned.append(p)
    return found, unowned


def resolve():
    """{package: version} to carry, the sonames left to the GPU machine's base system, libraries no package owns."""
    versions = installed_versions(DEV)
    libraries = ldd_closure(shared_objects(DEV))
    owner_of, unowned = owners(libraries)
    packages = (set(owner_of.values()) | set(DEV)) - EXCLUDED
    assumed = sorted({libraries[path] for path, owner in owner_of.items() if owner in BASE_SYSTEM})
    versions.update(installed_versions(sorted(packages)))
    needed = {Path(path).name for path in libraries} | set(libraries.values())
    return {p: versions[p] for p in sorted(packages)}, needed, assumed, sorted(unowned)


def download(packages, folder):
    """Each package at its installed version: from apt, else apt's cache, else apt's candidate (with a warning)."""
    folder.mkdir(parents=True, exist_ok=True)
    apt = ["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download"]
    for name, version in packages.items():
        if subprocess.run([*apt, f"{name}={version}"], cwd=folder, capture_output=True).returncode == 0:
            continue
        cached = sorted(Path("/var/cache/apt/archives").glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
        if cached:
            shutil.copy(cached[0], folder)
            continue
        if subprocess.run([*apt, name], cwd=folder, capture_output=True).returncode == 0:
            print(f"prepare: warning: {name} {version} is not downloadable; took apt's candidate version", file=sys.stderr)
            continue
        sys.exit(f"prepare: cannot download {name} {version} (no network, and not in /var/cache/apt/archives)")


def boost_headers_used():
    """The Boost headers (relative to usr/include/boost) that the sources' Boost includes pull in, as GCC and Clang
    see them in C++17 and C++20; every folder but the two largest whole, so that another compiler version taking
    other branches in Boost's configuration still finds its headers."""
    includes = set()
    for folder in ("framework", "plugins", "tools", "tests"):
        for source in (REPO / folder).rglob("*"):
            if source.suffix in (".cpp", ".hpp", ".h") and source.is_file():
                includes.update(re.findall(r"#include\s*<(boost/[^>]+)>", source.read_text(errors="replace")))
    includes.add("boost/version.hpp")  # Boost's CMake package reads it
    program = "".join(f"#include <{h}>\n" for h in sorted(includes))
    used = set()
    for compiler in ("g++", "clang++"):
        if not shutil.which(compiler):
            continue
        for standard in ("c++17", "c++20"):
            deps = run([compiler, f"-std={standard}", "-x", "c++", "-M", "-"], input=program).replace("\\\n", " ").split()
            used.update(d.split("/include/boost/", 1)[1] for d in deps if "/include/boost/" in d)
    keep = set()
    for header in used:
        top = header.split("/", 1)[0]
        keep.add(header if top in ("mpl", "preprocessor") else top)
    return keep


def merge_usr_and_relink(root):
    """Debian 12 still ships some libraries in /lib (zlib) and links to them by absolute path: move /lib under usr/
    and make every absolute link relative, so that the tree works wherever it is unpacked."""
    if (root / "lib").is_dir() and not (root / "lib").is_symlink():
        for entry in sorted((root / "lib").rglob("*")):
            if entry.is_dir() and not entry.is_symlink():
                continue
            target = root / "usr" / entry.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() and not target.is_symlink():
                entry.rename(target)
        shutil.rmtree(root / "lib")
    for link in [p for p in root.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            inside = root / ("usr" + target if target.startswith("/lib/") else target.lstrip("/"))
            link.unlink()
            link.symlink_to(os.path.relpath(inside, link.parent))


def prune(root, boost_keep, needed_libraries):
    usr = root / "usr"
    # Shared libraries that nothing in the closure loads (a package's other libraries: ICU's i18n, io, test).
    libdir = usr / "lib" / "x86_64-linux-gnu"
    keep = {(libdir / name).resolve() for name in needed_libraries if (libdir / name).exists()}
    for library in [f for f in libdir.glob("*.so*") if f.is_file() and not f.is_symlink()]:
        if library.resolve() not in keep:
            library.unlink()
    for entry in list((usr / "share").iterdir()) if (usr / "share").exists() else []:
        if entry.name not in KEEP_SHARE:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in list((usr / "bin").iterdir()) if (usr / "bin").exists() else []:
        if entry.name not in KEEP_BIN:
            entry.unlink()
    for gone in ("etc", "usr/sbin", "usr/libexec", "usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0", "usr/lib/x86_64-linux-gnu/gio",
                 "usr/lib/x86_64-linux-gnu/girepository-1.0", "usr/lib/x86_64-linux-gnu/vips-modules-8.14"):
        if (root / gone).exists():
            shutil.rmtree(root / gone)
    # Static libraries, but those a CMake package names (it checks that its files exist: Catch2WithMain).
    named = set()
    for package in root.rglob("*.cmake"):
        named.update(re.findall(r"lib[\w.+-]+\.a\b", package.read_text(errors="replace")))
    for static in list(root.rglob("*.a")):
        if static.name not in named:
            static.unlink()
    boost = usr / "include" / "boost"
    for entry in [e for e in boost.rglob("*") if e.is_file()] if boost.exists() else []:
        relative = entry.relative_to(boost).as_posix()
        if relative not in boost_keep and relative.split("/", 1)[0] not in boost_keep:
            entry.unlink()
    # Debian's alternatives (made by postinst scripts, not in the packages): the serial HDF5 is `hdf5`.
    pkgconfig = usr / "lib" / "x86_64-linux-gnu" / "pkgconfig"
    if (pkgconfig / "hdf5-serial.pc").exists() and not (pkgconfig / "hdf5.pc").exists():
        (pkgconfig / "hdf5.pc").symlink_to("hdf5-serial.pc")
    # Links that pointed at pruned or excluded files.
    for link in [p for p in root.rglob("*") if p.is_symlink() and not p.exists()]:
        link.unlink()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolve-only", action="store_true", help="print the package list (no network needed) and stop")
    parser.add_argument("--out", default=str(REPO / ".gpu-deps"), help="where prefix.tar.xz and packages.txt go")
    args = parser.parse_args()

    packages, needed, assumed, unowned = resolve()
    listing = "".join(f"{name}={version}\n" for name, version in packages.items())
    print(f"prepare: {len(packages)} packages: {len(DEV)} -dev packages and their shared-library closure, less the "
          f"toolchain's ({', '.join(sorted(TOOLCHAIN))}); left to the machine's base system: {' '.join(assumed)}")
    if unowned:
        print("prepare: libraries no package owns (not carried): " + " ".join(unowned))
    if args.resolve_only:
        sys.stdout.write(listing)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="histoflow-gpu-deps-") as scratch:
        debs, root = Path(scratch) / "debs", Path(scratch) / "prefix"
        download(packages, debs)
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(root)])
        merge_usr_and_relink(root)
        prune(root, boost_headers_used(), needed)
        archive = out / "prefix.tar.xz"
        with tarfile.open(archive.with_suffix(".partial"), "w:xz", preset=9) as tar:
            tar.add(root, arcname="prefix")
        archive.with_suffix(".partial").rename(archive)
        (out / "packages.txt").write_text(listing)
        unpacked = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
    manifest = {"packages": len(packages), "archive_bytes": archive.stat().st_size, "unpacked_bytes": unpacked,
                "base_system_sonames": assumed}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"prepare: {archive.relative_to(REPO) if archive.is_relative_to(REPO) else archive}: "
          f"{manifest['archive_bytes'] / 2**20:.1f} MiB ({unpacked / 2**20:.0f} MiB unpacked)")


if __name__ == "__main__":
    main()
