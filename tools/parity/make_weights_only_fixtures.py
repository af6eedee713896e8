#!/usr/bin/python3
"""Writes the weights-only fixtures of plugins/torch_encoders/tests/test_weights.cpp (tests/fixtures/encoders/):

- training_checkpoint.pth: a training checkpoint as training scripts torch.save it (DINOv2's fvcore Checkpointer,
  timm, Lightning-like loops): {"model": state_dict, "optimizer": AdamW state, "scaler": GradScaler state,
  "iteration", "seed" (beyond 64 bits), "extra": torch.Size, torch.device, a dtype, bytes (_codecs.encode),
  float, None}. Everything in it is allowed by the weights-only rule; the tensors are model.* (deterministic).
- evil.pth: {"model": {"w": tensor}, "evil": X} where X.__reduce__ returns (os.system, ("echo pwned",)): a loader
  that calls what the pickle names runs the command; histoflow must refuse the file, naming posix.system.
  (This script only writes the file: torch.save pickles the reduce tuple, nothing runs here.)

usage: /usr/bin/python3 tools/parity/make_weights_only_fixtures.py
"""
import os

import torch

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "encoders")

model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
with torch.no_grad():
    for i, p in enumerate(model.parameters()):
        p.copy_(torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) * 0.25 + i)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
model(torch.ones(4, 3)).sum().backward()
optimizer.step()
scaler = torch.cuda.amp.GradScaler(enabled=False)
checkpoint = {
    "model": model.state_dict(),
    "optimizer": optimizer.state_dict(),
    "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0},
    "iteration": 1999,
    "seed": 2**64 - 1,
    "extra": {"size": torch.Size([2, 3]), "device": torch.device("cpu"), "dtype": torch.float32,
              "bytes": b"\x00\xffab", "lr": 0.5, "none": None, "negative": -5, "large": 2**40},
}
torch.save(checkpoint, os.path.join(root, "training_checkpoint.pth"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


torch.save({"model": {"w": torch.ones(2)}, "evil": Evil()}, os.path.join(root, "evil.pth"))
print("wrote training_checkpoint.pth and evil.pth in", os.path.abspath(root))
