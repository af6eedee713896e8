#!/usr/bin/python3
"""Writes the timm reference fixtures for the encoder parity tests (UNI-, Virchow2- and UNI2-h-style ViTs, in small).

The two register layouts differ in which tokens carry position embeddings, as published:
  timm_virchow_tiny: paige-ai/Virchow2 config.json (vit_huge_patch14_224, reg_tokens=4, no no_embed_class): pos_embed
    covers [cls, 4 registers, patches] and is added after they are concatenated.
  timm_uni2_tiny: MahmoodLab/UNI2-h timm kwargs (reg_tokens=8, no_embed_class=True): pos_embed covers the patches only
    and is added before cls and registers are prepended.
Each ViT case also stores timm's resample_abs_pos_embed of its pos_embed to a 12x12 grid (168 px), with the
num_prefix_tokens timm's own dynamic_img_size path passes (0 with no_embed_class, else 1 + registers).

usage:
  git -C /work/.mirror/huggingface+pytorch-image-models/repo archive HEAD timm | tar -x -C /tmp/timmsrc
  /usr/bin/python3 tools/parity/make_timm_fixtures.py --timm-src /tmp/timmsrc \
      [--timm-commit SHA] [--out tests/fixtures/encoders] [--cases a,b,...]

Needs numpy and torch (Debian: python3-torch); timm is only imported from --timm-src at generation time (never
copied into this repository). Optional timm dependencies that are missing (huggingface_hub, safetensors, ...) are
replaced by empty stub modules in sys.modules; nothing is installed. TIMM_FUSED_ATTN=0 is set before timm is
imported, so timm's Attention takes its eager path ((q * head_dim^-0.5) @ k^T, softmax, @ v) whatever the torch
version; the script checks that no attention module uses F.scaled_dot_product_attention.

Model weights are not stored: both sides generate them with histoflow-init-v1 (tools/parity/histoflow_init.py)
for every state_dict entry, and load them with strict=True. Each case writes DIR/<case>.safetensors (same format
as tools/parity/make_encoder_fixtures.py: the uint8 input batch "input" [B, H, W, 3] and float32 outputs, with a
__metadata__ describing the case) and DIR/<case>.keys.txt (state_dict name, shape, dtype per line).
Every case is also recomputed by an independent float64 numpy forward pass written from the block description
recorded in the metadata; the script fails if it disagrees with timm.
"""
import argparse
import importlib
import json
import math
import os
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import histoflow_init  # noqa: E402
import make_encoder_fixtures as mef  # noqa: E402  (safetensors writer/reader, input, init and metadata helpers)

BATCH = mef.BATCH
SIZE = 224
MAX_BYTES = mef.MAX_BYTES
NUMPY_TOL = 1e-4  # max |numpy float64 forward - timm float32 forward| accepted (relative to max(1, |ref|))

# Optional packages that timm may import at module level; stubbed (empty modules) when not importable.
OPTIONAL_MODULES = ("huggingface_hub", "huggingface_hub.utils", "safetensors", "safetensors.torch")


# --------------------------------------------------------------------------------------------------------------
# timm import


def import_timm(src):
    """Imports timm from SRC with the fused-attention switch off. A module-level import that fails with
    ModuleNotFoundError for an optional package (OPTIONAL_MODULES) gets an empty stub module in sys.modules and the
    import is retried. Returns (timm, stubbed module names)."""
    os.environ["TIMM_FUSED_ATTN"] = "0"
    if not os.path.isfile(os.path.join(src, "timm", "models", "vision_transformer.py")):
        sys.exit(f"--timm-src {src}: no timm/models/vision_transformer.py there")
    sys.path.insert(0, src)
    stubbed = []
    while True:
        try:
            import timm  # noqa: F401
            import timm.layers
            import timm.models.vision_transformer  # noqa: F401
            break
        except ModuleNotFoundError as e:
            root = (e.name or "").split(".")[0]
            if not e.name or not any(m == e.name or m.startswith(root + ".") or m == root
                                     for m in OPTIONAL_MODULES) or e.name in stubbed:
                raise
            for mod in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
                del sys.modules[mod]
            sys.modules[e.name] = types.ModuleType(e.name)
            stubbed.append(e.name)

    assert not timm.layers.use_fused_attn(), "TIMM_FUSED_ATTN=0 did not switch fused attention off"
    return timm, stubbed


# --------------------------------------------------------------------------------------------------------------
# independent numpy forward (float64): checks the semantics written into the metadata


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu_erf(x):
    from math import erf

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))


def _silu(x):
    return x / (1.0 + np.exp(-x))


def numpy_forward(sd, x_nchw, cfg):
    """Float64 forward of timm VisionTransformer.forward_features for the two cases, from the state_dict only."""
    p = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in sd.items()}
    x = np.asarray(x_nchw, dtype=np.float64)
    B = x.shape[0]
    D, ps, H, R = cfg["embed_dim"], cfg["patch_size"], cfg["num_heads"], cfg["reg_tokens"]
    eps = cfg["layernorm_eps"]
    g = x.shape[2] // ps
    # patch embedding: Conv2d(k=ps, stride=ps) == per-patch matmul over (c, ky, kx)
    patches = x.reshape(B, 3, g, ps, g, ps).transpose(0, 2, 4, 1, 3, 5).reshape(B, g * g, 3 * ps * ps)
    w = p["patch_embed.proj.weight"].reshape(D, -1)
    t = patches @ w.T + p["patch_embed.proj.bias"]                  # [B, g*g, D], patches row-major (y, x)
    prefix = [np.broadcast_to(p["cls_token"], (B, 1, D))]
    if R:
        prefix.append(np.broadcast_to(p["reg_token"], (B, R, D)))
    if cfg["no_embed_class"]:
        t = np.concatenate(prefix + [t + p["pos_embed"]], 1)       # pos_embed [1, g*g, D] only for patches
    else:
        t = np.concatenate(prefix + [t], 1) + p["pos_embed"]       # pos_embed [1, 1+R+g*g, D]
    hd = D // H
    for i in range(cfg["depth"]):
        pre = f"blocks.{i}."
        h = _ln(t, p[pre + "norm1.weight"], p[pre + "norm1.bias"], eps)
        qkv = h @ p[pre + "attn.qkv.weight"].T + p[pre + "attn.qkv.bias"]   # [B, N, 3D]
        N = qkv.shape[1]
        qkv = qkv.reshape(B, N, 3, H, hd).transpose(2, 0, 3, 1, 4)        # [3, B, H, N, hd]
        q, k, v = qkv[0] * hd ** -0.5, qkv[1], qkv[2]
        a = q @ k.transpose(0, 1, 3, 2)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(B, N, D)
        o = o @ p[pre + "attn.proj.weight"].T + p[pre + "attn.proj.bias"]
        t = t + p[pre + "ls1.gamma"] * o
        h = _ln(t, p[pre + "norm2.weight"], p[pre + "norm2.bias"], eps)
        h = h @ p[pre + "mlp.fc1.weight"].T + p[pre + "mlp.fc1.bias"]
        if cfg["mlp"] == "swiglu_packed":
            half = h.shape[-1] // 2
            if cfg.get("swap_gate"):
                h = h[..., :half] * _silu(h[..., half:])               # negative control only
            else:
                h = _silu(h[..., :half]) * h[..., half:]               # act(first half) * second half
        else:
            h = _gelu_erf(h)
        h = h @ p[pre + "mlp.fc2.weight"].T + p[pre + "mlp.fc2.bias"]
        t = t + p[pre + "ls2.gamma"] * h
    return _ln(t, p["norm.weight"], p["norm.bias"], eps)


# --------------------------------------------------------------------------------------------------------------
# cases


def _uni_tiny(torch, timm):
    from timm.models.vision_transformer import VisionTransformer

    kwargs = dict(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4, init_values=1e-5,
                  class_token=True, global_pool="token", num_classes=0, dynamic_img_size=False)
    text = "VisionTransformer(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"
    return VisionTransformer(**kwargs), kwargs, text, "mlp", 0


def _virchow_tiny(torch, timm):
    """Virchow2's published layout (config.json model_args: img_size 224, init_values 1e-5, reg_tokens 4, mlp_ratio
    5.3375, global_pool "", dynamic_img_size; the model card adds mlp_layer=SwiGLUPacked, act_layer=SiLU; no
    no_embed_class, so pos_embed has 1 + 4 + grid rows)."""
    from timm.layers import SwiGLUPacked
    from timm.models.vision_transformer import VisionTransformer

    # embed_dim is 96, not 64: timm's Block builds the MLP with hidden_features = int(dim * mlp_ratio), and
    # GluMlp (SwiGLUPacked) asserts hidden_features % 2 == 0; int(64 * 5.3375) = int(341.6) = 341 is odd, so
    # embed_dim=64 with the Virchow2 mlp_ratio cannot be built. int(96 * 5.3375) = int(512.4) = 512 keeps the
    # Virchow2 ratio and exercises the truncation (Virchow2 itself: int(1280 * 5.3375) = 6832).
    kwargs = dict(img_size=224, patch_size=14, embed_dim=96, depth=2, num_heads=2, init_values=1e-5,
                  mlp_ratio=5.3375, mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU, reg_tokens=4,
                  class_token=True, global_pool="", num_classes=0, dynamic_img_size=False)
    return _swiglu_model(torch, kwargs, 4)


def _uni2_tiny(torch, timm):
    """UNI2-h's published timm kwargs (img_size 224, patch 14, init_values 1e-5, mlp_ratio 2.66667 * 2,
    no_embed_class=True, SwiGLUPacked + SiLU, reg_tokens 8, dynamic_img_size) at width 96: int(96 * 5.33334) = 512
    is even, as GluMlp requires."""
    kwargs = dict(img_size=224, patch_size=14, embed_dim=96, depth=2, num_heads=2, init_values=1e-5,
                  mlp_ratio=2.66667 * 2, no_embed_class=True, reg_tokens=8,
                  class_token=True, global_pool="", num_classes=0, dynamic_img_size=False)
    return _swiglu_model(torch, kwargs, 8)


def _swiglu_model(torch, kwargs, registers):
    from timm.layers import SwiGLUPacked
    from timm.models.vision_transformer import VisionTransformer

    kwargs = dict(kwargs, mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU)
    shown = dict(kwargs, mlp_layer="timm.layers.SwiGLUPacked", act_layer="torch.nn.SiLU")
    text = "VisionTransformer(" + ", ".join(
        f"{k}={v}" if k in ("mlp_layer", "act_layer") else f"{k}={v!r}" for k, v in shown.items()) + ")"
    return VisionTransformer(**kwargs), shown, text, "swiglu_packed", registers


BUILDERS = {"timm_uni_tiny": _uni_tiny, "timm_virchow_tiny": _virchow_tiny, "timm_uni2_tiny": _uni2_tiny}
INTERP_SIZE = 168  # the pos_embed_interp output: the stored 16x16 grid resampled to 12x12


def run_case(torch, timm, case, stubbed, args):
    model, kwargs, ctor_text, mlp_kind, R = BUILDERS[case](torch, timm)
    model.eval()
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            assert not m.fused_attn, f"{type(m).__name__} would use F.scaled_dot_product_attention"
    sd = mef.apply_init(torch, model)

    D = model.embed_dim
    ps = model.patch_embed.patch_size[0]
    g = SIZE // ps
    P = 1 + R  # prefix tokens
    assert model.num_prefix_tokens == P
    assert tuple(model.patch_embed.grid_size) == (g, g)
    eps = model.norm.eps
    blk0 = model.blocks[0]
    assert all(isinstance(b.attn.q_norm, torch.nn.Identity) and isinstance(b.attn.k_norm, torch.nn.Identity)
               and isinstance(b.attn.norm, torch.nn.Identity) for b in model.blocks)
    assert isinstance(model.norm_pre, torch.nn.Identity) and isinstance(model.fc_norm, torch.nn.Identity)
    assert isinstance(model.head, torch.nn.Identity) and isinstance(model.patch_embed.norm, torch.nn.Identity)
    assert isinstance(blk0.mlp.norm, torch.nn.Identity)
    pe_len = model.pos_embed.shape[1]
    assert pe_len == (g * g if model.no_embed_class else P + g * g)

    u8, x = mef.make_input(torch, SIZE)
    from timm.layers import resample_abs_pos_embed

    gi = INTERP_SIZE // ps
    pos_prefix = 0 if model.no_embed_class else model.num_prefix_tokens
    with torch.no_grad():
        # as VisionTransformer._pos_embed does with dynamic_img_size (bicubic, antialias, prefix rows kept)
        pos_interp = resample_abs_pos_embed(model.pos_embed, new_size=(gi, gi), old_size=(g, g),
                                            num_prefix_tokens=pos_prefix)
        assert tuple(pos_interp.shape) == (1, pos_prefix + gi * gi, D)
        assert torch.equal(pos_interp[:, :pos_prefix], model.pos_embed[:, :pos_prefix])
        tokens = model.forward_features(x)
        # diagnostics: how much the outputs depend on the pieces the C++ side must get right
        sens = {}
        for pname in ["pos_embed", "reg_token", "blocks.0.ls1.gamma"]:
            prm = dict(model.named_parameters()).get(pname)
            if prm is None:
                continue
            saved = prm.detach().clone()
            prm.zero_() if pname != "blocks.0.ls1.gamma" else prm.fill_(1e-5)
            alt = model.forward_features(x)
            prm.copy_(saved)
            sens[pname] = float((alt[:, 0] - tokens[:, 0]).abs().max())
            sens[pname + " (patch_tokens)"] = float((alt[:, P:] - tokens[:, P:]).abs().max())
        again = model.forward_features(x)
        assert torch.equal(again, tokens)
    assert tuple(tokens.shape) == (BATCH, P + g * g, D)
    cls = tokens[:, 0]
    patches = tokens[:, P:]
    patch_mean = patches.mean(1)

    cfg = {"embed_dim": D, "patch_size": ps, "num_heads": model.blocks[0].attn.num_heads, "reg_tokens": R,
           "depth": len(model.blocks), "layernorm_eps": eps, "no_embed_class": model.no_embed_class,
           "mlp": mlp_kind}
    ref = numpy_forward(sd, x.numpy(), cfg)
    np_err = float(np.max(np.abs(ref - tokens.numpy().astype(np.float64)) / np.maximum(1.0, np.abs(ref))))
    assert np_err < NUMPY_TOL, f"{case}: numpy forward disagrees with timm: {np_err}"
    if mlp_kind == "swiglu_packed":  # negative control: x1 * silu(x2) must not match
        bad = numpy_forward(sd, x.numpy(), dict(cfg, swap_gate=True))
        swap_err = float(np.max(np.abs(bad - tokens.numpy().astype(np.float64))))
        assert swap_err > 1e-2, f"{case}: swapped SwiGLU gate is indistinguishable ({swap_err})"
        sens["swiglu gate swapped (all tokens)"] = swap_err

    hidden_fc1 = blk0.mlp.fc1.out_features
    if mlp_kind == "swiglu_packed":
        half = hidden_fc1 // 2
        assert blk0.mlp.fc2.in_features == half and not blk0.mlp.gate_last
        assert isinstance(blk0.mlp.act, torch.nn.SiLU)
        ffn = (f"timm.layers.SwiGLUPacked = partial(GluMlp, act_layer=nn.SiLU, gate_last=False); act_layer=SiLU is "
               f"passed too. Block: hidden_features = int(dim * mlp_ratio) = int({D} * {kwargs['mlp_ratio']}) = "
               f"{hidden_fc1} (Python int(): truncation toward zero; GluMlp asserts it is even). "
               f"fc1 = Linear(D, {hidden_fc1}) (weight [{hidden_fc1}, {D}], bias [{hidden_fc1}]); "
               f"x1, x2 = fc1(x).chunk(2, dim=-1) -> x1 = output channels 0..{half - 1}, x2 = {half}..{hidden_fc1 - 1}; "
               f"h = silu(x1) * x2 (gate_last=False: the activation is on the FIRST half); mlp.norm = Identity "
               f"(scale_mlp_norm=False); fc2 = Linear({half}, D) (weight [{D}, {half}]); dropouts are no-ops in eval")
    else:
        ffn = (f"timm.layers.Mlp: fc1 Linear(D, int({D}*{kwargs['mlp_ratio']})={hidden_fc1}) -> GELU (exact, erf; "
               f"nn.GELU()) -> norm Identity -> fc2 Linear({hidden_fc1}, D)")

    if model.no_embed_class:
        pos = (f"no_embed_class=True: pos_embed is [1, {pe_len}, D] for the {g}x{g} patches only; "
               f"x = patch_tokens + pos_embed, THEN x = cat([cls_token, reg_token ({R}), x], 1) -> the cls and "
               f"register tokens get no position embedding")
    else:
        pos = (f"no_embed_class=False: pos_embed is [1, {pe_len}, D] = [cls, " + (f"reg_0..reg_{R - 1}, " if R else "")
               + f"patches]; x = cat([cls_token, " + ("reg_token, " if R else "")
               + f"patch_tokens], 1) THEN x = x + pos_embed (pos_embed[:, :{P}] goes to the prefix tokens)")
    pos += (f"; dynamic_img_size=False and 224 == img_size: pos_embed is used as stored, no interpolation "
            f"(PatchEmbed strict_img_size asserts H = W = 224). pos_embed_interp = resample_abs_pos_embed(pos_embed, "
            f"new_size=({gi}, {gi}), old_size=({g}, {g}), num_prefix_tokens={pos_prefix}) (bicubic, antialias=True; "
            f"the first {pos_prefix} rows kept): what dynamic_img_size adds for a {INTERP_SIZE} px input")

    block_keys = {k: list(sd[k].shape) for k in sd if k.startswith("blocks.0.")}
    meta = mef.base_metadata(case, SIZE, False, args)
    meta.update({
        "backbone": "timm_vit",
        "model": "timm.models.vision_transformer." + ctor_text,
        "model_config": json.dumps({
            **{k: v for k, v in kwargs.items()}, "qkv_bias": True, "proj_bias": True, "qk_norm": False,
            "pre_norm": False, "final_norm": True, "fc_norm": False, "pos_embed": "learn",
            "layernorm_eps": eps, "num_prefix_tokens": P, "mlp_hidden_fc1": hidden_fc1,
            "act": "SiLU (SwiGLU, act on first half)" if mlp_kind == "swiglu_packed" else "GELU (exact, erf)"}),
        "timm_commit": args.timm_commit,
        "timm_version": timm.__version__,
        "timm_stubbed_modules": ",".join(stubbed),
        "sdpa": "not used: TIMM_FUSED_ATTN=0, timm Attention eager path (q * head_dim^-0.5) @ k^T -> softmax -> @ v",
        "generator": "tools/parity/make_timm_fixtures.py",
        "pos_embed_grid": f"{g}x{g}",
        "token_grid": f"{g}x{g}",
        "num_register_tokens": str(R),
        "token_order": f"[cls, reg_0..reg_{R - 1}, patches row-major (y, x)]" if R else "[cls, patches row-major]",
        "pos_embed": pos,
        "patch_embed": f"Conv2d(3, D, kernel {ps}, stride {ps}, bias) -> flatten(2).transpose(1, 2); no norm",
        "block": ("x = x + ls1.gamma * attn(norm1(x)); x = x + ls2.gamma * mlp(norm2(x)); norms are LayerNorm "
                  f"eps={eps}; attn: qkv = Linear(D, 3D, bias) reshaped [B, N, 3, heads, D/heads] (q = rows 0..D-1, "
                  "k = D..2D-1, v = 2D..3D-1 of qkv.weight, head-major inside each); q_norm/k_norm/attn.norm are "
                  "Identity; softmax((q * (D/heads)^-0.5) @ k^T) @ v, heads concatenated, proj Linear(D, D, bias)"),
        "ffn": ffn,
        "final": f"norm = LayerNorm(D, eps={eps}) on all tokens (norm_pre, fc_norm, head are Identity)",
        "outputs_from": (f"tokens = forward_features(x) [B, {P + g * g}, D] (after the final norm); cls = tokens[:, 0]; "
                         f"patch_tokens = tokens[:, {P}:]; patch_mean = patch_tokens.mean(1)"
                         + (f"; reg_tokens = tokens[:, 1:{P}]" if R else "")),
        "numpy_forward_max_rel_err": f"{np_err:.3g}",
        "sensitivity_cls_max_abs": json.dumps({k: float(f"{v:.4g}") for k, v in sens.items()}),
        "block0_keys": json.dumps(block_keys),
        "state_dict_entries": str(len(sd)),
        "param_count": str(sum(int(v.numel()) for v in sd.values())),
    })
    if mlp_kind == "swiglu_packed":
        meta["swiglu_hidden"] = str(hidden_fc1 // 2)
    meta["position_prefix_tokens"] = str(pos_prefix)
    outs = [("cls", cls.numpy().astype(np.float32)), ("patch_mean", patch_mean.numpy().astype(np.float32)),
            ("patch_tokens", patches.numpy().astype(np.float32)),
            ("pos_embed_interp", pos_interp.numpy().astype(np.float32))]
    if R:
        outs.append(("reg_tokens", tokens[:, 1:P].numpy().astype(np.float32)))
    meta["outputs"] = json.dumps({k: list(v.shape) for k, v in outs})
    return u8, outs, meta, sd, {"block0_keys": block_keys, "np_err": np_err, "sens": sens}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timm-src", required=True, help="folder holding the timm package (added to sys.path)")
    ap.add_argument("--timm-commit", default="unknown", help="commit of the timm sources (recorded in metadata)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "encoders"),
                    help="output folder (default: <repo>/tests/fixtures/encoders)")
    ap.add_argument("--cases", default=",".join(BUILDERS), help="comma-separated subset of: " + ", ".join(BUILDERS))
    args = ap.parse_args()

    for line in histoflow_init.self_check_lines():
        print(line)

    timm, stubbed = import_timm(os.path.abspath(args.timm_src))
    torch, _ = mef.setup_torch()  # threads + seed (its SDPA shim, if installed, is never reached: see above)
    print(f"timm {timm.__version__} from {args.timm_src} (commit {args.timm_commit}); "
          f"stubbed: {', '.join(stubbed) or 'none'}; torch {torch.__version__}")

    os.makedirs(args.out, exist_ok=True)
    t_all = time.time()
    for case in [c for c in args.cases.split(",") if c]:
        if case not in BUILDERS:
            sys.exit(f"unknown case {case!r}")
        t0 = time.time()
        u8, outs, meta, sd, extra = run_case(torch, timm, case, stubbed, args)
        tensors = [("input", u8)] + outs
        path = os.path.join(args.out, case + ".safetensors")
        mef.write_safetensors(path, tensors, meta)
        back, back_meta = mef.read_safetensors(path)
        assert back_meta == meta and set(back) == {n for n, _ in tensors}
        for n, a in tensors:
            assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
        size = os.path.getsize(path)
        assert size < MAX_BYTES, f"{path} is {size} bytes"
        kpath = os.path.join(args.out, case + ".keys.txt")
        with open(kpath, "w") as f:
            f.write(mef.keys_text(sd))
        print(f"\n== {case}: {path} ({size} bytes, {time.time() - t0:.1f} s)")
        print(f"   {meta['model']}")
        for n, a in outs:
            print(f"   {n} {list(a.shape)} {mef.stats(a)}")
        print(f"   numpy float64 forward max rel err = {extra['np_err']:.3g}; max|change| of cls (patch_tokens) "
              "with pos_embed / reg_token zeroed, blocks.0.ls1.gamma set to 1e-5: "
              + ", ".join(f"{k}: {v:.4g}" for k, v in extra["sens"].items()))
        print(f"   ffn: {meta['ffn']}")
        print("   block 0 state_dict keys:")
        for k, s in extra["block0_keys"].items():
            print(f"     {k} {s}")
        print(f"   keys: {kpath} ({len(sd)} entries, {os.path.getsize(kpath)} bytes)")
    print(f"\ntotal {time.time() - t_all:.1f} s")


if __name__ == "__main__":
    main()
