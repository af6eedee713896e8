#!/usr/bin/python3
"""The Python pipeline that tools/bench/bench-vs-python compares histoflow with: CLAM's extract_features_fp.py,
tuned the way a demanding user would tune it.

It reads the tiles histoflow read (the coords and geometry of histoflow's feature files, which are CLAM's:
coords, patch_level, patch_size = the side read at that level, target_patch_size), in DataLoader worker processes
(each with its own OpenSlide handle), resizes with PIL's box filter (what histoflow's area resampling computes),
normalises per batch in torch, encodes with a TorchScript-frozen model (channels-last for CNNs; bf16 through
autocast, or the whole model cast to bf16, whichever --bf16 names) and writes one CLAM-layout HDF5 file per slide
with h5py. Prints one JSON line: tiles, seconds from the first read to the last file written.

usage: /usr/bin/python3 tools/bench/bench_vs_python.py --features DIR --backbone NAME
           --precision fp32|bf16 --out DIR [--batch 32] [--threads 2] [--workers 2] [--bf16 cast|autocast]
           [--dinov2-src DIR]"""
import argparse
import glob
import json
import os
import sys
import time
import warnings

import h5py
import numpy as np
import openslide
import torch
import torchvision
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("--features", required=True, help="histoflow's slide_store folder (one .h5 per slide)")
p.add_argument("--backbone", required=True)
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
p.add_argument("--out", required=True)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--workers", type=int, default=os.cpu_count())
p.add_argument("--bf16", choices=["cast", "autocast"], default="cast")  # cast: the faster on the CPU
p.add_argument("--dinov2-src", default="")
args = p.parse_args()
warnings.filterwarnings("ignore")  # tracing and read-only numpy notices, on every worker
torch.set_num_threads(args.threads)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # every backbone benchmarked here uses them


def make_model(name):
    """(module, is_cnn): the same architecture histoflow runs under that name (random weights: speed only)."""
    if name.startswith("resnet50"):
        net = torchvision.models.resnet50(weights=None)
        if name == "resnet50_trunc":  # CLAM's truncated ResNet-50: layer3, then average pooling
            net = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                      torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        else:
            net.fc = torch.nn.Identity()
        return net, True
    if not args.dinov2_src:
        sys.exit(f"{name} needs --dinov2-src (an extracted facebookresearch/dinov2)")
    os.environ["XFORMERS_DISABLED"] = "1"
    sys.path.insert(0, args.dinov2_src)
    if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):  # torch 1.13: the plain attention
        def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
            return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1) @ v
        torch.nn.functional.scaled_dot_product_attention = sdpa
    from dinov2.models import vision_transformer as vit
    if name.startswith("dinov2_vit"):
        size = {"s": vit.vit_small, "b": vit.vit_base, "l": vit.vit_large, "g": vit.vit_giant2}[name[len("dinov2_vit")]]
        return size(patch_size=14, img_size=518, init_values=1.0, block_chunks=0), False
    if name == "uni":  # UNI is a DINOv2-trained ViT-L/16 at 224 px (timm's vit_large_patch16_224, LayerScale 1e-5)
        return vit.vit_large(patch_size=16, img_size=224, init_values=1e-5, block_chunks=0), False
    sys.exit(f"no Python model for backbone {name}")


class Tiles(torch.utils.data.Dataset):
    """Every tile of every slide, in file order: (slide index, tile index) -> uint8 [H, W, 3]."""

    def __init__(self, slides):
        self.slides = slides  # [(slide path, coords, level, read size, target size)]
        self.index = [(s, i) for s, slide in enumerate(slides) for i in range(len(slide[1]))]
        self.handles = {}

    def __len__(self):
        return len(self.index)

    def __getitem__(self, k):
        s, i = self.index[k]
        path, coords, level, read, target = self.slides[s]
        if s not in self.handles:  # one handle per slide per worker (OpenSlide handles are not fork-safe)
            self.handles[s] = openslide.OpenSlide(path)
        region = self.handles[s].read_region((int(coords[i, 0]), int(coords[i, 1])), level, (read, read)).convert("RGB")
        if read != target:
            region = region.resize((target, target), Image.BOX)
        return torch.from_numpy(np.asarray(region)), s


def main():
    files = sorted(glob.glob(os.path.join(args.features, "*.h5")))
    slides = []
    for f in files:
        with h5py.File(f, "r") as h:
            c = h["coords"]
            slides.append((h.attrs["slide_path"], c[:], int(c.attrs["patch_level"]), int(c.attrs["patch_size"]),
                           int(c.attrs["target_patch_size"])))
    names = [os.path.splitext(os.path.basename(f))[0] for f in files]
    net, cnn = make_model(args.backbone)
    net = net.eval()
    size = slides[0][4]
    bf16 = args.precision == "bf16"
    dtype = torch.bfloat16 if bf16 and args.bf16 == "cast" else torch.float32
    net = net.to(dtype)
    if cnn:
        net = net.to(memory_format=torch.channels_last)
    example = torch.zeros(args.batch, 3, size, size, dtype=dtype)
    if cnn:
        example = example.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and args.bf16 == "autocast")
    with torch.inference_mode(), autocast:
        net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, example, check_trace=False)))
        net(example)  # compile the frozen graph before the clock starts, as a long run amortises it
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    loader = torch.utils.data.DataLoader(Tiles(slides), batch_size=args.batch, num_workers=args.workers,
                                         persistent_workers=False, prefetch_factor=4 if args.workers else 2)
    os.makedirs(args.out, exist_ok=True)
    outputs = [[] for _ in slides]
    start = time.perf_counter()
    tiles = 0
    with torch.inference_mode(), autocast:
        for pixels, slide in loader:
            x = pixels.permute(0, 3, 1, 2).float().sub_(mean).div_(std).to(dtype)
            x = x.contiguous(memory_format=torch.channels_last) if cnn else x.contiguous()
            features = net(x).float().numpy()
            for s in torch.unique(slide).tolist():
                outputs[s].append(features[(slide == s).numpy()])
            tiles += len(pixels)
    for s, name in enumerate(names):  # CLAM's layout: features [N, D] and coords [N, 2]
        tmp = os.path.join(args.out, name + ".h5.tmp")
        with h5py.File(tmp, "w") as h:
            h["features"] = np.concatenate(outputs[s])
            h["coords"] = slides[s][1]
        os.replace(tmp, os.path.join(args.out, name + ".h5"))
    print(json.dumps({"tiles": tiles, "seconds": time.perf_counter() - start}))


main()
