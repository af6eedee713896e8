#!/usr/bin/python3
"""Python's resnet50_trunc alone, as bench_vs_python.py runs it (traced, frozen, optimize_for_inference,
channels-last), on one batch of random images for SECONDS: images/s. For docs/performance.md's question of what
a Python user gains by keeping freed memory in glibc, run it twice:

  /usr/bin/python3 tools/bench/python_resnet_alone.py
  MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967295 /usr/bin/python3 tools/bench/python_resnet_alone.py

usage: python_resnet_alone.py [--batch 32] [--threads 2] [--seconds 25]"""
import argparse
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seconds", type=float, default=25)
args = p.parse_args()
torch.set_num_threads(args.threads)
net = torchvision.models.resnet50(weights=None)
net = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                          torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval().to(memory_format=torch.channels_last)
x = torch.randn(args.batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x, check_trace=False)))
    net(x)
    net(x)
    start, images = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        net(x)
        images += args.batch
print(f"resnet50_trunc fp32, batch {args.batch}, {args.threads} threads: "
      f"{images / (time.perf_counter() - start):.1f} images/s")
