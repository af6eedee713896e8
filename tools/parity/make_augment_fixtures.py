#!/usr/bin/python3
"""Writes the reference fixtures for histoflow's DINOv2 augmentations (plugins/augment).

usage:
  /usr/bin/python3 tools/parity/make_augment_fixtures.py [--out tests/fixtures/augment]

Needs Debian's python3-torchvision (0.14), python3-pil (9.4) and python3-numpy. Every output is computed by the
library calls DINOv2's DataAugmentationDINO makes (dinov2/data/augmentations.py), on PIL images as its dataset
delivers them, with FIXED parameters instead of random ones:
  torchvision.transforms.functional.resized_crop(img, top, left, h, w, [size, size], BICUBIC)  (RandomResizedCrop)
  hflip / vflip                                                  (RandomHorizontalFlip, the fork's RandomVerticalFlip)
  adjust_brightness / adjust_contrast / adjust_saturation / adjust_hue, in a given order     (ColorJitter)
  rgb_to_grayscale(img, num_output_channels=3)                                               (RandomGrayscale)
  gaussian_blur(img, kernel_size=[9, 9], sigma=[s, s])                       (dinov2.data.transforms.GaussianBlur)
  solarize(img, threshold=128)                                                               (RandomSolarize)
  to_tensor + normalize(ImageNet mean, std)                                                  (make_normalize_transform)
RandomResizedCrop.get_params is also recorded, its random draws replaced by given numbers (see given_draws).

Writes DIR/cases.json (each case: operation, parameters, input image, output shape and byte offset) and
DIR/data.bin (the input images and outputs: uint8 HWC RGB, float32 CHW for the normalised tensor).
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode
import torchvision.transforms.functional as F


def make_inputs():
    """Two deterministic RGB images with smooth regions, edges, saturated colours and noise (H&E-like hues)."""
    rng = np.random.default_rng(20261202)
    images = []
    for (h, w) in [(100, 120), (64, 64)]:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        r = 170 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
        g = 90 + 80 * np.cos((xx + yy) / 9.0)
        b = 200 - 90 * ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2)
        img = np.stack([r, g, b], axis=-1) + rng.normal(0, 18, size=(h, w, 3))
        img[h // 4: h // 4 + 6, :, :] = [255, 0, 128]   # a saturated band: hue wrap-around, clipping
        img[:, w // 3: w // 3 + 3, :] = [250, 250, 250]  # near white: grey pixels (s = 0)
        images.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return images


class given_draws:
    """Replaces torch.empty(1).uniform_(a, b) and torch.randint(0, n, (1,)) inside torchvision's transforms module
    by a + u (b - a) (rounded to float32, as torch's draw is) and floor(u n) for the next u of a given list."""

    def __init__(self, draws):
        self.draws = list(draws)

    def __enter__(self):
        import torchvision.transforms.transforms as tt
        self.module, self.saved = tt, tt.torch
        draws = self.draws

        class Draw:  # torch.empty(1): uniform_ gives the float32 tensor torch would
            def uniform_(self, a, b):
                a, b = float(a), float(b)
                return torch.tensor([a + draws.pop(0) * (b - a)], dtype=torch.float32)

            def item(self):
                return self.value

        class TorchWithDraws:
            def __getattr__(self, name):
                return getattr(torch, name)

            def empty(self, *shape):
                return Draw()

            def randint(self, low, high, size):
                d = Draw()
                d.value = low + int(math.floor(draws.pop(0) * (high - low)))
                return d

        tt.torch = TorchWithDraws()
        return self

    def __exit__(self, *exc):
        self.module.torch = self.saved


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="tests/fixtures/augment")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    blobs = bytearray()

    def put(array):
        offset = len(blobs)
        blobs.extend(np.ascontiguousarray(array).tobytes())
        return offset

    inputs = make_inputs()
    input_records = [{"height": a.shape[0], "width": a.shape[1], "offset": put(a)} for a in inputs]
    pil = [Image.fromarray(a, "RGB") for a in inputs]

    cases = []

    def case(name, operation, image, params, output):
        output = np.asarray(output)
        if output.dtype == np.uint8:
            record = {"dtype": "uint8", "shape": list(output.shape)}
        else:
            record = {"dtype": "float32", "shape": list(output.shape)}
            output = output.astype(np.float32)
        record["offset"] = put(output)
        cases.append({"name": name, "operation": operation, "input": image, "params": params, "output": record})

    # Geometry: downscaling (antialiased), upscaling, non-square boxes, the whole image, flips.
    for name, image, (top, left, h, w), size in [
        ("crop_down", 0, (10, 5, 80, 90), 64),
        ("crop_up", 0, (30, 40, 20, 25), 56),
        ("crop_tall", 0, (0, 70, 100, 33), 40),
        ("crop_whole", 1, (0, 0, 64, 64), 98),
        ("crop_same_size", 1, (3, 7, 50, 50), 50),
        ("crop_strong_down", 0, (0, 0, 100, 120), 17),
    ]:
        out = F.resized_crop(pil[image], top, left, h, w, [size, size], InterpolationMode.BICUBIC)
        case(name, "resized_crop", image, {"top": top, "left": left, "height": h, "width": w, "size": size}, np.asarray(out))
    case("hflip", "hflip", 0, {}, np.asarray(F.hflip(pil[0])))
    case("vflip", "vflip", 0, {}, np.asarray(F.vflip(pil[0])))

    # Colour: each ColorJitter operation at both ends of DINOv2's ranges and inside them.
    for factor in [0.6, 0.83, 1.0, 1.4]:
        case(f"brightness_{factor}", "brightness", 1, {"factor": factor}, np.asarray(F.adjust_brightness(pil[1], factor)))
        case(f"contrast_{factor}", "contrast", 1, {"factor": factor}, np.asarray(F.adjust_contrast(pil[1], factor)))
    for factor in [0.8, 1.13, 1.2]:
        case(f"saturation_{factor}", "saturation", 1, {"factor": factor}, np.asarray(F.adjust_saturation(pil[1], factor)))
    for factor in [-0.1, -0.037, 0.0, 0.052, 0.1]:
        # torchvision shifts the hue channel by np.uint8(factor * 255): truncation toward zero, modulo 256.
        assert int(np.uint8(factor * 255)) == int(factor * 255) % 256
        case(f"hue_{factor}", "hue", 1, {"factor": factor}, np.asarray(F.adjust_hue(pil[1], factor)))
    case("grayscale", "grayscale", 1, {}, np.asarray(F.rgb_to_grayscale(pil[1], num_output_channels=3)))
    case("solarize", "solarize", 1, {"threshold": 128}, np.asarray(F.solarize(pil[1], 128)))
    for sigma in [0.1, 0.73, 1.41, 2.0]:
        out = F.gaussian_blur(pil[1], kernel_size=[9, 9], sigma=[sigma, sigma])
        case(f"blur_{sigma}", "gaussian_blur", 1, {"kernel_size": 9, "sigma": sigma}, np.asarray(out))

    # ColorJitter as DINOv2 applies it: the four operations in a random order (given here), then the rest.
    functions = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for order, factors in [([2, 0, 3, 1], [1.31, 0.71, 0.87, -0.064]), ([3, 1, 0, 2], [0.64, 1.36, 1.18, 0.093])]:
        img = pil[0]
        for index in order:
            img = functions[index](img, factors[index])
        case(f"jitter_{''.join(map(str, order))}", "color_jitter", 0, {"order": order, "factors": factors}, np.asarray(img))

    # ToTensor + Normalize(ImageNet): float32 [3, H, W].
    tensor = F.normalize(F.to_tensor(pil[1]), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    case("normalize", "normalize", 1, {}, tensor.numpy())

    # RandomResizedCrop.get_params itself, its random draws replaced by given uniform [0, 1) numbers u: torch's
    # uniform_(a, b) becomes a + u (b - a) and randint(0, n) becomes floor(u n) (the fallback to a centre crop
    # included: the third case never fits).
    rrc = []
    for (h, w), scale, tries in [((100, 120), (0.32, 1.0), [(0.5, 0.25, 0.3, 0.9)]),
                                 ((100, 120), (0.05, 0.32), [(0.99, 0.01, 0.0, 0.999)]),
                                 ((30, 300), (0.9, 1.0), [(0.5, 0.5, 0.5, 0.5)] * 10)]:
        draws = [u for t in tries for u in t]
        with given_draws(draws):
            box = torchvision.transforms.RandomResizedCrop.get_params(
                torch.zeros(3, h, w), scale=list(scale), ratio=[3.0 / 4.0, 4.0 / 3.0])
        rrc.append({"height": h, "width": w, "scale": list(scale), "draws": [list(t) for t in tries],
                    "box": [int(v) for v in box]})

    meta = {
        "generator": "tools/parity/make_augment_fixtures.py",
        "torchvision": torchvision.__version__,
        "pillow": Image.__version__,
        "numpy": np.__version__,
        "inputs": input_records,
        "cases": cases,
        "random_resized_crop": rrc,
    }
    with open(os.path.join(args.out, "data.bin"), "wb") as f:
        f.write(bytes(blobs))
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases, {len(blobs)} bytes -> {args.out}")


if __name__ == "__main__":
    main()
