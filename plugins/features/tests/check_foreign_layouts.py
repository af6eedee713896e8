#!/usr/bin/python3
"""Reads feature_export's CLAM and TRIDENT layouts exactly as those tools' loaders do, and checks them against
the store's own files. usage: check_foreign_layouts.py EXPORT_FOLDER STORE_FOLDER

CLAM: dataset_generic.Generic_MIL_Dataset takes torch.load(pt_files/<slide>.pt) or h5_files/<slide>.h5's
'features' and 'coords'; dataset_h5.Whole_Slide_Bag_FP reads, for each coordinate, read_region(coord,
coords.attrs['patch_level'], (coords.attrs['patch_size'],) * 2) with OpenSlide: that region must be the tile.
TRIDENT: features_<encoder>/<slide>.h5 'features' and 'coords', whose attributes patch_size (at
target_magnification), patch_size_level0 and the magnifications must agree."""
import glob
import os
import sys

import h5py
import numpy as np
import openslide
import torch


def check(condition, message):
    if not condition:
        sys.exit("FAIL: " + message)


def main():
    export, store = sys.argv[1], sys.argv[2]
    stored = {}
    for path in glob.glob(os.path.join(store, "**", "*.h5"), recursive=True):
        with h5py.File(path, "r") as f:
            stored[f.attrs["slide_id"]] = (f["features"][:], f["coords"][:], dict(f.attrs))
    check(stored, f"no store files under {store}")
    clam, trident = os.path.join(export, "clam"), os.path.join(export, "trident")
    for slide_id, (features, coords, attrs) in sorted(stored.items()):
        extent = attrs["extent_level0"]
        # CLAM
        pt = torch.load(os.path.join(clam, "pt_files", slide_id + ".pt"))
        check(isinstance(pt, torch.Tensor) and pt.dtype == torch.float32, f"{slide_id}.pt: {type(pt)}")
        check(np.array_equal(pt.numpy(), features), f"{slide_id}.pt: features differ from the store's")
        with h5py.File(os.path.join(clam, "h5_files", slide_id + ".h5"), "r") as f:
            check(np.array_equal(f["features"][:], features) and np.array_equal(f["coords"][:], coords), f"{slide_id}: CLAM h5")
        with h5py.File(os.path.join(clam, "patches", slide_id + ".h5"), "r") as f:
            level, size = f["coords"].attrs["patch_level"], f["coords"].attrs["patch_size"]
            check(np.array_equal(f["coords"][:], coords), f"{slide_id}: CLAM patches coords")
        wsi = openslide.OpenSlide(attrs["slide_path"])
        region = wsi.read_region(tuple(int(v) for v in coords[0]), int(level), (int(size), int(size)))
        footprint = region.size[0] * wsi.level_downsamples[level]
        check(abs(footprint - extent) <= wsi.level_downsamples[level],
              f"{slide_id}: CLAM reads {region.size[0]} px at level {level}, {footprint} level-0 px; the tile is {extent}")
        check(size != attrs["tile_size"] or extent == attrs["tile_size"] * wsi.level_downsamples[level],
              f"{slide_id}: patch_size is the encoder's input size, not the size read")
        # TRIDENT
        matches = glob.glob(os.path.join(trident, "*x_*px_*px_overlap", "features_*", slide_id + ".h5"))
        check(len(matches) == 1, f"{slide_id}: TRIDENT files {matches}")
        with h5py.File(matches[0], "r") as f:
            check(np.array_equal(f["features"][:], features) and np.array_equal(f["coords"][:], coords), f"{slide_id}: TRIDENT h5")
            a = f["coords"].attrs
            for key in ("patch_size", "patch_size_level0", "level0_magnification", "target_magnification", "overlap"):
                check(key in a, f"{slide_id}: TRIDENT coords attribute {key} missing")
            check(a["patch_size"] == attrs["tile_size"] and a["patch_size_level0"] == round(extent), f"{slide_id}: TRIDENT sizes")
            scale = a["level0_magnification"] / a["target_magnification"]
            check(abs(a["patch_size"] * scale - a["patch_size_level0"]) <= 1, f"{slide_id}: TRIDENT magnifications vs sizes")
            check(f["features"].attrs["encoder"] == attrs["encoder"], f"{slide_id}: TRIDENT features encoder")
        with h5py.File(os.path.join(os.path.dirname(os.path.dirname(matches[0])), "patches", slide_id + "_patches.h5"), "r") as f:
            check(np.array_equal(f["coords"][:], coords), f"{slide_id}: TRIDENT patches coords")
    print(f"CLAM and TRIDENT layouts of {len(stored)} slides read as their loaders read them: same features and coordinates; "
          f"CLAM reads {int(size)} px at level {int(level)} for {int(attrs['tile_size'])} px tiles of {extent} level-0 px")


if __name__ == "__main__":
    main()
