#!/usr/bin/python3
"""Writes tests/fixtures/encoders/torchscript_small.pt (a traced TorchScript CNN: the way in for any other model)
and torchscript_small.safetensors (a 64-pixel input batch and the features Python torch computes for it with
mean 0.5 and std 0.25 preprocessing). usage: /usr/bin/python3 tools/parity/make_torchscript_fixture.py"""
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import histoflow_init  # noqa: E402
from make_encoder_fixtures import write_safetensors  # noqa: E402

out = os.path.join(here, "..", "..", "tests", "fixtures", "encoders")
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2),
                          torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 5)).eval()
images = histoflow_init.input_bytes(2, 64, 64)  # uint8 [2, 64, 64, 3]
x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
with torch.no_grad():
    traced = torch.jit.trace(net, x)
    features = net(x)
traced.save(os.path.join(out, "torchscript_small.pt"))
write_safetensors(os.path.join(out, "torchscript_small.safetensors"),
                  [("input", np.ascontiguousarray(images)), ("features", features.numpy().astype(np.float32))],
                  {"case": "torchscript_small", "input_size": "64", "mean": "0.5,0.5,0.5", "std": "0.25,0.25,0.25",
                   "torch": torch.__version__})
print("wrote torchscript_small.pt and torchscript_small.safetensors; features", features.shape)
