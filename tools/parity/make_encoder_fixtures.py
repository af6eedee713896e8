#!/usr/bin/python3
"""Writes the reference fixtures for the encoder parity tests (ResNet-50 and DINOv2 backbones).

usage:
  git -C /work/.mirror/facebookresearch+dinov2/repo archive HEAD dinov2 | tar -x -C /tmp/dinov2src
  /usr/bin/python3 tools/parity/make_encoder_fixtures.py --dinov2-src /tmp/dinov2src \
      [--dinov2-commit SHA] [--out tests/fixtures/encoders] [--cases a,b,...]

Needs numpy, torch and torchvision (Debian: python3-torch, python3-torchvision); the DINOv2 sources are only
imported from --dinov2-src at generation time (never copied into this repository). xFormers is not used: the
script sets XFORMERS_DISABLED=1 so DINOv2 takes its plain PyTorch paths, and on torch < 2.0 it supplies a plain
softmax(q k^T / sqrt(d)) v for torch.nn.functional.scaled_dot_product_attention.

Model weights are not stored: both sides generate them with histoflow-init-v1 (tools/parity/histoflow_init.py)
for every state_dict entry, and load them with strict=True. Each case writes DIR/<case>.safetensors with the
uint8 input batch ("input", [B, H, W, 3]) and the float32 reference outputs; its __metadata__ describes the case.
"""
import argparse
import json
import math
import os
import platform
import struct
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import histoflow_init  # noqa: E402

FIXTURE_FORMAT = "histoflow-encoder-fixture-v1"
BATCH = 2
THREADS = 2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING = (
    "x = float32(u8) / 255 (float32 division); x = (x - mean[c]) / std[c] (float32 subtract, float32 divide; "
    "mean/std rounded to float32); layout NHWC uint8 -> NCHW float32"
)

# --------------------------------------------------------------------------------------------------------------
# safetensors


_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64"}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array) in file order; metadata: {str: str}."""
    header = {}
    blobs = []
    offset = 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        dtype = _DTYPES[arr.dtype]
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": [int(s) for s in arr.shape], "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    for k, v in metadata.items():
        assert isinstance(k, str) and isinstance(v, str), (k, v)
    header["__metadata__"] = dict(metadata)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Independent reader used to check what was written: ({name: array}, metadata)."""
    rev = {v: k for k, v in _DTYPES.items()}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    out = {}
    end_max = 0
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = rev[info["dtype"]].newbyteorder("<")
        arr = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"])
        assert arr.nbytes == e - b
        out[name] = arr
        end_max = max(end_max, e)
    assert end_max == len(data)
    return out, meta


# --------------------------------------------------------------------------------------------------------------
# torch side


def setup_torch():
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)  # weights are overwritten; only makes constructor-time init reproducible
    shimmed = False
    if not hasattr(F, "scaled_dot_product_attention"):
        # DINOv2's Attention.forward calls F.scaled_dot_product_attention (torch >= 2.0). Equivalent eager math
        # for the way it is called there (no mask, no dropout in eval, not causal, default scale 1/sqrt(E)).
        def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
            assert attn_mask is None and not is_causal and dropout_p == 0.0
            s = (1.0 / math.sqrt(q.shape[-1])) if scale is None else scale
            attn = torch.matmul(q, k.transpose(-2, -1)) * s
            attn = attn.softmax(dim=-1)
            return torch.matmul(attn, v)

        F.scaled_dot_product_attention = sdpa
        shimmed = True
    return torch, shimmed


def apply_init(torch, model):
    sd = model.state_dict()
    model.load_state_dict(histoflow_init.init_state_dict(sd), strict=True)
    # check a couple of entries really took the values
    for name in list(sd.keys())[:3]:
        got = model.state_dict()[name].detach().cpu().numpy()
        assert np.array_equal(got, histoflow_init.init_values(name, got.shape)), name
    return sd


def make_input(torch, size):
    u8 = histoflow_init.input_bytes(BATCH, size, size)
    x = torch.from_numpy(u8.copy()).to(torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
    x = (x - mean) / std
    x = x.permute(0, 3, 1, 2).contiguous()
    return u8, x


def keys_text(sd):
    return "".join(f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}\n" for k, v in sd.items())


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    return f"mean={a.mean():+.4g} std={a.std():.4g} min={a.min():+.4g} max={a.max():+.4g}"


# --------------------------------------------------------------------------------------------------------------
# numpy re-implementation of the positional-embedding interpolation (checks the formulas the C++ side uses)


def _cubic_w(t, a):
    t = abs(t)
    if t <= 1.0:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2.0:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return 0.0


def interp_matrix_bicubic(in_size, out_size, scale_factor):
    """torch upsample_bicubic2d, align_corners=False, antialias=False, A=-0.75, explicit scale_factor:
    src = (dst + 0.5) / scale_factor - 0.5; taps floor(src)-1 .. floor(src)+2 clamped to [0, in-1]."""
    m = np.zeros((out_size, in_size))
    scale = 1.0 / scale_factor if scale_factor else in_size / out_size
    for o in range(out_size):
        src = scale * (o + 0.5) - 0.5
        i0 = math.floor(src)
        t = src - i0
        for j in range(4):
            idx = min(max(i0 - 1 + j, 0), in_size - 1)
            m[o, idx] += _cubic_w(t + 1 - j, -0.75)
    return m


def interp_matrix_bicubic_aa(in_size, out_size):
    """torch upsample_bicubic2d with antialias=True (PIL-style, Keys A=-0.5), size given:
    scale = in/out, support = 2*max(scale,1), center = scale*(o+0.5),
    xmin = max(int(center - support + 0.5), 0), xmax = min(int(center + support + 0.5), in),
    w_j = K((j - center + 0.5) / max(scale,1)) for j in [xmin, xmax), normalised to sum 1."""
    m = np.zeros((out_size, in_size))
    scale = in_size / out_size
    support = 2.0 * scale if scale >= 1.0 else 2.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    for o in range(out_size):
        center = scale * (o + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        w = np.array([_cubic_w((j - center + 0.5) * inv, -0.5) for j in range(xmin, xmax)])
        if w.sum() != 0:
            w = w / w.sum()
        m[o, xmin:xmax] = w
    return m


def numpy_pos_embed(pos_embed, gh, gw, offset, antialias):
    """pos_embed [1, 1+M*M, D] -> [1, 1+gh*gw, D] the way DINOv2's interpolate_pos_encoding does it."""
    pe = np.asarray(pos_embed, dtype=np.float64)[0]
    cls, grid = pe[:1], pe[1:]
    n, d = grid.shape
    m_ = int(math.isqrt(n))
    grid = grid.reshape(m_, m_, d)
    if antialias:
        assert not offset, "antialias with scale_factor is not a hub configuration"
        rh, rw = interp_matrix_bicubic_aa(m_, gh), interp_matrix_bicubic_aa(m_, gw)
    elif offset:
        rh = interp_matrix_bicubic(m_, gh, (gh + offset) / m_)
        rw = interp_matrix_bicubic(m_, gw, (gw + offset) / m_)
    else:
        rh, rw = interp_matrix_bicubic(m_, gh, None), interp_matrix_bicubic(m_, gw, None)
    out = np.einsum("ah,bw,hwd->abd", rh, rw, grid).reshape(gh * gw, d)
    return np.concatenate([cls, out], 0)[None]


# --------------------------------------------------------------------------------------------------------------
# cases


def base_metadata(case, size, shimmed, args):
    import torch
    import torchvision

    return {
        "format": FIXTURE_FORMAT,
        "case": case,
        "init": histoflow_init.SCHEME,
        "input": "input",
        "input_layout": "NHWC uint8 [B, H, W, 3], RGB",
        "input_generator": f"{histoflow_init.SCHEME} stream NAME='input', byte = z >> 56, row-major over [B,H,W,3]",
        "batch": str(BATCH),
        "input_size": f"{size}x{size}",
        "input_height": str(size),
        "input_width": str(size),
        "preprocessing": PREPROCESSING,
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "dtype": "float32",
        "mode": "eval, torch.no_grad()",
        "torch_threads": str(THREADS),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "sdpa": "plain softmax(q k^T / sqrt(head_dim)) v shim (torch < 2.0)" if shimmed else "torch.nn.functional",
        "generator": "tools/parity/make_encoder_fixtures.py",
    }


def case_resnet50(torch, name, truncated, shimmed, args):
    import torch.nn as nn
    import torchvision

    size = 224
    model = torchvision.models.resnet50(weights=None)
    model.eval()
    sd = apply_init(torch, model)
    if truncated:
        feat = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                             model.layer3, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        desc = "conv1,bn1,relu,maxpool,layer1,layer2,layer3 -> AdaptiveAvgPool2d(1) -> flatten [B,1024] (CLAM)"
        dim = 1024
    else:
        feat = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                             model.layer3, model.layer4, model.avgpool, nn.Flatten(1))
        desc = "conv1 .. layer4, avgpool -> flatten [B,2048] (fc dropped)"
        dim = 2048
    feat.eval()
    u8, x = make_input(torch, size)
    with torch.no_grad():
        y = feat(x)
    assert tuple(y.shape) == (BATCH, dim)
    meta = base_metadata(name, size, shimmed, args)
    meta.update({
        "backbone": "resnet50",
        "model": "torchvision.models.resnet50(weights=None)",
        "model_config": json.dumps({"arch": "resnet50", "block": "Bottleneck (stride on conv2, v1.5)",
                                    "layers": [3, 4, 6, 3], "bn_eps": 1e-5, "truncated_after":
                                    "layer3" if truncated else None}),
        "features": desc,
        "init_state_dict": "full torchvision resnet50 state_dict (incl. fc, bn running stats, num_batches_tracked), "
                           "loaded strict",
        "state_dict_entries": str(len(sd)),
        "param_count": str(sum(int(v.numel()) for v in sd.values())),
        "outputs": json.dumps({"features": [BATCH, dim]}),
    })
    outs = [("features", y.numpy().astype(np.float32))]
    return u8, outs, meta, sd, None


def case_dinov2(torch, name, size, kind, shimmed, args, store_patch_tokens=True):
    from dinov2.models import vision_transformer as vits

    common = dict(img_size=518, patch_size=14, init_values=1.0, block_chunks=0)
    if kind == "vits14":
        cfg = dict(arch="vit_small", **common, ffn_layer="mlp", num_register_tokens=0,
                   interpolate_antialias=False, interpolate_offset=0.1)
        model = vits.vit_small(**{k: v for k, v in cfg.items() if k != "arch"})
    elif kind == "vits14_reg":
        cfg = dict(arch="vit_small", **common, ffn_layer="mlp", num_register_tokens=4,
                   interpolate_antialias=True, interpolate_offset=0.0)
        model = vits.vit_small(**{k: v for k, v in cfg.items() if k != "arch"})
    elif kind == "tiny_swiglu":
        cfg = dict(arch="DinoVisionTransformer", **common, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4,
                   ffn_layer="swiglufused", num_register_tokens=0, interpolate_antialias=False,
                   interpolate_offset=0.1)
        model = vits.DinoVisionTransformer(**{k: v for k, v in cfg.items() if k != "arch"})
    else:
        raise ValueError(kind)
    model.eval()
    sd = apply_init(torch, model)

    embed_dim = model.embed_dim
    ps = model.patch_size
    grid = size // ps
    m_ = int(math.isqrt(model.pos_embed.shape[1] - 1))
    u8, x = make_input(torch, size)
    with torch.no_grad():
        out = model.forward_features(x)
        cls = out["x_norm_clstoken"]
        patches = out["x_norm_patchtokens"]
        regs = out["x_norm_regtokens"]
        pos = model.interpolate_pos_encoding(torch.zeros(1, 1 + grid * grid, embed_dim), size, size)
        # sensitivity of the outputs to the positional embedding (diagnostic only)
        saved = model.pos_embed.detach().clone()
        model.pos_embed.zero_()
        out0 = model.forward_features(x)
        model.pos_embed.copy_(saved)
        pos_sens = float((out0["x_norm_clstoken"] - cls).abs().max())
    assert tuple(cls.shape) == (BATCH, embed_dim)
    assert tuple(patches.shape) == (BATCH, grid * grid, embed_dim)
    patch_mean = patches.mean(1)

    np_pos = numpy_pos_embed(model.pos_embed.detach().numpy(), grid, grid, model.interpolate_offset,
                             model.interpolate_antialias)
    pos_err = float(np.abs(np_pos - pos.numpy()).max())
    assert pos_err < 1e-5, f"numpy re-implementation of the pos-embed interpolation disagrees: {pos_err}"

    blk0 = model.blocks[0]
    block_keys = [k for k in sd.keys() if k.startswith("blocks.0.")]
    block_layout = {k: list(sd[k].shape) for k in block_keys}

    if model.interpolate_offset:
        interp = (f"F.interpolate(grid [1,D,{m_},{m_}], mode='bicubic', align_corners=False, "
                  f"antialias={model.interpolate_antialias}, scale_factor=(({grid}+{model.interpolate_offset})/{m_}, "
                  f"({grid}+{model.interpolate_offset})/{m_})) -> output size floor({m_}*sf) = {grid}; kernel source "
                  f"coordinate src = (dst+0.5)/sf - 0.5 (uses 1/sf, not {m_}/{grid}); cubic A=-0.75; taps clamped "
                  f"to [0,{m_ - 1}]")
    else:
        interp = (f"F.interpolate(grid [1,D,{m_},{m_}], mode='bicubic', align_corners=False, "
                  f"antialias={model.interpolate_antialias}, size=({grid},{grid}))")
        if model.interpolate_antialias:
            interp += (f"; antialias path: scale={m_}/{grid}, support=2*scale, Keys cubic A=-0.5, "
                       f"weights normalised to sum 1 (PIL-style), separable")
    interp += ("; pos_embed[:,0] (cls) is not interpolated; grid is pos_embed[:,1:] reshaped [1,M,M,D] row-major "
               "(row = y) and permuted to NCHW; skipped entirely when the token grid equals the stored grid")

    meta = base_metadata(name, size, shimmed, args)
    full_cfg = {k: v for k, v in cfg.items()}
    full_cfg.update({"embed_dim": embed_dim, "depth": len(model.blocks), "num_heads": model.num_heads,
                     "mlp_ratio": cfg.get("mlp_ratio", 4), "qkv_bias": True, "proj_bias": True, "ffn_bias": True,
                     "layernorm_eps": 1e-6, "act": "GELU (exact, erf)" if kind != "tiny_swiglu" else "SiLU (SwiGLU)"})
    meta.update({
        "backbone": "dinov2",
        "model": (f"dinov2.models.vision_transformer.{cfg['arch']}(" +
                  ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "arch") + ")"),
        "model_config": json.dumps(full_cfg),
        "dinov2_commit": args.dinov2_commit,
        "pos_embed_grid": f"{m_}x{m_}",
        "token_grid": f"{grid}x{grid}",
        "num_register_tokens": str(model.num_register_tokens),
        "token_order": "[cls, reg_0..reg_{R-1}, patches row-major]; pos_embed added to [cls, patches] before the "
                       "registers are inserted (registers get no pos_embed)",
        "pos_embed_interpolation": interp,
        "pos_embed_interp_numpy_max_abs_err": f"{pos_err:.3g}",
        "block": ("x = x + ls1.gamma * attn(norm1(x)); x = x + ls2.gamma * mlp(norm2(x)); "
                  "attn: qkv = Linear(D,3D) reshaped [B,N,3,H,D/H] (q = rows 0..D-1, k = D..2D-1, v = 2D..3D-1 of "
                  "qkv.weight, head-major inside each), softmax(q k^T / sqrt(D/H)) v, heads concatenated, proj"),
        "outputs_from": "forward_features: x_norm = norm(x after the last block); cls = x_norm[:,0]; "
                        "patch_tokens = x_norm[:, 1+R:]; patch_mean = patch_tokens.mean(1); "
                        "pos_embed_interp = interpolate_pos_encoding(...) [1, 1+grid*grid, D] (as added to tokens)",
        "block0_keys": json.dumps(block_layout),
        "state_dict_entries": str(len(sd)),
        "param_count": str(sum(int(v.numel()) for v in sd.values())),
        "pos_embed_sensitivity_cls_max_abs": f"{pos_sens:.4g}",
    })
    if kind == "tiny_swiglu":
        hidden = blk0.mlp.w3.in_features
        meta["ffn"] = (f"SwiGLUFFNFused (no xFormers -> SwiGLUFFN): hidden = (int({int(embed_dim * 4)}*2/3)+7)//8*8 = "
                       f"{hidden}; w12 = Linear(D, 2*hidden): x1 = first {hidden} output rows, x2 = last {hidden} "
                       f"(chunk(2, dim=-1)); h = silu(x1) * x2; w3 = Linear(hidden, D)")
        meta["swiglu_hidden"] = str(hidden)
    else:
        meta["ffn"] = "Mlp: fc1 Linear(D,4D) -> GELU(erf) -> fc2 Linear(4D,D)"

    outs = [("cls", cls.numpy().astype(np.float32)), ("patch_mean", patch_mean.numpy().astype(np.float32))]
    if store_patch_tokens:
        outs.append(("patch_tokens", patches.numpy().astype(np.float32)))
    if model.num_register_tokens:
        outs.append(("reg_tokens", regs.numpy().astype(np.float32)))
    outs.append(("pos_embed_interp", pos.numpy().astype(np.float32)))
    meta["outputs"] = json.dumps({k: list(v.shape) for k, v in outs})
    extra = {"block0_keys": block_layout}
    if kind == "tiny_swiglu":
        extra["swiglu_hidden"] = blk0.mlp.w3.in_features
    return u8, outs, meta, sd, extra


CASES = {
    "resnet50_full": lambda t, s, a: case_resnet50(t, "resnet50_full", False, s, a),
    "resnet50_trunc": lambda t, s, a: case_resnet50(t, "resnet50_trunc", True, s, a),
    "dinov2_vits14": lambda t, s, a: case_dinov2(t, "dinov2_vits14", 224, "vits14", s, a),
    "dinov2_vits14_reg": lambda t, s, a: case_dinov2(t, "dinov2_vits14_reg", 224, "vits14_reg", s, a),
    "dinov2_tiny_swiglu": lambda t, s, a: case_dinov2(t, "dinov2_tiny_swiglu", 224, "tiny_swiglu", s, a),
    "dinov2_vits14_336": lambda t, s, a: case_dinov2(t, "dinov2_vits14_336", 336, "vits14", s, a,
                                                     store_patch_tokens=False),
}
KEY_LISTS = {"dinov2_vits14", "dinov2_tiny_swiglu"}
MAX_BYTES = 2 * 1024 * 1024



def import_dinov2(src):
    """Makes the official DINOv2 sources at SRC importable (xFormers off, so the reference takes its plain
    attention path) and sets torch up (setup_torch). Returns (torch, shimmed module names)."""
    os.environ["XFORMERS_DISABLED"] = "1"
    src = os.path.abspath(src)
    if not os.path.isfile(os.path.join(src, "dinov2", "models", "vision_transformer.py")):
        sys.exit(f"--dinov2-src {src}: no dinov2/models/vision_transformer.py there")
    sys.path.insert(0, src)
    import warnings

    warnings.filterwarnings("ignore", message="xFormers is")
    return setup_torch()

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dinov2-src", required=True, help="folder holding the dinov2 package (added to sys.path)")
    ap.add_argument("--dinov2-commit", default="unknown", help="commit of the DINOv2 sources (recorded in metadata)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "encoders"),
                    help="output folder (default: <repo>/tests/fixtures/encoders)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = ap.parse_args()

    for line in histoflow_init.self_check_lines():
        print(line)

    torch, shimmed = import_dinov2(args.dinov2_src)

    os.makedirs(args.out, exist_ok=True)
    t_all = time.time()
    for case in [c for c in args.cases.split(",") if c]:
        if case not in CASES:
            sys.exit(f"unknown case {case!r}")
        t0 = time.time()
        u8, outs, meta, sd, extra = CASES[case](torch, shimmed, args)
        tensors = [("input", u8)] + outs
        path = os.path.join(args.out, case + ".safetensors")
        write_safetensors(path, tensors, meta)
        back, back_meta = read_safetensors(path)
        assert back_meta == meta and set(back) == {n for n, _ in tensors}
        for n, a in tensors:
            assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
        size = os.path.getsize(path)
        assert size < MAX_BYTES, f"{path} is {size} bytes"
        print(f"\n== {case}: {path} ({size} bytes, {time.time() - t0:.1f} s)")
        print(f"   {meta['model']}")
        for n, a in outs:
            print(f"   {n} {list(a.shape)} {stats(a)}")
        if "pos_embed_sensitivity_cls_max_abs" in meta:
            print(f"   pos-embed interpolation numpy check max|err| = {meta['pos_embed_interp_numpy_max_abs_err']}; "
                  f"cls max|change| with pos_embed zeroed = {meta['pos_embed_sensitivity_cls_max_abs']}")
        if extra and "swiglu_hidden" in extra:
            print(f"   SwiGLU hidden width = {extra['swiglu_hidden']}")
        if extra and case in ("dinov2_vits14", "dinov2_tiny_swiglu"):
            print("   block 0 state_dict keys:")
            for k, s in extra["block0_keys"].items():
                print(f"     {k} {s}")
        if case in KEY_LISTS:
            kpath = os.path.join(args.out, case + ".keys.txt")
            with open(kpath, "w") as f:
                f.write(keys_text(sd))
            print(f"   keys: {kpath} ({len(sd)} entries, {os.path.getsize(kpath)} bytes)")
    print(f"\ntotal {time.time() - t_all:.1f} s")


if __name__ == "__main__":
    main()
