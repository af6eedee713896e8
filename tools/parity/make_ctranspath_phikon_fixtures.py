#!/usr/bin/python3
"""Writes the reference fixtures for the CTransPath (Swin-T with a convolutional stem) and Phikon (HuggingFace
ViT-B/16) parity tests.

usage:
  git -C /work/.mirror/huggingface+pytorch-image-models/repo archive aa4b5850c1543fa488abf260f18390eda46cf85d timm \
      | tar -x -C /tmp/timmsrc
  git -C /work/.mirror/huggingface+pytorch-image-models/repo archive v0.5.4 timm | tar -x -C /tmp/timm054
  /usr/bin/python3 tools/parity/make_ctranspath_phikon_fixtures.py --timm-src /tmp/timmsrc \
      --timm-commit aa4b5850c1543fa488abf260f18390eda46cf85d --timm054-src /tmp/timm054 [--out tests/fixtures/encoders]

Needs numpy and torch (Debian: python3-torch); timm is only imported from the given folders at generation time
(never copied into this repository), with TIMM_FUSED_ATTN=0 (eager attention) as in make_timm_fixtures.py.
Weights are histoflow-init-v1 (tools/parity/histoflow_init.py) on both sides, named by the C++ module's keys.

CTransPath: the reference is timm's current SwinTransformer (swin_tiny_patch4_window7_224 hyper-parameters, in
small for the parity case) whose embed_layer is CTransPath's ConvStem, as CTransPath's ctran.py builds it
(timm.create_model('swin_tiny_patch4_window7_224', embed_layer=ConvStem), head replaced by Identity). ConvStem is
written here from its description: conv3x3/2 (3 -> E/8, no bias), BN, ReLU, conv3x3/2 (E/8 -> E/4, no bias), BN,
ReLU, conv1x1 (E/4 -> E, bias), then the patch norm (LayerNorm): keys patch_embed.proj.{0,1,3,4,6} and
patch_embed.norm. The published ctranspath.pth was saved by timm 0.5.4 (the version CTransPath ships): there each
stage's PatchMerging sits at its END (layers.0.downsample merges 96 -> 192) and relative_position_index / attn_mask
are persistent buffers. The same model is therefore also built with timm 0.5.4 (--timm054-src, its PatchEmbed
replaced by ConvStem, which is what CTransPath's modified timm 0.5.4 does), its features must agree with current
timm's, and its complete state_dict (buffers included) is what the checkpoint fixture and the key lists hold.

Phikon: transformers is not importable here (and not installed for this), so the reference is timm's
VisionTransformer with Phikon's hyper-parameters (ViT-B/16 at 224, no LayerScale, LayerNorm eps 1e-12 as
HuggingFace's ViTConfig.layer_norm_eps; in small for the parity case). Its state_dict is renamed into
HuggingFace ViTModel names here (qkv split into query/key/value; pooler.dense added), and an independent float64
numpy forward written from HuggingFace's ViT semantics (separate q/k/v, scores * head_dim^-0.5, exact GELU,
layernorm_before/after, final layernorm) runs on those HF-named tensors and must agree with timm.

Writes to --out:
  ctranspath_tiny.safetensors          uint8 input [B, 112, 112, 3] and "pooled" [B, 32]
  ctranspath_tiny.keys.txt             timm 0.5.4 (published) state_dict of that model: name, shape, dtype
  ctranspath_tiny_published.pth        torch.save({"model": that state_dict}) like ctranspath.pth
  ctranspath.keys.txt                  the same for the full CTransPath configuration
  phikon_tiny.safetensors              uint8 input [B, 224, 224, 3], "cls", "patch_mean", "patch_tokens"
  phikon_tiny_hf.safetensors           the tiny model's weights in HuggingFace ViTModel names (a published layout)
  phikon_tiny.keys.txt, phikon.keys.txt  HuggingFace ViTModel state_dict names and shapes (tiny, full)
"""
import argparse
import collections
import json
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import histoflow_init  # noqa: E402
import make_encoder_fixtures as mef  # noqa: E402
import make_timm_fixtures as mtf  # noqa: E402

MAX_BYTES = 1024 * 1024
AGREE_TOL = 1e-5  # relative L2 error accepted between two reference implementations (float32)

# The parity case in small: at 112 px three stages have grids 28, 14 and 7, like the last three of CTransPath at
# 224: shifted windows with masks (stages 0 and 1), a last stage whose grid is one window (no shift), two merges.
# (timm 0.5.4 cannot merge an odd grid, so a fourth stage would need 224 px and a 600 KB mask buffer.)
SWIN_TINY = dict(img_size=112, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 2), window_size=7)
SWIN_FULL = dict(img_size=224, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)
VIT_TINY = dict(img_size=224, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0)
VIT_FULL = dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0)  # owkin/phikon
HF_EPS = 1e-12


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------------------------------------------
# CTransPath


def conv_stem_class(torch):
    nn = torch.nn

    class ConvStem(nn.Module):
        """CTransPath's patch embedding for both timm generations: current timm passes output_fmt='NHWC' (and
        device/dtype); timm 0.5.4 expects [B, L, C]."""

        def __init__(self, img_size=224, patch_size=4, in_chans=3, embed_dim=768, norm_layer=None,
                     output_fmt=None, strict_img_size=True, device=None, dtype=None, **unused):
            super().__init__()
            assert patch_size == 4 and embed_dim % 8 == 0 and in_chans == 3
            self.img_size = (img_size, img_size)
            self.patch_size = (patch_size, patch_size)
            self.grid_size = (img_size // patch_size, img_size // patch_size)
            self.num_patches = self.grid_size[0] * self.grid_size[1]
            self.nhwc = output_fmt == "NHWC"
            layers, c_in, c_out = [], 3, embed_dim // 8
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                           nn.ReLU(inplace=True)]
                c_in, c_out = c_out, c_out * 2
            layers.append(nn.Conv2d(c_in, embed_dim, 1))
            self.proj = nn.Sequential(*layers)
            self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

        def forward(self, x):
            assert tuple(x.shape[2:]) == self.img_size, f"input {tuple(x.shape[2:])} is not {self.img_size}"
            x = self.proj(x)
            x = x.permute(0, 2, 3, 1) if self.nhwc else x.flatten(2).transpose(1, 2)
            return self.norm(x)

    return ConvStem


def old_swin_name(new_name):
    """Current timm key -> timm 0.5.4 key: PatchMerging moved from the end of stage i to the start of stage i+1."""
    return re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", new_name)


def is_computed_swin_buffer(name):
    return name.endswith("relative_position_index") or name.endswith("attn_mask")


def new_swin(torch, timm, cfg):
    from timm.models.swin_transformer import SwinTransformer

    model = SwinTransformer(patch_size=4, num_classes=0, embed_layer=conv_stem_class(torch), **cfg).eval()
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            assert not m.fused_attn, f"{type(m).__name__} would use F.scaled_dot_product_attention"
    return model


def init_new_swin(torch, model):
    """histoflow-init-v1 under the published (0.5.4) names, loaded into current timm's names."""
    sd = model.state_dict()
    assert not any(is_computed_swin_buffer(k) for k in sd), "current timm stores computed buffers?"
    values = {k: torch.from_numpy(histoflow_init.init_values(old_swin_name(k), tuple(v.shape))).to(v.dtype)
              for k, v in sd.items()}
    model.load_state_dict(values, strict=True)
    return collections.OrderedDict((old_swin_name(k), v) for k, v in values.items())


def old_swin(torch, timm054, cfg):
    swin = timm054.models.swin_transformer
    saved = swin.PatchEmbed
    swin.PatchEmbed = conv_stem_class(torch)  # what CTransPath's modified timm 0.5.4 does with embed_layer=ConvStem
    try:
        model = swin.SwinTransformer(patch_size=4, num_classes=0, **cfg).eval()
    finally:
        swin.PatchEmbed = saved
    return model


def load_into_old_swin(model, learned):
    """The published state_dict: the learned tensors plus timm 0.5.4's own computed buffers."""
    sd = model.state_dict()
    learned_names = {k for k in sd if not is_computed_swin_buffer(k)}
    assert learned_names == set(learned), (sorted(learned_names ^ set(learned)))[:10]
    full = collections.OrderedDict((k, learned[k] if k in learned else v) for k, v in sd.items())
    model.load_state_dict(full, strict=True)
    return full


def swin_pooled(model, x):
    out = model.forward_features(x)
    return out.mean((1, 2)) if out.dim() == 4 else out  # current timm: NHWC normed map; 0.5.4: already pooled


def ctranspath_cases(torch, timm_new, timm054_src, args):
    u8, x = mef.make_input(torch, SWIN_TINY["img_size"])
    new_tiny = new_swin(torch, timm_new, SWIN_TINY)
    learned_tiny = init_new_swin(torch, new_tiny)
    with torch.no_grad():
        pooled = new_tiny(x)  # num_classes=0: head.fc is Identity, forward = avg-pooled final norm (CTransPath)
        assert torch.equal(pooled, swin_pooled(new_tiny, x))
    new_full = new_swin(torch, timm_new, SWIN_FULL)
    learned_full = collections.OrderedDict((old_swin_name(k), v) for k, v in new_full.state_dict().items())
    mask_blocks = [f"layers.{i}.blocks.{j}" for i, layer in enumerate(new_tiny.layers)
                   for j, blk in enumerate(layer.blocks) if blk.attn_mask is not None]
    windows = [(i, tuple(layer.blocks[0].window_size)) for i, layer in enumerate(new_tiny.layers)]

    # timm 0.5.4, the published layout
    timm054 = import_other_timm(timm054_src)
    old_tiny = old_swin(torch, timm054, SWIN_TINY)
    published_tiny = load_into_old_swin(old_tiny, learned_tiny)
    with torch.no_grad():
        pooled_old = old_tiny(x)
    agree = rel_l2(pooled_old.numpy(), pooled.numpy())
    assert agree < AGREE_TOL, f"timm 0.5.4 and current timm disagree: {agree}"
    old_full = old_swin(torch, timm054, SWIN_FULL)
    published_full = load_into_old_swin(old_full, learned_full)
    old_masks = sorted(k[:-len(".attn_mask")] for k in published_tiny if k.endswith("attn_mask"))
    assert old_masks == sorted(mask_blocks), (old_masks, mask_blocks)
    for k in [k for k in published_tiny if is_computed_swin_buffer(k)]:  # same buffers in both generations
        blk = new_tiny.get_submodule(k.rsplit(".", 1)[0])  # blocks keep their place; only downsample moved
        assert torch.equal(getattr(blk, k.rsplit(".", 1)[1]).to(published_tiny[k].dtype), published_tiny[k]), k

    meta = mef.base_metadata("ctranspath_tiny", SWIN_TINY["img_size"], False, args)
    meta.update({
        "backbone": "ctranspath",
        "generator": "tools/parity/make_ctranspath_phikon_fixtures.py",
        "model": "timm.models.swin_transformer.SwinTransformer(patch_size=4, num_classes=0, embed_layer=ConvStem, "
                 + ", ".join(f"{k}={v!r}" for k, v in SWIN_TINY.items()) + ")",
        "full_model": "swin_tiny_patch4_window7_224: " + json.dumps(SWIN_FULL),
        "conv_stem": "proj = [Conv2d(3, E/8, 3, s2, p1, no bias), BN, ReLU, Conv2d(E/8, E/4, 3, s2, p1, no bias), BN, "
                     "ReLU, Conv2d(E/4, E, 1)]; NCHW -> NHWC; norm = LayerNorm(E, eps 1e-5)",
        "windows": json.dumps(windows),
        "shifted_blocks": ",".join(mask_blocks),
        "timm_commit": args.timm_commit,
        "timm_version": timm_new.__version__,
        "timm054_version": timm054.__version__,
        "timm054_vs_current_rel_l2": f"{agree:.3g}",
        "outputs_from": "pooled = model(x) = forward_features(x).mean((1, 2)): mean over the final LayerNorm'ed "
                        "[B, H, W, C] map",
        "weights_layout": "published (timm 0.5.4): layers.i.downsample merges at the end of stage i; "
                          "relative_position_index and attn_mask stored",
    })
    outs = [("pooled", pooled.numpy().astype(np.float32))]
    write_fixture(args, "ctranspath_tiny", u8, outs, meta)
    write_keys(args, "ctranspath_tiny", published_tiny)
    write_keys(args, "ctranspath", published_full)
    pth = os.path.join(args.out, "ctranspath_tiny_published.pth")
    torch.save({"model": published_tiny}, pth)
    assert os.path.getsize(pth) < MAX_BYTES, f"{pth} is {os.path.getsize(pth)} bytes"
    print(f"   {pth} ({os.path.getsize(pth)} bytes, {len(published_tiny)} tensors); timm 0.5.4 vs current timm: "
          f"relative L2 {agree:.3g}; windows {windows}; shifted blocks {mask_blocks}")
    print(f"   full configuration: {len(published_full)} state_dict entries, "
          f"{sum(v.numel() for k, v in published_full.items() if not is_computed_swin_buffer(k))} learned values")


def import_other_timm(src):
    """Imports a second timm (0.5.4) after the current one: its modules replace the current timm's."""
    for mod in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
        del sys.modules[mod]
    sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p, "timm"))]
    sys.path.insert(0, os.path.abspath(src))
    import timm

    assert timm.__version__ == "0.5.4", f"--timm054-src holds timm {timm.__version__}"
    import timm.models.swin_transformer  # noqa: F401

    return timm


# --------------------------------------------------------------------------------------------------------------
# Phikon


def timm_vit(torch, cfg):
    from functools import partial

    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(**cfg, qkv_bias=True, class_token=True, global_pool="token", num_classes=0,
                              init_values=None, dynamic_img_size=False,
                              norm_layer=partial(torch.nn.LayerNorm, eps=HF_EPS)).eval()
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            assert not m.fused_attn, f"{type(m).__name__} would use F.scaled_dot_product_attention"
    return model


def hf_state_dict(timm_sd, depth, dim):
    """timm VisionTransformer names -> HuggingFace ViTModel names, in ViTModel's order; pooler.dense added
    (histoflow-init-v1 under its HF name; the encoder ignores it)."""
    out = collections.OrderedDict()
    out["embeddings.cls_token"] = timm_sd["cls_token"]
    out["embeddings.position_embeddings"] = timm_sd["pos_embed"]
    out["embeddings.patch_embeddings.projection.weight"] = timm_sd["patch_embed.proj.weight"]
    out["embeddings.patch_embeddings.projection.bias"] = timm_sd["patch_embed.proj.bias"]
    for i in range(depth):
        t, h = f"blocks.{i}.", f"encoder.layer.{i}."
        for j, name in enumerate(("query", "key", "value")):  # qkv rows: q, then k, then v
            for part in ("weight", "bias"):
                rows = timm_sd[t + "attn.qkv." + part][j * dim:(j + 1) * dim]
                out[h + f"attention.attention.{name}.{part}"] = rows.clone()
        for timm_name, hf_name in (("attn.proj", "attention.output.dense"), ("mlp.fc1", "intermediate.dense"),
                                   ("mlp.fc2", "output.dense"), ("norm1", "layernorm_before"),
                                   ("norm2", "layernorm_after")):
            for part in ("weight", "bias"):
                out[h + hf_name + "." + part] = timm_sd[t + timm_name + "." + part]
    out["layernorm.weight"] = timm_sd["norm.weight"]
    out["layernorm.bias"] = timm_sd["norm.bias"]
    import torch

    for name, shape in (("pooler.dense.weight", (dim, dim)), ("pooler.dense.bias", (dim,))):
        out[name] = torch.from_numpy(histoflow_init.init_values(name, shape))
    return out


def hf_vit_numpy(sd, x, depth, heads, patch):
    """Float64 forward of HuggingFace ViTModel (eval) from its HF-named state_dict: last_hidden_state."""
    p = {k: v.detach().numpy().astype(np.float64) for k, v in sd.items()}
    x = np.asarray(x, dtype=np.float64)
    B, _, H, W = x.shape
    D = p["embeddings.cls_token"].shape[-1]
    gh, gw = H // patch, W // patch
    patches = x.reshape(B, 3, gh, patch, gw, patch).transpose(0, 2, 4, 1, 3, 5).reshape(B, gh * gw, -1)
    t = patches @ p["embeddings.patch_embeddings.projection.weight"].reshape(D, -1).T
    t = t + p["embeddings.patch_embeddings.projection.bias"]
    t = np.concatenate([np.broadcast_to(p["embeddings.cls_token"], (B, 1, D)), t], 1)
    t = t + p["embeddings.position_embeddings"]
    hd = D // heads
    for i in range(depth):
        pre = f"encoder.layer.{i}."
        lin = lambda v, name: v @ p[pre + name + ".weight"].T + p[pre + name + ".bias"]  # noqa: E731
        h = mtf._ln(t, p[pre + "layernorm_before.weight"], p[pre + "layernorm_before.bias"], HF_EPS)
        split = lambda v: v.reshape(B, -1, heads, hd).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (split(lin(h, "attention.attention." + n)) for n in ("query", "key", "value"))
        s = (q @ k.transpose(0, 1, 3, 2)) * hd ** -0.5
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, -1, D)
        t = t + lin(ctx, "attention.output.dense")
        h = mtf._ln(t, p[pre + "layernorm_after.weight"], p[pre + "layernorm_after.bias"], HF_EPS)
        t = t + lin(mtf._gelu_erf(lin(h, "intermediate.dense")), "output.dense")
    return mtf._ln(t, p["layernorm.weight"], p["layernorm.bias"], HF_EPS)


def phikon_cases(torch, timm, args):
    u8, x = mef.make_input(torch, VIT_TINY["img_size"])
    model = timm_vit(torch, VIT_TINY)
    timm_sd = mef.apply_init(torch, model)  # histoflow-init-v1 under timm names: the C++ module's names
    with torch.no_grad():
        tokens = model.forward_features(x)
    hf = hf_state_dict(model.state_dict(), VIT_TINY["depth"], VIT_TINY["embed_dim"])
    ref = hf_vit_numpy(hf, x.numpy(), VIT_TINY["depth"], VIT_TINY["num_heads"], VIT_TINY["patch_size"])
    agree = rel_l2(tokens.numpy(), ref)
    assert agree < AGREE_TOL, f"HF-semantics numpy forward disagrees with timm: {agree}"
    full = timm_vit(torch, VIT_FULL)
    hf_full = hf_state_dict(full.state_dict(), VIT_FULL["depth"], VIT_FULL["embed_dim"])

    meta = mef.base_metadata("phikon_tiny", VIT_TINY["img_size"], False, args)
    meta.update({
        "backbone": "phikon",
        "generator": "tools/parity/make_ctranspath_phikon_fixtures.py",
        "model": "timm.models.vision_transformer.VisionTransformer(" + ", ".join(
            f"{k}={v!r}" for k, v in VIT_TINY.items()) + ", qkv_bias=True, class_token=True, init_values=None, "
                 "norm_layer=partial(LayerNorm, eps=1e-12))",
        "full_model": "owkin/phikon (HF ViTModel): " + json.dumps(VIT_FULL),
        "reference": "timm's VisionTransformer (transformers is not importable here); HF-named weights in "
                     "phikon_tiny_hf.safetensors; float64 numpy forward with HF ViT semantics on them agrees "
                     f"within relative L2 {agree:.3g}",
        "timm_commit": args.timm_commit,
        "timm_version": timm.__version__,
        "layernorm_eps": str(HF_EPS),
        "outputs_from": "tokens = forward_features(x) (after the final LayerNorm); cls = tokens[:, 0]; "
                        "patch_tokens = tokens[:, 1:]; patch_mean = patch_tokens.mean(1)",
    })
    outs = [("cls", tokens[:, 0].numpy().astype(np.float32)),
            ("patch_mean", tokens[:, 1:].mean(1).numpy().astype(np.float32)),
            ("patch_tokens", tokens[:, 1:].numpy().astype(np.float32))]
    write_fixture(args, "phikon_tiny", u8, outs, meta)
    weights = os.path.join(args.out, "phikon_tiny_hf.safetensors")
    mef.write_safetensors(weights, [(k, v.numpy()) for k, v in hf.items()], {"format": "pt"})
    assert os.path.getsize(weights) < MAX_BYTES
    write_keys(args, "phikon_tiny", hf)
    write_keys(args, "phikon", hf_full)
    print(f"   {weights} ({os.path.getsize(weights)} bytes, {len(hf)} tensors, HF ViTModel names); "
          f"HF-semantics numpy forward vs timm: relative L2 {agree:.3g}; timm keys {len(timm_sd)}")
    print(f"   full configuration: {len(hf_full)} HF state_dict entries")


# --------------------------------------------------------------------------------------------------------------


def write_fixture(args, case, u8, outs, meta):
    meta["outputs"] = json.dumps({k: list(v.shape) for k, v in outs})
    tensors = [("input", u8)] + outs
    path = os.path.join(args.out, case + ".safetensors")
    mef.write_safetensors(path, tensors, meta)
    back, back_meta = mef.read_safetensors(path)
    assert back_meta == meta and all(np.array_equal(back[n], a) for n, a in tensors)
    assert os.path.getsize(path) < MAX_BYTES, f"{path} is {os.path.getsize(path)} bytes"
    print(f"\n== {case}: {path} ({os.path.getsize(path)} bytes)")
    for n, a in outs:
        print(f"   {n} {list(a.shape)} {mef.stats(a)}")


def write_keys(args, case, sd):
    path = os.path.join(args.out, case + ".keys.txt")
    with open(path, "w") as f:
        f.write(mef.keys_text(sd))
    print(f"   keys: {path} ({len(sd)} entries)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timm-src", required=True, help="folder holding current timm (aa4b5850 or later)")
    ap.add_argument("--timm-commit", default="unknown", help="commit of --timm-src (recorded in metadata)")
    ap.add_argument("--timm054-src", required=True, help="folder holding timm 0.5.4 (CTransPath's timm)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "encoders"))
    args = ap.parse_args()

    for line in histoflow_init.self_check_lines():
        print(line)
    timm, stubbed = mtf.import_timm(os.path.abspath(args.timm_src))
    torch, _ = mef.setup_torch()
    print(f"timm {timm.__version__} from {args.timm_src} (commit {args.timm_commit}); stubbed: "
          f"{', '.join(stubbed) or 'none'}; torch {torch.__version__}")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    phikon_cases(torch, timm, args)
    ctranspath_cases(torch, timm, args.timm054_src, args)  # last: it replaces timm with 0.5.4 in sys.modules
    print(f"\ntotal {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
