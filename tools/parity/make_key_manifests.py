#!/usr/bin/python3
"""Writes the key/shape manifests of the full-size registered backbones, from the reference code that defines them.

usage:
  git -C /work/.mirror/facebookresearch+dinov2/repo archive HEAD dinov2 | tar -x -C /tmp/dinov2src
  git -C /work/.mirror/huggingface+pytorch-image-models/repo archive HEAD timm | tar -x -C /tmp/timmsrc
  /usr/bin/python3 tools/parity/make_key_manifests.py --dinov2-src /tmp/dinov2src --timm-src /tmp/timmsrc \
      [--out tests/fixtures/encoders] [--manifests a,b,...]

Each manifest DIR/<name>.keys.txt lists the reference model's state_dict, one "name [d0, d1, ...] dtype" line per
entry in state_dict order (the format of the other *.keys.txt fixtures). Names and shapes only: every model is built
under a TorchFunctionMode that sends the tensor factories (torch.empty, zeros, ...) to the meta device, so no weight
memory is allocated (ViT-g/14 has 1.1 billion parameters) and the constructors' initialisers run on meta tensors.
The manifests are what a published checkpoint of that model holds; plugins/torch_encoders/tests/test_published_layouts.cpp
loads a tensor of every listed shape into each registered backbone, strictly.

  dinov2_vit{s,b,l,g}14[_reg]  the official dinov2 code (dinov2/hub/backbones.py constructors' architecture
                               arguments: vits.<arch>(img_size=518, patch_size=14, init_values=1.0, block_chunks=0,
                               ffn_layer "swiglufused" for g else "mlp"; _reg: num_register_tokens=4,
                               interpolate_antialias=True, interpolate_offset=0.0)), as the *_pretrain.pth files
  uni                          timm vit_large_patch16_224(img_size=224, patch_size=16, init_values=1e-5,
                               num_classes=0, dynamic_img_size=True) (MahmoodLab/UNI model card)
  uni2_h                       timm vit_giant_patch14_224 with MahmoodLab/UNI2-h's timm_kwargs (img_size 224, patch 14,
                               depth 24, heads 24, init_values 1e-5, embed_dim 1536, mlp_ratio 2.66667 * 2,
                               num_classes 0, no_embed_class True, SwiGLUPacked, SiLU, reg_tokens 8, dynamic_img_size)
  virchow2                     timm vit_huge_patch14_224 with paige-ai/Virchow2's config.json model_args (img_size 224,
                               init_values 1e-5, num_classes 0, reg_tokens 4, mlp_ratio 5.3375, global_pool "",
                               dynamic_img_size True) plus the model card's mlp_layer=SwiGLUPacked, act_layer=SiLU;
                               no no_embed_class: pos_embed covers cls, the 4 registers and the 16x16 patches
  resnet50                     torchvision.models.resnet50(weights=None).state_dict() (fc and BatchNorm buffers
                               included): the ImageNet file, which both resnet50 and resnet50_trunc load
The phikon and ctranspath manifests come from tools/parity/make_ctranspath_phikon_fixtures.py.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import make_encoder_fixtures as mef  # noqa: E402  (the official DINOv2 import, keys_text)
import make_timm_fixtures as mtf  # noqa: E402  (timm imported with its optional packages stubbed)

DINOV2 = {  # name -> (arch, ffn_layer, registers)
    "dinov2_vits14": ("vit_small", "mlp", 0),
    "dinov2_vitb14": ("vit_base", "mlp", 0),
    "dinov2_vitl14": ("vit_large", "mlp", 0),
    "dinov2_vitg14": ("vit_giant2", "swiglufused", 0),
    "dinov2_vits14_reg": ("vit_small", "mlp", 4),
    "dinov2_vitb14_reg": ("vit_base", "mlp", 4),
    "dinov2_vitl14_reg": ("vit_large", "mlp", 4),
    "dinov2_vitg14_reg": ("vit_giant2", "swiglufused", 4),
}
TIMM = ("uni", "uni2_h", "virchow2")
MANIFESTS = tuple(DINOV2) + TIMM + ("resnet50",)


def meta_device_mode(torch):
    """Tensor factories called without a device while the mode is active create meta tensors (torch 1.13 has no torch.device
    context manager; this is what torch 2's DeviceContext does)."""
    from torch.overrides import TorchFunctionMode

    factories = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                 torch.arange, torch.linspace, torch.eye, torch.tensor}

    class MetaDevice(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in factories and kwargs.get("device") is None:  # an explicit device (timm's cpu linspace) stays
                kwargs["device"] = "meta"
            return func(*args, **kwargs)

    return MetaDevice()


def dinov2_model(name):
    from dinov2.models import vision_transformer as vits

    arch, ffn, registers = DINOV2[name]
    kwargs = dict(img_size=518, patch_size=14, init_values=1.0, block_chunks=0, ffn_layer=ffn,
                  num_register_tokens=registers, interpolate_antialias=registers > 0,
                  interpolate_offset=0.0 if registers else 0.1)
    return vits.__dict__[arch](**kwargs)


def timm_model(torch, name):
    import timm
    from timm.layers import SwiGLUPacked

    if name == "uni":
        return timm.create_model("vit_large_patch16_224", pretrained=False, img_size=224, patch_size=16,
                                 init_values=1e-5, num_classes=0, dynamic_img_size=True)
    if name == "uni2_h":
        return timm.create_model("vit_giant_patch14_224", pretrained=False, img_size=224, patch_size=14, depth=24,
                                 num_heads=24, init_values=1e-5, embed_dim=1536, mlp_ratio=2.66667 * 2, num_classes=0,
                                 no_embed_class=True, mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU, reg_tokens=8,
                                 dynamic_img_size=True)
    if name == "virchow2":
        return timm.create_model("vit_huge_patch14_224", pretrained=False, img_size=224, init_values=1e-5,
                                 num_classes=0, reg_tokens=4, mlp_ratio=5.3375, global_pool="", dynamic_img_size=True,
                                 mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU)
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dinov2-src", required=True, help="folder holding the dinov2 package")
    ap.add_argument("--timm-src", required=True, help="folder holding the timm package")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "encoders"))
    ap.add_argument("--manifests", default=",".join(MANIFESTS), help="subset of: " + ", ".join(MANIFESTS))
    args = ap.parse_args()

    torch, _ = mef.import_dinov2(args.dinov2_src)
    _, stubbed = mtf.import_timm(os.path.abspath(args.timm_src))
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; timm stubs: {', '.join(stubbed) or 'none'}")
    for name in [m for m in args.manifests.split(",") if m]:
        if name not in MANIFESTS:
            sys.exit(f"unknown manifest {name!r}")
        with meta_device_mode(torch):
            if name in DINOV2:
                model = dinov2_model(name)
            elif name in TIMM:
                model = timm_model(torch, name)
            else:
                model = torchvision.models.resnet50(weights=None)
        sd = model.state_dict()
        not_meta = [k for k, v in sd.items() if v.device.type != "meta"]
        assert not not_meta, f"{name}: allocated outside the meta device: {not_meta[:5]}"
        path = os.path.join(args.out, name + ".keys.txt")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(mef.keys_text(sd))
        os.replace(tmp, path)
        params = sum(v.numel() for v in sd.values() if v.dtype.is_floating_point)
        print(f"{path}: {len(sd)} entries, {params / 1e6:.1f} M values; pos_embed "
              f"{list(sd['pos_embed'].shape) if 'pos_embed' in sd else '-'}")


if __name__ == "__main__":
    main()
