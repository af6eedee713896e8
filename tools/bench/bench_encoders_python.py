#!/usr/bin/python3
"""The same encoders in Python torch, same threads, precision, batch and input: images per second.
ResNet-50 from torchvision; DINOv2 ViTs from the official code when --dinov2-src is given (see
tools/parity/make_encoder_fixtures.py for getting it). Prints JSON lines.
usage: /usr/bin/python3 tools/bench/bench_encoders_python.py --backbones resnet50,dinov2_vits14 --batches 16
           --precisions fp32,bf16 --threads 2 --seconds 4 [--dinov2-src DIR]"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--backbones", default="resnet50,resnet50_trunc,dinov2_vits14")
p.add_argument("--batches", default="16,32")
p.add_argument("--precisions", default="fp32,bf16")
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--seconds", type=float, default=4)
p.add_argument("--dinov2-src", default="")
args = p.parse_args()
torch.set_num_threads(args.threads)


def make(name):
    if name.startswith("resnet50"):
        net = torchvision.models.resnet50(weights=None)
        net.fc = torch.nn.Identity()
        if name == "resnet50_trunc":
            net = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                      torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        return net, True
    if not args.dinov2_src:
        return None, False
    os.environ["XFORMERS_DISABLED"] = "1"
    sys.path.insert(0, args.dinov2_src)
    if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):  # torch 1.13: plain attention
        def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
            return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v
        torch.nn.functional.scaled_dot_product_attention = sdpa
    from dinov2.models import vision_transformer as vit
    size = {"s": vit.vit_small, "b": vit.vit_base, "l": vit.vit_large, "g": vit.vit_giant2}[name[len("dinov2_vit")]]
    reg = name.endswith("_reg")
    net = size(patch_size=14, img_size=518, init_values=1.0, block_chunks=0, num_register_tokens=4 if reg else 0,
               ffn_layer="swiglufused" if "vitg" in name else "mlp", interpolate_antialias=reg,
               interpolate_offset=0.0 if reg else 0.1)
    return net, False


for name in args.backbones.split(","):
    for precision in args.precisions.split(","):
        net, cnn = make(name)
        if net is None:
            print(json.dumps({"backbone": name, "skipped": "no --dinov2-src"}))
            continue
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        net = net.eval().to(dtype)
        if cnn:
            net = net.to(memory_format=torch.channels_last)
        for batch in [int(b) for b in args.batches.split(",")]:
            x = torch.randn(batch, 3, 224, 224).to(dtype)
            if cnn:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                net(x)
                rates = []  # the median of five windows, as the C++ side reports
                for _ in range(5):
                    runs, start = 0, time.perf_counter()
                    while runs < 2 or time.perf_counter() - start < args.seconds / 5:
                        net(x)
                        runs += 1
                    rates.append(runs / (time.perf_counter() - start))
                rates.sort()
            print(json.dumps({"backbone": name, "precision": precision, "batch": batch,
                              "images_per_second": rates[2] * batch,
                              "best_images_per_second": rates[-1] * batch, "threads": args.threads}), flush=True)
