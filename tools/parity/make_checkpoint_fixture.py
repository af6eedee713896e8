#!/usr/bin/python3
"""Writes tests/fixtures/encoders/tiny_swiglu_teacher.pth: a DINOv2 training-style checkpoint (torch.save zip)
holding {"model": {"teacher.backbone.<key>": ..., "student.backbone.<key>": ..., "teacher.dino_head...": ...}}
for the tiny SwiGLU ViT of the parity fixtures, with histoflow-init-v1 teacher weights (the student's differ).
The C++ loader must unwrap "model", pick the teacher backbone, and ignore the head.

usage: /usr/bin/python3 tools/parity/make_checkpoint_fixture.py   (keys from dinov2_tiny_swiglu.keys.txt)
"""
import collections
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import histoflow_init  # noqa: E402

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "encoders")
teacher = collections.OrderedDict()
student = collections.OrderedDict()
for line in open(os.path.join(root, "dinov2_tiny_swiglu.keys.txt")):
    name, rest = line.split(None, 1)  # "name [d0, d1, ...] dtype"
    shape = [int(s) for s in rest[rest.index("[") + 1:rest.index("]")].replace(",", " ").split()]
    values = torch.from_numpy(np.asarray(histoflow_init.init_values(name, shape), dtype=np.float32).reshape(shape))
    teacher["teacher.backbone." + name] = values
    student["student.backbone." + name] = values * 0.5
model = collections.OrderedDict()
model.update(student)  # the student first: the loader must still prefer the teacher
model.update(teacher)
model["teacher.dino_head.mlp.0.weight"] = torch.zeros(8, 64)
torch.save({"model": model, "iteration": 1999}, os.path.join(root, "tiny_swiglu_teacher.pth"))
print("wrote", os.path.join(root, "tiny_swiglu_teacher.pth"), len(model), "tensors")
