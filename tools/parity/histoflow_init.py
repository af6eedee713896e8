#!/usr/bin/python3
"""histoflow-init-v1: deterministic pseudo-random weights and inputs shared by the C++ encoders and the
Python reference (tools/parity/make_encoder_fixtures.py). Needs only numpy.

For a tensor named NAME with shape S (n elements, row-major order):
  seed = FNV-1a 64 of the UTF-8 bytes of NAME (basis 0xcbf29ce484222325, prime 0x100000001b3)
  x_i  = seed + (i+1) * 0x9E3779B97F4A7C15            (i = 0..n-1, all mod 2^64)
  z_i  = splitmix64 finaliser of x_i:
         z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; z ^= z >> 31
  u_i  = (z_i >> 11) * 2^-53 in [0,1),   v_i = 2 u_i - 1 in [-1,1)
Value rules (computed in float64, then cast to float32):
  NAME ends with "num_batches_tracked"                 -> 0 (int64)
  NAME ends with "running_var"                         -> 1 + 0.5 u
  NAME ends with "running_mean"                        -> 0.1 v
  1-D and NAME ends with ".weight" or ".gamma"         -> 1 + 0.1 v
  1-D and NAME ends with ".bias"                       -> 0.1 v
  anything else                                        -> v * sqrt(3 / fan_in), fan_in = n / S[0] (n if 1-D)
Input images: uint8 byte_i = z_i >> 56 for NAME "input", row-major over [B, H, W, 3].

usage: tools/parity/histoflow_init.py      (prints the self-check values)
"""
import math

import numpy as np

SCHEME = "histoflow-init-v1"

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1


def fnv1a64(name: str) -> int:
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * FNV_PRIME) & MASK64
    return h


def raw_stream(name: str, n: int) -> np.ndarray:
    """z_0 .. z_{n-1} as uint64 (wrapping arithmetic)."""
    seed = np.uint64(fnv1a64(name))
    with np.errstate(over="ignore"):
        z = np.arange(1, n + 1, dtype=np.uint64)
        z *= np.uint64(GOLDEN)
        z += seed
        z ^= z >> np.uint64(30)
        z *= np.uint64(MIX1)
        z ^= z >> np.uint64(27)
        z *= np.uint64(MIX2)
        z ^= z >> np.uint64(31)
    return z


def uniform01(name: str, n: int) -> np.ndarray:
    """u_i = (z_i >> 11) * 2^-53 as float64 (exact)."""
    return (raw_stream(name, n) >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def init_values(name: str, shape) -> np.ndarray:
    """The histoflow-init-v1 tensor for state_dict entry NAME with shape SHAPE (float32, or int64 for
    num_batches_tracked)."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if name.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    u = uniform01(name, n)
    if name.endswith("running_var"):
        vals = 1.0 + 0.5 * u
    else:
        v = 2.0 * u - 1.0
        one_d = len(shape) == 1
        if name.endswith("running_mean"):
            vals = 0.1 * v
        elif one_d and (name.endswith(".weight") or name.endswith(".gamma")):
            vals = 1.0 + 0.1 * v
        elif one_d and name.endswith(".bias"):
            vals = 0.1 * v
        else:
            fan_in = n if len(shape) <= 1 else n // shape[0]
            vals = v * math.sqrt(3.0 / fan_in)
    return vals.astype(np.float32).reshape(shape)


def init_state_dict(state_dict):
    """{name: torch.Tensor} with histoflow-init-v1 values for every entry of a torch state_dict
    (same dtypes as the entries)."""
    import torch

    out = {}
    for name, t in state_dict.items():
        vals = init_values(name, tuple(t.shape))
        out[name] = torch.from_numpy(vals).to(t.dtype)
    return out


def input_bytes(batch: int, height: int, width: int, name: str = "input") -> np.ndarray:
    """uint8 [B, H, W, 3], byte_i = z_i >> 56."""
    n = batch * height * width * 3
    return (raw_stream(name, n) >> np.uint64(56)).astype(np.uint8).reshape(batch, height, width, 3)


def _scalar_z(name: str, i: int) -> int:
    """Pure-Python z_i (reference for the vectorised stream)."""
    z = (fnv1a64(name) + (i + 1) * GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def self_check_lines():
    name, shape = "conv1.weight", (64, 3, 7, 7)
    vals = init_values(name, shape).reshape(-1)[:3]
    z = raw_stream(name, 3)
    for i in range(3):
        assert int(z[i]) == _scalar_z(name, i), "vectorised stream disagrees with the scalar reference"
    lines = [
        f"{SCHEME} self-check: NAME={name!r} S={list(shape)} fan_in={64 * 3 * 7 * 7 // 64}",
        f"  fnv1a64(NAME) = 0x{fnv1a64(name):016x}",
    ]
    for i in range(3):
        f = np.float32(vals[i])
        bits = int(np.array([f], dtype=np.float32).view(np.uint32)[0])
        lines.append(f"  [{i}] z=0x{int(z[i]):016x} value={float(f):.9g} (float32 bits 0x{bits:08x})")
    inp = input_bytes(1, 1, 2)
    lines.append(f"  input bytes [0,0,0:2,:] = {inp.reshape(-1).tolist()} (fnv1a64('input') = 0x{fnv1a64('input'):016x})")
    return lines


if __name__ == "__main__":
    print("\n".join(self_check_lines()))
