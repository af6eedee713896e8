#!/usr/bin/python3
"""Checks a folder written by make_synthetic_cohort with OpenSlide (python3-openslide, numpy, PIL).

usage: tools/synth/verify_cohort.py DIR

Every good slide: vendor aperio, >= 3 levels downsampled by 2, the layout's size, openslide.mpp-x/y equal to the
layout's mpp (absent where it is null), the tissue mask rebuilt from the layout's polygons matches the layout's
pixel counts and the pixels OpenSlide reads (level 2), tissue is pink/purple and background near-white.
Broken inputs (when present) fail or open exactly as layout.json says. Exits 1 on the first failure.
"""
import csv
import json
import os
import sys

import numpy as np
import openslide
from PIL import Image

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def polygon_mask(poly, width, height):
    """The layout's fill rule: centre (x+.5, y+.5) inside by even-odd, crossings left-closed/right-open."""
    p = np.asarray(poly, dtype=np.float64)
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    ylo, yhi = max(0, int(p[:, 1].min())), min(height, int(p[:, 1].max()))
    mask = np.zeros((height, width), dtype=bool)
    if ylo >= yhi:
        return mask
    yc = np.arange(ylo, yhi, dtype=np.float64)[:, None] + 0.5
    cross = (y0[None, :] <= yc) != (y1[None, :] <= yc)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0[None, :] + (yc - y0[None, :]) * (x1 - x0)[None, :] / (y1 - y0)[None, :]
    xs = np.where(cross, xs, np.inf)
    xs.sort(axis=1)
    diff = np.zeros((yhi - ylo, width + 1), dtype=np.int32)
    for k in range(0, xs.shape[1] - 1, 2):
        a, b = xs[:, k], xs[:, k + 1]
        ok = np.isfinite(a) & np.isfinite(b)
        xa = np.clip(np.ceil(a[ok] - 0.5), 0, width).astype(int)
        xb = np.clip(np.ceil(b[ok] - 0.5), 0, width).astype(int)
        rows = np.nonzero(ok)[0]
        np.add.at(diff, (rows, xa), 1)
        np.add.at(diff, (rows, xb), -1)
    mask[ylo:yhi] = np.cumsum(diff, axis=1)[:, :width] > 0
    return mask


def erode(m):
    out = m.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out &= np.roll(np.roll(m, dy, axis=0), dx, axis=1)
    return out


def is_tissue(rgb):
    rgb = rgb.astype(np.int32)
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) >= 25


def read(slide, x, y, level, w, h):
    return np.asarray(slide.read_region((x, y), level, (w, h)).convert("RGB"))


def check_slide(root, s, dark_stats):
    path = os.path.join(root, s["path"])
    name = s["path"]
    try:
        sl = openslide.OpenSlide(path)
    except Exception as e:  # noqa: BLE001
        check(False, f"{name}: does not open: {e}")
        return
    pr = sl.properties
    check(pr.get("openslide.vendor") == "aperio", f"{name}: vendor {pr.get('openslide.vendor')}")
    check(sl.level_count >= 3, f"{name}: {sl.level_count} levels")
    check(sl.dimensions == (s["width"], s["height"]), f"{name}: dimensions {sl.dimensions}")
    check([round(d) for d in sl.level_downsamples] == [2**i for i in range(sl.level_count)],
          f"{name}: downsamples {sl.level_downsamples}")
    check([list(d) for d in sl.level_dimensions] == s["levels"], f"{name}: levels {sl.level_dimensions}")
    mpp = s["mpp"]
    if mpp is None:
        check("openslide.mpp-x" not in pr and "aperio.MPP" not in pr, f"{name}: has an MPP but should not")
    else:
        check(pr.get("openslide.mpp-x") is not None and float(pr["openslide.mpp-x"]) == mpp
              and float(pr["openslide.mpp-y"]) == mpp, f"{name}: mpp-x {pr.get('openslide.mpp-x')} != {mpp}")
    check(pr.get("openslide.comment", "").startswith("Aperio Image Library"), f"{name}: description")

    W, H = s["width"], s["height"]
    mask = np.zeros((H, W), dtype=bool)
    for p in s["pieces"]:
        pm = polygon_mask(p["polygon"], W, H)
        check(int(pm.sum()) == p["pixels"], f"{name}: piece pixels {int(pm.sum())} != {p['pixels']}")
        mask |= pm
    check(int(mask.sum()) == s["tissue_pixels"], f"{name}: tissue pixels {int(mask.sum())} != {s['tissue_pixels']}")

    # Level 2 against the mask: 4x4 blocks entirely tissue must read as tissue, entirely background as background.
    w2, h2 = sl.level_dimensions[2]
    img = read(sl, 0, 0, 2, w2, h2)
    blocks = mask[: h2 * 4, : w2 * 4].reshape(h2, 4, w2, 4).mean(axis=(1, 3))
    t = is_tissue(img)
    full, empty = erode(blocks == 1.0), erode(blocks == 0.0)  # away from edges (JPEG ringing)
    if full.any():
        check(t[full].mean() > 0.999, f"{name}: only {t[full].mean():.4f} of tissue blocks read as tissue")
    check((~t[empty]).mean() > 0.999, f"{name}: only {(~t[empty]).mean():.4f} of background blocks read as background")

    # Level 0: a window in the middle of a piece is pink/purple, a background window near-white.
    for p in s["pieces"][:1]:
        x0, y0, x1, y1 = p["bbox"]
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        win = read(sl, cx - 112, cy - 112, 0, 224, 224).reshape(-1, 3).astype(float)
        m = win.mean(axis=0)
        check(m[0] > m[1] + 15 and m[2] > m[1] + 10 and m.mean() < 215,
              f"{name}: tissue window mean {m.round(1)} is not pink/purple")
    ys, xs = np.nonzero(~mask[::256, ::256])
    if len(ys):
        bx, by = int(xs[0]) * 256, int(ys[0]) * 256
        if not mask[by:by + 224, bx:bx + 224].any():
            win = read(sl, bx, by, 0, 224, 224).astype(float)
            check(win.mean() > 220 and win.min() >= 200 and win.std() < 6,
                  f"{name}: background window mean {win.mean():.1f} min {win.min()} std {win.std():.2f}")
    # Share of dark, purple pixels in tissue (the label signal) at level 2.
    f = img.astype(int)
    dark = (f.sum(axis=-1) < 330) & (f[..., 2] > f[..., 1] + 30)
    if t.any():
        dark_stats.append((s["label"], float(dark[t].mean()), s["id"]))
    sl.close()


def main():
    root = sys.argv[1]
    L = json.load(open(os.path.join(root, "layout.json")))
    dark_stats = []
    for s in L["slides"]:
        check_slide(root, s, dark_stats)
    print(f"checked {len(L['slides'])} slides")
    for cohort in ("train", "external"):
        labels = [d for d in dark_stats if any(s["id"] == d[2] and s["cohort"] == cohort for s in L["slides"])]
        for lab in (0, 1):
            v = [d[1] for d in labels if d[0] == lab]
            if v:
                print(f"  {cohort} label {lab}: dark-nuclei share of tissue  min {min(v):.3f}  max {max(v):.3f}")

    # Manifests.
    for man, cohort in (("manifest.csv", "train"), ("external/manifest.csv", "external")):
        p = os.path.join(root, man)
        if not os.path.exists(p):
            continue
        rows = list(csv.DictReader(open(p)))
        check(list(rows[0].keys()) == ["slide", "patient", "label", "cohort"], f"{man}: header")
        base = os.path.dirname(p)
        check(all(os.path.exists(os.path.join(base, r["slide"])) for r in rows), f"{man}: missing files")
        check(all(r["cohort"] == cohort for r in rows), f"{man}: cohort column")
        by_patient = {}
        for r in rows:
            by_patient.setdefault(r["patient"], set()).add(r["label"])
        check(all(len(v) == 1 for v in by_patient.values()), f"{man}: a patient with two labels")
        ones = sum(r["label"] == "1" for r in rows)
        check(abs(2 * ones - len(rows)) <= 1, f"{man}: labels not balanced ({ones}/{len(rows)})")
        print(f"{man}: {len(rows)} slides, {len(by_patient)} patients, {ones} label 1")

    # Patches.
    P = L["patches"]
    for split, n in (("train", P["train_per_class"]), ("test", P["test_per_class"])):
        exts = {}
        for c in P["classes"]:
            d = os.path.join(root, "patches", split, c)
            files = sorted(os.listdir(d)) if n else []
            check(len(files) == n, f"patches/{split}/{c}: {len(files)} files, expected {n}")
            for fn in files:
                im = Image.open(os.path.join(d, fn))
                check(im.size == (P["size"], P["size"]) and im.mode == "RGB", f"patches/{split}/{c}/{fn}: {im.size}")
                exts[os.path.splitext(fn)[1]] = exts.get(os.path.splitext(fn)[1], 0) + 1
        print(f"patches/{split}: {len(P['classes'])} classes x {n}, formats {exts}")

    # Broken inputs.
    if L.get("bad"):
        bd = os.path.join(root, "bad")
        for b in L["bad"]["files"]:
            path = os.path.join(bd, b["file"])
            kind = b["kind"]
            if kind == "missing":
                check(not os.path.exists(path), "missing.tiff exists")
                print(f"bad/{b['file']}: absent, as intended")
                continue
            if b["expect"] == "open_fails":
                try:
                    openslide.OpenSlide(path)
                    check(False, f"bad/{b['file']} opened")
                except Exception as e:  # noqa: BLE001
                    print(f"bad/{b['file']}: open fails: {type(e).__name__}: {e}")
                continue
            sl = openslide.OpenSlide(path)
            pr = sl.properties
            print(f"bad/{b['file']}: opens, vendor {pr.get('openslide.vendor')}, levels {sl.level_count}, "
                  f"mpp-x {pr.get('openslide.mpp-x')}")
            if kind == "zero_mpp":
                check(pr.get("openslide.mpp-x") == "0", "zero_mpp: mpp-x")
            if kind == "absurd_mpp":
                check(pr.get("openslide.mpp-x") == "1000", "absurd_mpp: mpp-x")
            if kind == "no_tissue":
                w2, h2 = sl.level_dimensions[2]
                img = read(sl, 0, 0, 2, w2, h2)
                check(not is_tissue(img).any(), "no_tissue: tissue found")
                print(f"  level-2 mean {img.mean():.1f}, no tissue pixels")
            if kind == "corrupt_tile":
                c = b["corrupt_tile"]
                # A neighbouring tile and the same area at level 1 read fine (fresh handles: errors are sticky).
                read(sl, c["x"] - c["width"], c["y"], 0, c["width"], c["height"])
                sl.close()
                sl = openslide.OpenSlide(path)
                read(sl, c["x"] // 2 - 64, c["y"] // 2 - 64, 1, 256, 256)
                print(f"  neighbouring level-0 tile and level-1 area read fine")
                sl.close()
                sl = openslide.OpenSlide(path)
                try:
                    read(sl, c["x"], c["y"], 0, c["width"], c["height"])
                    check(False, "corrupt_tile: reading the corrupted tile succeeded")
                except openslide.OpenSlideError as e:
                    print(f"  reading tile {c['index']} (col {c['col']}, row {c['row']}, x {c['x']}, y {c['y']}) "
                          f"fails: OpenSlideError: {e}")
            sl.close()
        rows = list(csv.DictReader(open(os.path.join(bd, "manifest.csv"))))
        print(f"bad/manifest.csv: {len(rows)} rows: {[r['slide'] for r in rows]}")
        check(len(rows) == len(L["bad"]["files"]), "bad manifest rows")

    print("OK" if not failures else f"{len(failures)} FAILURES")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
