#!/usr/bin/python3
"""Largest absolute difference between the float tensors two safetensors files share (Debian's numpy, no safetensors
package): prints "<max difference> <tensors compared> <name of the worst>"; exits 1 when they share no tensor."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def tensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in DTYPES:
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]).astype(np.float64)
    return out


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
shared = sorted(set(a) & set(b))
if not shared:
    sys.exit("no tensor in common")
worst = max(shared, key=lambda k: np.abs(a[k] - b[k]).max())
print(np.abs(a[worst] - b[worst]).max(), len(shared), worst)
