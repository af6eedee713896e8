#!/usr/bin/python3
"""Reads histoflow feature files the way CLAM and TRIDENT users do (h5py), and checks names, shapes, dtypes and
attributes. usage: check_h5py.py FEATURES_FOLDER [--expect-slides N] [--expect-dataset NAME]"""
import argparse
import glob
import os
import sys

import h5py
import numpy as np

SLIDE_ATTRIBUTES = {"encoder": str, "weights_sha256": str, "output": str, "tile_size": np.integer, "mpp": np.floating,
                    "level": np.integer, "downsample": np.floating, "slide_path": str, "slide_id": str,
                    "slide_fingerprint": str, "min_tissue": np.floating, "stride": np.integer,
                    "histoflow_version": str, "lineage": str, "rows": np.integer, "dim": np.integer}


def check(condition, message):
    if not condition:
        sys.exit("FAIL: " + message)


def is_kind(value, kind):
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, kind)


def check_slide(path, f):
    features, coords = f["features"], f["coords"]  # CLAM: file['features'][:], file['coords'][:]
    check(features.ndim == 2 and coords.shape == (features.shape[0], 2), f"{path}: shapes {features.shape} {coords.shape}")
    check(features.dtype in (np.float32, np.float16), f"{path}: features dtype {features.dtype}")
    check(coords.dtype == np.int64, f"{path}: coords dtype {coords.dtype}")
    for name, kind in SLIDE_ATTRIBUTES.items():
        check(name in f.attrs, f"{path}: attribute {name} missing")
        check(is_kind(f.attrs[name], kind), f"{path}: attribute {name} is {type(f.attrs[name])}")
    check(f.attrs["rows"] == features.shape[0] and f.attrs["dim"] == features.shape[1], f"{path}: rows/dim attributes")
    # TRIDENT/CLAM read the patch geometry from the coords dataset.
    for name in ("patch_size", "patch_level", "patch_size_level0", "target_patch_size"):
        check(name in coords.attrs, f"{path}: coords attribute {name} missing")
    # CLAM reads patch_size pixels at patch_level: that region must be the tile's level-0 extent.
    check(coords.attrs["patch_level"] == f.attrs["level"], f"{path}: patch_level")
    check(abs(coords.attrs["patch_size"] * f.attrs["downsample"] - coords.attrs["patch_size_level0"]) <= f.attrs["downsample"],
          f"{path}: patch_size {coords.attrs['patch_size']} at downsample {f.attrs['downsample']} is not "
          f"patch_size_level0 {coords.attrs['patch_size_level0']}")
    check(coords.attrs["target_patch_size"] == f.attrs["tile_size"], f"{path}: target_patch_size")
    values = features[:]
    check(np.isfinite(values).all(), f"{path}: non-finite features")
    c = coords[:]
    check((c >= 0).all() and len({tuple(r) for r in c}) == len(c), f"{path}: coordinates negative or repeated")
    check(np.array_equal(c[np.lexsort((c[:, 0], c[:, 1]))], c), f"{path}: coordinates not in row-major grid order")
    return features.shape


def check_patches(path, f):
    features, labels, paths = f["features"], f["labels"], f["paths"]
    n = features.shape[0]
    check(labels.shape == (n,) and paths.shape == (n,), f"{path}: labels/paths shapes")
    check(labels.dtype == np.int64, f"{path}: labels dtype {labels.dtype}")
    names = [x.decode() if isinstance(x, bytes) else x for x in f.attrs["class_names"]]
    check(len(names) >= 2 and labels[:].max() < len(names) and labels[:].min() >= 0, f"{path}: labels vs class_names {names}")
    decoded = [p.decode() for p in paths[:]]
    check(all(os.path.basename(os.path.dirname(p)) == names[l] for p, l in zip(decoded, labels[:])),
          f"{path}: a path's class folder disagrees with its label")
    return features.shape, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--expect-slides", type=int, default=0)
    ap.add_argument("--expect-dataset", default="")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.folder, "**", "*.h5"), recursive=True))
    slides = datasets = 0
    for path in files:
        with h5py.File(path, "r") as f:  # the 4 KiB histoflow header is an HDF5 user block: h5py skips it
            if "coords" in f:
                shape = check_slide(path, f)
                slides += 1
                print(f"slide   {os.path.basename(path)}: features {shape} {f['features'].dtype}, encoder {f.attrs['encoder']}")
            else:
                shape, names = check_patches(path, f)
                datasets += 1
                print(f"patches {os.path.basename(path)}: features {shape} {f['features'].dtype}, classes {names}")
    check(slides >= a.expect_slides, f"{slides} slide files, expected {a.expect_slides}")
    if a.expect_dataset:
        check(any(os.path.basename(p) == a.expect_dataset + ".h5" for p in files), f"no dataset file {a.expect_dataset}.h5")
    print(f"h5py read {slides} slide file(s) and {datasets} patch dataset(s): OK")


main()
