#!/usr/bin/python3
"""Writes the reference fixtures for histoflow's stain normalisation (the stain_normalize stage, plugins/slides).

usage:
  /usr/bin/python3 tools/parity/make_stain_fixtures.py [--out tests/fixtures/stain]

Needs numpy only. A plain numpy implementation of each method, written from the papers:

  Macenko et al., "A method for normalizing histology slides for quantitative analysis", ISBI 2009:
    1. optical density OD = -ln((I + 1) / Io) per channel (Io = 240, the glass brightness);
    2. drop background: keep pixels whose OD is >= beta (0.15) in every channel;
    3. the plane of the two largest eigenvectors of the kept pixels' OD covariance (each eigenvector signed so
       that its largest-magnitude component is positive: a convention that makes the fit reproducible);
    4. the angle of each kept pixel in that plane; the alpha (1) and 100 - alpha percentiles give the two stain
       vectors; haematoxylin is the one with the larger red OD;
    5. concentrations of every pixel by least squares on the stain vectors; max concentrations: their 99th
       percentiles;
    6. normalised = Io * exp(-target_vectors @ (c * target_max / source_max)), rounded and clipped to 0..255.
  Reinhard et al., "Color transfer between images", IEEE CG&A 2001 (in CIELAB rather than l-alpha-beta):
    sRGB (IEC 61966-2-1 transfer curve, D65 primaries) -> XYZ -> CIELAB with the white point XYZ(RGB 1, 1, 1);
    mean and population standard deviation per channel over the stained pixels (step 2 above);
    lab' = (lab - source_mean) / source_std * target_std + target_mean for every pixel; back to sRGB, rounded and
    clipped.
  Both: an image with fewer stained pixels than max(ceil(min_stained_fraction * pixels), 10) has no fit (the stage
  passes such a tile unchanged). Percentiles are numpy's default (linear interpolation).

The images are synthetic H&E (Beer-Lambert with known stain vectors, nuclei as haematoxylin blobs on eosin
stroma, glass, sensor noise), deterministic by seed. Writes DIR/*.png (8-bit RGB, written by a minimal encoder
here) and DIR/cases.json: the reference's fits (stain vectors, max concentrations, CIELAB statistics) and, per
case, input, method, parameters and expected output.
"""
import argparse
import json
import math
import os
import struct
import zlib

import numpy as np

MIN_STAINED_PIXELS = 10


# ---------------------------------------------------------------- PNG (8-bit RGB, no filter)

def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path + ".tmp", "wb") as f:
        f.write(png)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- shared

def optical_density(rgb, io):
    return -np.log((rgb.reshape(-1, 3).astype(np.float64) + 1.0) / io)


def stained_mask(od, beta):
    return np.all(od >= beta, axis=1)


def enough_stained(count, pixels, min_fraction):
    return count >= max(math.ceil(min_fraction * pixels), MIN_STAINED_PIXELS)


# ---------------------------------------------------------------- Macenko

def macenko_fit(rgb, io=240.0, beta=0.15, alpha=1.0, min_fraction=0.05):
    od = optical_density(rgb, io)
    kept = od[stained_mask(od, beta)]
    if not enough_stained(len(kept), len(od), min_fraction):
        return None
    _, vectors = np.linalg.eigh(np.cov(kept.T))
    plane = vectors[:, 1:3].copy()  # second largest, largest
    for k in range(2):
        if plane[np.argmax(np.abs(plane[:, k])), k] < 0:
            plane[:, k] = -plane[:, k]
    projected = kept @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, alpha), np.percentile(angles, 100 - alpha)
    v_low = plane @ np.array([math.cos(low), math.sin(low)])
    v_high = plane @ np.array([math.cos(high), math.sin(high)])
    stains = np.stack([v_low, v_high], axis=1) if v_low[0] > v_high[0] else np.stack([v_high, v_low], axis=1)
    concentrations = np.linalg.lstsq(stains, od.T, rcond=None)[0]
    max_c = np.percentile(concentrations, 99, axis=1)
    return {"stains": stains, "max_concentrations": max_c}


def macenko_apply(rgb, source, target, io=240.0):
    od = optical_density(rgb, io)
    c = np.linalg.lstsq(source["stains"], od.T, rcond=None)[0]
    c *= (target["max_concentrations"] / source["max_concentrations"])[:, None]
    out = io * np.exp(-(target["stains"] @ c))
    return np.clip(np.rint(out.T), 0, 255).astype(np.uint8).reshape(rgb.shape)


# ---------------------------------------------------------------- Reinhard in CIELAB

RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
WHITE = RGB_TO_XYZ @ np.ones(3)
DELTA = 6.0 / 29.0


def srgb_to_lab(rgb):
    c = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (linear @ RGB_TO_XYZ.T) / WHITE
    f = np.where(t > DELTA ** 3, np.cbrt(t), t / (3 * DELTA ** 2) + 4.0 / 29.0)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def lab_to_srgb(lab):
    fy = (lab[:, 0] + 16) / 116
    f = np.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], axis=1)
    xyz = np.where(f > DELTA, f ** 3, 3 * DELTA ** 2 * (f - 4.0 / 29.0)) * WHITE
    linear = xyz @ np.linalg.inv(RGB_TO_XYZ).T
    safe = np.maximum(linear, 0.0031308)  # the power branch only sees valid inputs
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * safe ** (1 / 2.4) - 0.055)


def reinhard_fit(rgb, io=240.0, beta=0.15, min_fraction=0.05):
    od = optical_density(rgb, io)
    mask = stained_mask(od, beta)
    if not enough_stained(int(mask.sum()), len(od), min_fraction):
        return None
    lab = srgb_to_lab(rgb)[mask]
    return {"mean": lab.mean(axis=0), "std": lab.std(axis=0)}


def reinhard_apply(rgb, source, target):
    lab = (srgb_to_lab(rgb) - source["mean"]) / source["std"] * target["std"] + target["mean"]
    return np.clip(np.rint(lab_to_srgb(lab) * 255), 0, 255).astype(np.uint8).reshape(rgb.shape)


# ---------------------------------------------------------------- synthetic H&E

def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def synthetic_he(rng, size, h_vector, e_vector, glass_fraction, nuclei, glass_level):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    eosin = 0.35 + 0.25 * np.sin(xx / 5.0 + rng.uniform(0, 6)) * np.cos(yy / 7.0 + rng.uniform(0, 6))
    haem = np.full((size, size), 0.05)
    for _ in range(nuclei):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2.0, 4.5)
        haem += 0.9 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    tissue = np.ones((size, size))
    if glass_fraction > 0:  # glass on the right-hand part, a soft edge
        edge = size * (1 - glass_fraction)
        tissue = np.clip((edge - xx) / 2.0 + 0.5, 0, 1)
    od = (haem * tissue)[..., None] * h_vector + (eosin * tissue)[..., None] * e_vector
    rgb = glass_level * np.exp(-od) + rng.normal(0, 2.0, size=od.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "stain"))
    out = os.path.abspath(parser.parse_args().out)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261202)

    images = {
        # The reference: textbook H&E vectors (Ruifrok & Johnston).
        "reference": synthetic_he(rng, 48, unit([0.65, 0.70, 0.29]), unit([0.07, 0.99, 0.11]), 0.0, 14, 242),
        # A bluish, strongly stained tile and a pale pink one with glass: what normalisation has to even out.
        "tile_dark": synthetic_he(rng, 40, unit([0.55, 0.75, 0.37]), unit([0.12, 0.90, 0.42]), 0.0, 16, 238),
        "tile_pale": synthetic_he(rng, 40, unit([0.70, 0.66, 0.27]), unit([0.03, 0.95, 0.30]), 0.35, 8, 245),
        # Nearly all glass: too few stained pixels for a fit; the stage passes it unchanged.
        "tile_glass": synthetic_he(rng, 40, unit([0.65, 0.70, 0.29]), unit([0.07, 0.99, 0.11]), 0.97, 1, 243),
    }
    for name, image in images.items():
        write_png(os.path.join(out, name + ".png"), image)

    reference = images["reference"]
    fits = {"macenko": macenko_fit(reference), "reinhard": reinhard_fit(reference)}
    cases = []
    for method in ("macenko", "reinhard"):
        for tile in ("tile_dark", "tile_pale", "tile_glass"):
            for params in ({}, {"light_intensity": 255.0, "alpha": 2.0} if method == "macenko" else {"beta": 0.3}):
                if params and tile == "tile_glass":
                    continue
                io, beta = params.get("light_intensity", 240.0), params.get("beta", 0.15)
                image = images[tile]
                if method == "macenko":
                    target = macenko_fit(reference, io=io, alpha=params.get("alpha", 1.0))
                    source = macenko_fit(image, io=io, alpha=params.get("alpha", 1.0))
                    expected = image if source is None else macenko_apply(image, source, target, io=io)
                else:
                    target, source = reinhard_fit(reference, beta=beta), reinhard_fit(image, beta=beta)
                    expected = image if source is None else reinhard_apply(image, source, target)
                name = "expected_%s_%s%s" % (method, tile, "_params" if params else "")
                write_png(os.path.join(out, name + ".png"), expected)
                cases.append({"method": method, "input": tile + ".png", "params": params, "expected": name + ".png",
                              "fitted": source is not None,
                              "changed_pixels": int(np.any(expected != image, axis=2).sum())})

    record = {
        "generator": "tools/parity/make_stain_fixtures.py",
        "reference": "reference.png",
        "reference_fit": {
            "macenko": {"stains_h": fits["macenko"]["stains"][:, 0].tolist(), "stains_e": fits["macenko"]["stains"][:, 1].tolist(),
                        "max_concentrations": fits["macenko"]["max_concentrations"].tolist()},
            "reinhard": {"mean": fits["reinhard"]["mean"].tolist(), "std": fits["reinhard"]["std"].tolist()},
        },
        "cases": cases,
    }
    with open(os.path.join(out, "cases.json.tmp"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(os.path.join(out, "cases.json.tmp"), os.path.join(out, "cases.json"))
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print("wrote %d cases to %s (%d bytes)" % (len(cases), out, total))


if __name__ == "__main__":
    main()
