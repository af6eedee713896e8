#!/usr/bin/python3
"""Writes the committed seed corpus tests/fuzz/seeds/<target>/: small, valid inputs of every kind the fuzz targets
read, each reaching deep into its parser (tools/fuzz/run adds the project's own fixtures at run time).
Deterministic: running it again rewrites the same bytes (torch.save's archive name and the tensors are fixed).

usage: /usr/bin/python3 tools/fuzz/make_seeds.py
"""
import collections
import hashlib
import io
import json
import os
import struct

import h5py
import numpy as np
import torch
from PIL import Image

torch.manual_seed(0)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fuzz", "seeds")


def write(target, name, data):
    folder = os.path.join(root, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def torch_bytes(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def values(*shape, dtype=torch.float32):
    count = int(np.prod(shape))
    return (torch.arange(count, dtype=torch.float32) / 7).reshape(shape).to(dtype)


# ------------------------------------------------------------------------------------------ checkpoints
state = collections.OrderedDict([("cls_token", values(1, 1, 4)), ("blocks.0.norm1.weight", values(4)),
                                 ("blocks.0.attn.qkv.weight", values(12, 4)), ("head.bias", values(2, dtype=torch.float16))])
write("checkpoint", "state_dict.pth", torch_bytes(state))
write("checkpoint", "dinov2_training.pth", torch_bytes({
    "model": collections.OrderedDict((("teacher.backbone." + k), v) for k, v in state.items()),
    "optimizer": {"state": {0: {"exp_avg": values(4), "step": 3}}, "param_groups": [{"lr": 1e-4, "params": [0]}]},
    "iteration": 7}))
write("checkpoint", "parameters.pth", torch_bytes(torch.nn.Linear(3, 2).state_dict()))
write("checkpoint", "features_tensor.pt", torch_bytes(values(5, 4)))
write("checkpoint", "bag_bfloat16.pt", torch_bytes(values(1, 3, 4, dtype=torch.bfloat16)))
write("checkpoint", "transposed.pt", torch_bytes(values(4, 3).t()))
write("checkpoint", "patch_features.pt", torch_bytes({"features": values(3, 4), "labels": torch.tensor([0, 1, 1])}))
write("checkpoint", "shared_storage.pth", torch_bytes({"a": values(6)[:3], "b": values(6)[3:]}))

# ------------------------------------------------------------------------------------------ safetensors


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, array in tensors.items():
        raw = array.tobytes()
        dtype = {"float32": "F32", "float16": "F16", "int64": "I64", "uint8": "U8"}[str(array.dtype)]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


write("safetensors", "vit.safetensors", safetensors({
    "cls_token": np.zeros((1, 1, 4), np.float32), "pos_embed": np.ones((1, 5, 4), np.float32),
    "blocks.0.attn.qkv.weight": np.arange(48, dtype=np.float16).reshape(12, 4), "steps": np.array([3], np.int64),
    "mask": np.zeros((0, 4), np.uint8)}, {"format": "pt", "histoflow": "teacher"}))
write("safetensors", "empty.safetensors", safetensors({}))

# ------------------------------------------------------------------------------------------ manifests (first byte: options)
write("manifest", "slides.csv", bytes([0x00]) + b"slide,patient,label\na.svs,p1,tumour\nb.svs,p1,normal\n\"c d.svs\",p2,\"tu,mour\"\n")
write("manifest", "ids_cohort_mpp.csv", bytes([0x1c]) + b"id,patient,label,cohort,mpp\ns1,p1,0,TCGA,0.25\ns2,p2,1,CPTAC,0.5\n")
write("manifest", "tabs_two_labels.tsv", bytes([0x41]) + "\ufeffslide\tpatient\tlabel\tgrade\r\nx.tif\tp\t1\t3\r\n".encode())

# ------------------------------------------------------------------------------------------ sealed headers


def sealed(content, identity):
    header = b"histoflow-sealed v1\nformat hdf5-features\nsha256 " + hashlib.sha256(content).hexdigest().encode()
    header += b"\nidentity " + json.dumps(identity).encode() + b"\n"
    return header + b"\0" * (4096 - len(header)) + content


write("sealed_header", "sealed.bin", sealed(b"\x89HDF\r\n\x1a\n" + bytes(64), {"key": "k", "slide_id": "s"}))
write("sealed_header", "wrong_checksum.bin", sealed(b"abc", {"key": "k"})[:-1] + b"x")

# ------------------------------------------------------------------------------------------ feature files


def h5_bytes(fill, userblock=0):
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", userblock_size=userblock) as f:
        fill(f)
    return buffer.getvalue()


def slide_file(f):
    f.create_dataset("features", data=np.arange(12, dtype=np.float32).reshape(3, 4))
    coords = f.create_dataset("coords", data=np.array([[0, 0], [224, 0], [0, 224]], np.int64))
    coords.attrs["patch_size"] = 224
    coords.attrs["patch_level"] = 0
    f.attrs["encoder"] = "uni"
    f.attrs["mpp"] = 0.5
    f.attrs["tiles"] = np.int64(3)
    f.attrs["flag"] = np.int8(1)


def patch_file(f):
    f.create_dataset("features", data=np.ones((2, 4), np.float16))
    f.create_dataset("labels", data=np.array([0, 1], np.int64))
    f.create_dataset("paths", data=np.array([b"a/1.png", b"b/2.png"], dtype=h5py.string_dtype()))
    f.attrs["class_names"] = np.array([b"normal", b"tumour"], dtype=h5py.string_dtype())


write("feature_file", "slide.h5", h5_bytes(slide_file))
write("feature_file", "patch.h5", h5_bytes(patch_file))
write("feature_file", "sealed_slide.h5", h5_bytes(slide_file, userblock=4096))

# ------------------------------------------------------------------------------------------ images
pixels = np.zeros((12, 16, 3), np.uint8)
pixels[..., 0] = np.arange(16, dtype=np.uint8) * 15
pixels[..., 1] = (np.arange(12, dtype=np.uint8) * 20)[:, None]
image = Image.fromarray(pixels)
for name, fmt, extra in [("patch.png", "PNG", {}), ("patch.jpg", "JPEG", {"quality": 90}), ("patch.tif", "TIFF", {}),
                         ("patch.webp", "WEBP", {"lossless": True})]:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **extra)
    write("image", name, buffer.getvalue())
buffer = io.BytesIO()
Image.fromarray(np.dstack([pixels, np.full((12, 16), 128, np.uint8)])).save(buffer, "PNG")
write("image", "alpha.png", buffer.getvalue())
buffer = io.BytesIO()
Image.fromarray(pixels[..., 0]).save(buffer, "PNG")
write("image", "grey.png", buffer.getvalue())
