#!/usr/bin/python3
"""Writes teacher checkpoints as DINOv2 training publishes them, with the official code's features, for the encoder
tests (plugins/torch_encoders/tests/test_teacher_checkpoints.cpp).

usage:
  git -C /work/.mirror/facebookresearch+dinov2/repo archive HEAD dinov2 | tar -x -C /tmp/dinov2src
  /usr/bin/python3 tools/parity/make_teacher_fixtures.py --dinov2-src /tmp/dinov2src \
      [--dinov2-commit SHA] [--out tests/fixtures/encoders] [--cases a,b]

Each case writes DIR/<case>.pth, the checkpoint, and DIR/<case>.safetensors, the expected features (the uint8 inputs
"input_224" [B, 224, 224, 3] and "input_168" [B, 168, 168, 3], then "cls_<size>" [B, D] and "patch_tokens_<size>"
[B, N, D] from the official DinoVisionTransformer.forward_features after loading the checkpoint strictly; metadata
describes the case). The models are small (width 32 to 64, patch 14) so that the files stay well under 1 MB, but the
layouts are the real ones:

  dinov2_teacher_paper  the study's fork (beneroth13/dinov2): a hub-built DinoVisionTransformer (img_size 518, so
      pos_embed [1, 1 + 37*37, D], block_chunks 0, init_values 1.0) whose pos_embed is resized to 16x16 by the fork's
      interpolate_pos_encoding (tools/parity/make_finetune_fixtures.py: fork_interpolate_pos_encoding; bicubic,
      scale factor 16/37, class row kept -> [1, 257, D]), trained at 224 px and saved by the official do_test as
      torch.save({"teacher": teacher.state_dict()}): keys backbone.*, dino_head.*, ibot_head.* (DINOHead with
      weight-normed last_layer.weight_g / weight_v).
  dinov2_teacher_chunked  the official training configuration's block_chunks (FSDP wrapping units): a
      DinoVisionTransformer(img_size 224, depth 4, block_chunks 2) stores blocks.<chunk>.<block>.* with the global
      block index (BlockChunk pads with Identity: blocks.0.0, blocks.0.1, blocks.1.2, blocks.1.3), saved the same
      way ({"teacher": {backbone.*, dino_head.*, ibot_head.*}}, dinov2/train/train.py do_test).

Weights: histoflow-init-v1 (tools/parity/histoflow_init.py) under each entry's own name, except pos_embed, which is
init_values("pos_embed") * 50 (under that init a pos_embed is ~1e-3, too small for an interpolation mistake to show
in the features); heads get init_values("dino_head." + name) / ("ibot_head." + name), last_layer.weight_g = 1. The
168 px input makes the official code interpolate the stored 16x16 grid to 12x12 (scale factor (12 + 0.1) / 16).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import histoflow_init  # noqa: E402
import make_encoder_fixtures as mef  # noqa: E402  (safetensors writer, input, metadata helpers)
from make_finetune_fixtures import fork_interpolate_pos_encoding  # noqa: E402  (the fork's resize, documented there)

SIZES = (224, 168)
POS_SCALE = 50.0
MAX_BYTES = 1024 * 1024
HEAD = dict(out_dim=96, hidden_dim=48, bottleneck_dim=16, nlayers=3)

CASES = {
    # name: (DinoVisionTransformer kwargs of the saved model, the architecture it was built from when resized)
    "dinov2_teacher_paper": dict(embed_dim=64, depth=2, num_heads=2, block_chunks=0, hub_img_size=518),
    "dinov2_teacher_chunked": dict(embed_dim=32, depth=4, num_heads=2, block_chunks=2, hub_img_size=None),
}


def initialised(torch, model, prefix=""):
    sd = model.state_dict()
    values = {}
    for name, t in sd.items():
        v = histoflow_init.init_values(prefix + name, tuple(t.shape))
        if name == "pos_embed":
            v = v * np.float32(POS_SCALE)
        if name.endswith("weight_g"):
            v = np.ones(tuple(t.shape), dtype=np.float32)
        values[name] = torch.from_numpy(np.ascontiguousarray(v).astype(np.float32))
    model.load_state_dict(values, strict=True)
    return model


def build(torch, vits, case, img_size):
    c = CASES[case]
    return vits.DinoVisionTransformer(img_size=img_size, patch_size=14, embed_dim=c["embed_dim"], depth=c["depth"],
                                      num_heads=c["num_heads"], mlp_ratio=4, init_values=1.0, ffn_layer="mlp",
                                      block_chunks=c["block_chunks"], num_register_tokens=0,
                                      interpolate_antialias=False, interpolate_offset=0.1)


def run_case(torch, case, args, shimmed):
    from dinov2.layers.dino_head import DINOHead
    from dinov2.models import vision_transformer as vits

    c = CASES[case]
    if c["hub_img_size"]:
        hub = initialised(torch, build(torch, vits, case, c["hub_img_size"]))
        state = hub.state_dict()
        with torch.no_grad():
            state["pos_embed"] = fork_interpolate_pos_encoding(torch, state["pos_embed"], 16, 16)
        model = build(torch, vits, case, 224)  # what the fork trains (global crops 224 px)
        model.load_state_dict(state, strict=True)
    else:
        model = initialised(torch, build(torch, vits, case, 224))
        state = model.state_dict()
    model.eval()
    assert tuple(state["pos_embed"].shape) == (1, 257, c["embed_dim"])
    dino_head = initialised(torch, DINOHead(c["embed_dim"], **HEAD), "dino_head.")
    ibot_head = initialised(torch, DINOHead(c["embed_dim"], **HEAD), "ibot_head.")
    teacher = {"backbone." + k: v for k, v in state.items()}
    teacher.update({"dino_head." + k: v for k, v in dino_head.state_dict().items()})
    teacher.update({"ibot_head." + k: v for k, v in ibot_head.state_dict().items()})
    block_keys = sorted({".".join(k.split(".")[1:4]) for k in teacher if k.startswith("backbone.blocks.")})

    pth = os.path.join(args.out, case + ".pth")
    torch.save({"teacher": teacher}, pth + ".tmp")
    os.replace(pth + ".tmp", pth)
    # What the official evaluation does with such a file: load_pretrained_weights(model, path, "teacher") strips
    # "backbone." and loads strictly into a model of the training configuration.
    reloaded = torch.load(pth, map_location="cpu")["teacher"]
    check = build(torch, vits, case, 224)
    check.load_state_dict({k[len("backbone."):]: v for k, v in reloaded.items() if k.startswith("backbone.")},
                          strict=True)
    check.eval()

    tensors, outputs = [], {}
    with torch.no_grad():
        for size in SIZES:
            u8, x = mef.make_input(torch, size)
            out = check.forward_features(x)
            tensors.append((f"input_{size}", u8))
            for name, key in (("cls", "x_norm_clstoken"), ("patch_tokens", "x_norm_patchtokens")):
                tensors.append((f"{name}_{size}", out[key].numpy().astype(np.float32)))
                outputs[f"{name}_{size}"] = list(out[key].shape)
    meta = mef.base_metadata(case, 224, shimmed, args)
    meta.update({
        "format": "histoflow-teacher-fixture-v1",
        "generator": "tools/parity/make_teacher_fixtures.py",
        "dinov2_commit": args.dinov2_commit,
        "checkpoint": os.path.basename(pth),
        "checkpoint_layout": 'torch.save({"teacher": {backbone.*, dino_head.*, ibot_head.*}})',
        "model": (f"dinov2.models.vision_transformer.DinoVisionTransformer(img_size=224, patch_size=14, "
                  f"embed_dim={c['embed_dim']}, depth={c['depth']}, num_heads={c['num_heads']}, mlp_ratio=4, "
                  f"init_values=1.0, ffn_layer='mlp', block_chunks={c['block_chunks']}, num_register_tokens=0, "
                  f"interpolate_antialias=False, interpolate_offset=0.1)"),
        "pos_embed": ("hub pos_embed [1, 1370, D] resized to 16x16 by the fork's interpolate_pos_encoding"
                      if c["hub_img_size"] else "stored at the training grid, 16x16") + f", values x{POS_SCALE}",
        "block_keys": json.dumps(block_keys),
        "heads": json.dumps(HEAD),
        "input_sizes": json.dumps(list(SIZES)),
        "outputs": json.dumps(outputs),
        "outputs_from": "forward_features: cls = x_norm_clstoken, patch_tokens = x_norm_patchtokens",
    })
    path = os.path.join(args.out, case + ".safetensors")
    mef.write_safetensors(path, tensors, meta)
    for p in (pth, path):
        assert os.path.getsize(p) < MAX_BYTES, f"{p} is {os.path.getsize(p)} bytes"
    return pth, path, block_keys, tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dinov2-src", required=True, help="folder holding the dinov2 package (added to sys.path)")
    ap.add_argument("--dinov2-commit", default="unknown", help="commit of the DINOv2 sources (recorded in metadata)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "encoders"))
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = ap.parse_args()

    torch, shimmed = mef.import_dinov2(args.dinov2_src)
    os.makedirs(args.out, exist_ok=True)
    for case in [c for c in args.cases.split(",") if c]:
        if case not in CASES:
            sys.exit(f"unknown case {case!r}")
        t0 = time.time()
        pth, path, block_keys, tensors = run_case(torch, case, args, shimmed)
        print(f"== {case}: {pth} ({os.path.getsize(pth)} bytes), {path} ({os.path.getsize(path)} bytes), "
              f"{time.time() - t0:.1f} s")
        print(f"   blocks: {', '.join(block_keys)}")
        for name, a in tensors:
            if not name.startswith("input"):
                print(f"   {name} {list(a.shape)} {mef.stats(a)}")


if __name__ == "__main__":
    main()
