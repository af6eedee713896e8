#!/usr/bin/python3
"""Writes the reference fixtures for the DINOv2 self-supervised fine-tuning step (one training iteration).

usage:
  git -C /work/.mirror/facebookresearch+dinov2/repo archive HEAD dinov2 | tar -x -C /tmp/dinov2src
  /usr/bin/python3 tools/parity/make_finetune_fixtures.py --dinov2-src /tmp/dinov2src \
      [--dinov2-commit SHA] [--out tests/fixtures/finetune] [--cases a,b,...]

Needs numpy, PyYAML and torch (Debian: python3-numpy, python3-yaml, python3-torch 1.13). The facebookresearch/dinov2
sources (commit b8931f7) are only imported from --dinov2-src at generation time, never copied into this repository.
One call writes DIR/<case>.safetensors for each case (ssl_tiny_centering, ssl_tiny_sinkhorn_separate, ssl_vits14).

What runs is the OFFICIAL training code, on CPU, in float32, 2 threads, deterministic:
  dinov2.train.ssl_meta_arch.SSLMetaArch (constructor and forward_backward, unmodified), DINOLoss / iBOTPatchLoss /
  KoLeoLoss (dinov2/loss), DINOHead (dinov2/layers/dino_head.py), DinoVisionTransformer (dinov2/models),
  get_params_groups_with_decay + fuse_params_groups (via SSLMetaArch.get_params_groups), dinov2.train.train's
  build_optimizer (torch.optim.AdamW(param groups, betas)), build_schedulers (CosineScheduler) and
  apply_optim_scheduler, dinov2.utils.config.apply_scaling_rules_to_cfg (lr = base_lr * sqrt(B / 1024)),
  collate_data_and_cast + MaskingGenerator (dinov2/data) for the iBOT masks, the config defaults of
  dinov2/configs/ssl_default_config.yaml. The loop body of do_train is followed in order: schedules at the case's
  iteration -> apply_optim_scheduler -> zero_grad(set_to_none) -> forward_backward -> per-module clip -> step ->
  teacher EMA. The AdamW state is fresh (this is its first step, state step = 1), whatever the schedule iteration.

Shims (installed before dinov2 is imported; needed because there is no xFormers, no CUDA and no usable FSDP here):
  * XFORMERS_DISABLED=1, so attention, blocks and SwiGLU take their plain PyTorch paths; on torch < 2.0
    F.scaled_dot_product_attention is supplied as plain softmax(q k^T / sqrt(d)) v (make_encoder_fixtures.setup_torch).
  * fake module xformers.ops with only fmha.BlockDiagonalMask.from_tensor_list(list of [1, n_i, D]) ->
    (bias, torch.cat(list, dim=1)) and bias.split(t) -> [t[:, o_i : o_i + n_i]] (each [1, n_i, ...]). forward_backward
    uses it only to run the student dino_head once over [local cls | global cls | masked patch tokens]; the head is
    per-token, so this is exactly what the block-diagonal mask does. xformers.ops has no cross_entropy, so
    iBOTPatchLoss takes its documented fallback lossfunc = sum(t * log_softmax(s / temp), -1).
  * stub modules fvcore.common.checkpoint (Checkpointer, PeriodicCheckpointer: unused placeholders), omegaconf (a
    minimal OmegaConf.load/create/merge over PyYAML returning an attribute-and-item dict, only used when omegaconf is
    not installed), and dinov2.fsdp (torch 1.13's torch.distributed.fsdp does not even import on Python 3.11):
    get_fsdp_wrapper -> identity, ShardedGradScaler -> unused (cfg.compute_precision.grad_scaler = False, fp32),
    get_fsdp_modules -> [module], reshard_fsdp_model -> no-op, FSDPCheckpointer -> unused placeholder.
  * torch.Tensor.cuda -> identity while forward_backward runs; model.need_to_synchronize_fsdp_streams = False so the
    official fsdp_synchronize_streams (torch.cuda.synchronize + FSDP stream sharing) does nothing.
  * DinoVisionTransformer.forward_features_list (student called with [global, local], masks [masks, None]) is
    replaced by [forward_features(x, masks=m) for each element]: the official nested path concatenates the two
    batches with an xFormers block-diagonal mask, i.e. attention never crosses samples, and drop path is 0 here, so
    running each element separately is the same computation.
  * iBOTPatchLoss.sinkhorn_knopp_teacher calls dist.all_reduce unconditionally: a single-process gloo group
    (world size 1, init_method file:// in a temporary folder) is initialised; every all_reduce is then an identity.
  * backbones: SSLMetaArch's build_model_from_cfg is replaced by a function returning the backbones built here, the
    way the hub / official builders build them (block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention),
    ffn "mlp", block_chunks 0, init_values 1.0 (LayerScale), no registers, interpolate_offset 0.1, no antialias).
    For ViT-S/14 the study's fork (beneroth13/dinov2, dinov2/train/ssl_meta_arch.py: get_downloaded_dino_interpolated)
    builds the hub model (img_size 518, pos_embed [1, 1370, 384]) and replaces pos_embed by its own
    interpolate_pos_encoding(pos_embed, 16, 16): F.interpolate(grid [1, 384, 37, 37], scale_factor=(16/37, 16/37),
    mode="bicubic") (align_corners False, no antialias; output floor(37 * 16/37) = 16; cls row kept) -> [1, 257, 384].
    fork_interpolate_pos_encoding below reproduces that call exactly.
  * teacher initialisation: prepare_for_distributed_training is not called (it wraps in FSDP); only its
    teacher[k].load_state_dict(student[k].state_dict()) is done.
  * teacher EMA: update_teacher iterates FSDP modules (ms.params); instead its exact arithmetic is applied to the
    plain parameter lists (student/teacher parameters of each module in student.keys() order):
    torch._foreach_mul_(teacher, m); torch._foreach_add_(teacher, student, alpha=1 - m). On torch 1.13 CPU this is,
    bit for bit (checked): t = float32(t * float32(m)); t = fma(float32(1 - m), s, t) with one rounding.
  * gradient clipping: do_train calls FSDP's module.clip_grad_norm_(clip_grad) for each student module (backbone,
    dino_head, ibot_head); here torch.nn.utils.clip_grad_norm_(module.parameters(), clip_grad) (torch 1.13: total =
    ||(||g_p||_2)_p||_2, coef = clip / (total + 1e-6), grads *= min(coef, 1)).
  * KoLeo: the study's fork constructs KoLeoLoss.pdist = nn.PairwiseDistance(2, eps=1e-4) (official: 1e-8); the
    forward's eps (F.normalize eps and log(d + eps)) stays at its default 1e-8 in both. The case's koleo_pdist_eps
    replaces model.koleo_loss.pdist the same way, and koleo_forward_eps is passed with functools.partial when it
    differs from the default. Note torch's pairwise_distance(a, b, eps) = ||a - b + eps||_2 (eps added to every
    component of the difference).
  * drop path rate 0 everywhere (stochastic depth is random; it is tested elsewhere).

Weights (histoflow-init-v1, tools/parity/histoflow_init.py): every backbone state_dict entry gets
init_values(entry, shape) under its own name without prefix (ViT-S: pos_embed at its hub shape [1, 1370, 384], BEFORE
the fork's resize to [1, 257, 384]); every head entry gets init_values("dino_head." + entry) or
init_values("ibot_head." + entry), except last_layer.weight_g = 1 (the official DINOHead init). Loss centres in the
centering case: dino_loss.center = init_values("dino_loss.center", [1, K]), ibot_patch_loss.center =
init_values("ibot_patch_loss.center", [1, 1, K_ibot]). The teacher is a copy of the student.

Inputs: global crops u8 [2B, G, G, 3] = z_i >> 56 of the stream NAME="global_crops" (histoflow_init.input_bytes with
that name), local crops u8 [n_local*B, L, L, 3] from NAME="local_crops"; row r = crop_index * B + sample (the
collate's order); x = (float32(u8) / 255 - mean[c]) / std[c] (ImageNet mean/std, float32), NHWC -> NCHW. The float
crops are stored ("input.global_crops", "input.local_crops"). Masks: random.seed(case seed), then the official
collate_data_and_cast(samples, mask_ratio_tuple=(0.1, 0.5), mask_probability=0.5, n_tokens=(G/14)^2,
mask_generator=MaskingGenerator(input_size=(G/14, G/14), max_num_patches=0.5 * G // 14 * G // 14)) over dummy
samples carrying these crops; its collated_masks ("input.masks", uint8 [2B, N]), masks_weight ("input.masks_weight")
and upperbound / n_masked_patches (metadata "collate") are what forward_backward gets.

Stored tensors per case (float32 unless said; scalars float64 [1]):
  input.global_crops [2B,3,G,G], input.local_crops [nL*B,3,L,L], input.masks uint8 [2B,N], input.masks_weight [M]
  head.student_global_cls [2B,K] (student dino_head on the global cls tokens), head.teacher_global_cls [2B,K]
  (teacher_cls_tokens_after_head, already in the official swapped crop order), head.student_ibot_masked [M,K_ibot]
  (student head on the masked patch tokens, as given to forward_masked), target.dino [2,B,K]
  (teacher_dino_softmaxed_centered_list), target.ibot [M,K_ibot] (masked_teacher_ibot_softmaxed_centered); all
  captured by wrapping the official loss methods, not recomputed.
  term.dino_local, term.dino_global, term.koleo, term.ibot (each as added to the accumulator, weights included),
  term.total (the accumulator that is backpropagated), term.koleo_chunks float64 [2] (the two unweighted KoLeo values)
  center.dino_after [1,K], center.ibot_after [1,1,K_ibot] (centering case: after apply_center_update() after the step)
  teacher_temp, lr, wd, momentum, last_layer_lr: the schedule values used (float64 [1])
  schedule.lr|wd|momentum|teacher_temp|last_layer_lr: float64 [T+3], value of scheduler[it] for it = 0 .. T+2 with
  T = epochs * OFFICIAL_EPOCH_LENGTH (past a scheduler's end: its final value)
  clip.<module>.total_norm, clip.<module>.coef (float64 [1]): clip_grad_norm_'s returned norm and min(coef, 1)
  for every student parameter NAME (model.student.named_parameters(): "backbone.", "dino_head.", "ibot_head."):
    group.NAME float64 [3] = (lr_multiplier, wd_multiplier, is_last_layer) from get_params_groups_with_decay
    grad.NAME (after backward, before clipping), gradnorm.NAME float64 [1] (L2 norm of that gradient, in float64),
    param_after.NAME (after the optimiser step), teacher_after.NAME (after the EMA)
  init.backbone.pos_embed_resized [1,257,384] (ViT-S only, exact): the student pos_embed after the fork's resize.

SIZE RULE (for head.*, target.*, center.*, grad.*, param_after.*, teacher_after.*; input.*, init.*, term.*, group.*,
schedule values and norms are always exact; M = n_masked_patches):
a tensor with n <= 4096 elements is stored exactly (its own shape, float32). A larger one is stored as a
CountSketch, float64 [4096], under the same key, and the key is listed in the metadata "sketched" (JSON list; its
shape is in "sketched_shapes"). With x the float32 tensor flattened row-major (i = 0 .. n-1):
  z_i = histoflow_init.raw_stream("sketch:" + NAME, n)[i]   (histoflow-init-v1 splitmix64 stream of that name)
  bucket_i = z_i & 4095;  sign_i = +1 if (z_i >> 63) == 0 else -1
  sketch[b] = sum over i with bucket_i == b of sign_i * x_i   (float64 accumulation, increasing i)
NAME is the parameter name WITH its prefix for grad/param_after/teacher_after (e.g.
"sketch:backbone.blocks.0.attn.qkv.weight", the same NAME for the three), and the key itself for any other tensor
(e.g. "sketch:target.ibot"). Metadata "sketch_self_check" gives reference values for a small example.

Metadata: format "histoflow-finetune-fixture-v1", case, config (JSON: every hyper-parameter), dinov2_cfg (JSON: the
full cfg handed to SSLMetaArch), collate, param_groups (the fused optimiser groups), dinov2 commit, torch / python /
numpy versions, generation date, shims (JSON list), semantics notes.
"""
import argparse
import contextlib
import copy
import datetime
import functools
import json
import math
import os
import platform
import sys
import tempfile
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import histoflow_init  # noqa: E402
import make_encoder_fixtures as mef  # noqa: E402  (defines helpers only; runs nothing at import)

# float64 tensors are needed here; the shared reader/writer keys its dtype table on this dict
mef._DTYPES.setdefault(np.dtype(np.float64), "F64")

FIXTURE_FORMAT = "histoflow-finetune-fixture-v1"
DINOV2_COMMIT = "b8931f7"
THREADS = 2
SKETCH_BUCKETS = 4096
EXACT_MAX = 4096
IMAGENET_MEAN = mef.IMAGENET_MEAN
IMAGENET_STD = mef.IMAGENET_STD

SHIMS = [
    "XFORMERS_DISABLED=1 (plain PyTorch attention/blocks)",
    "F.scaled_dot_product_attention = plain softmax(q k^T/sqrt(d)) v when torch < 2.0",
    "fake xformers.ops.fmha.BlockDiagonalMask.from_tensor_list -> (bias, cat(dim=1)); bias.split -> per-input "
    "slices of dim 1 (student dino_head is per-token); no xformers cross_entropy -> iBOT fallback lossfunc",
    "stub fvcore.common.checkpoint, omegaconf (PyYAML-backed, only if not installed), dinov2.fsdp (identity "
    "wrapper, get_fsdp_modules -> [module], reshard no-op)",
    "torch.Tensor.cuda -> identity during forward_backward; need_to_synchronize_fsdp_streams = False",
    "DinoVisionTransformer.forward_features_list -> forward_features per element (== block-diagonal nested "
    "path with drop path 0)",
    "single-process gloo group (world size 1, file:// init) for the unconditional dist.all_reduce in "
    "iBOTPatchLoss.sinkhorn_knopp_teacher",
    "SSLMetaArch's build_model_from_cfg -> backbones built like the hub (ViT-S pos_embed resized 37->16 with the "
    "fork's bicubic scale-factor interpolation)",
    "teacher <- student.state_dict() (prepare_for_distributed_training minus FSDP)",
    "update_teacher arithmetic (foreach mul m, add alpha 1-m) over plain parameter lists instead of FSDP ms.params",
    "per-module torch.nn.utils.clip_grad_norm_ instead of FSDP.clip_grad_norm_",
    "KoLeoLoss.pdist = nn.PairwiseDistance(2, eps=koleo_pdist_eps) as in the study's fork",
    "compute_precision.grad_scaler = False (fp32, no ShardedGradScaler)",
]

COMMON = {
    "n_global_crops": 2,
    "student_temp": 0.1,
    "center_momentum": 0.9,
    "sinkhorn_iterations": 3,
    "koleo_loss_weight": 0.1,
    "koleo_pdist_eps": 1e-4,
    "koleo_forward_eps": 1e-8,
    "dino_loss_weight": 1.0,
    "ibot_loss_weight": 1.0,
    "layerwise_decay": 0.9,
    "patch_embed_lr_mult": 0.2,
    "clip_grad": 3.0,
    "adamw_beta1": 0.9,
    "adamw_beta2": 0.999,
    "adamw_eps": 1e-8,
    "scaling_rule": "sqrt_wrt_1024",
    "weight_decay": 0.04,
    "weight_decay_end": 0.2,
    "momentum_teacher": 0.994,
    "final_momentum_teacher": 1.0,
    "warmup_teacher_temp": 0.04,
    "teacher_temp": 0.07,
    "min_lr": 1e-6,
    "freeze_last_layer_epochs": 1,
    "mask_ratio_min_max": [0.1, 0.5],
    "mask_sample_probability": 0.5,
    "drop_path_rate": 0.0,
    "drop_path_uniform": True,
    "layerscale_init": 1.0,
    "patch_size": 14,
    "ffn_layer": "mlp",
    "qkv_bias": True,
    "proj_bias": True,
    "ffn_bias": True,
    "num_register_tokens": 0,
    "interpolate_offset": 0.1,
    "interpolate_antialias": False,
    "layernorm_eps": 1e-6,
    "dino_head_use_bn": False,
    "dino_head_mlp_bias": True,
}

TINY_BACKBONE = {"arch": "tiny", "img_size": 56, "embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 4}
VITS_BACKBONE = {"arch": "vit_small", "img_size": 518, "embed_dim": 384, "depth": 12, "num_heads": 6, "mlp_ratio": 4,
                 "pos_embed_resize": "bicubic-scale-factor", "pos_embed_trained_grid": 37, "pos_embed_grid": 16}

CASES = {
    "ssl_tiny_centering": dict(
        COMMON, **TINY_BACKBONE, global_size=56, local_size=28, batch=4, n_local=2,
        dino_head_n_prototypes=256, dino_head_hidden_dim=128, dino_head_bottleneck_dim=32, dino_head_nlayers=3,
        ibot_separate_head=False, centering="centering", base_lr=1e-2, official_epoch_length=10, epochs=3,
        warmup_epochs=1, warmup_teacher_temp_epochs=2, iteration=15, seed=1),
    "ssl_tiny_sinkhorn_separate": dict(
        COMMON, **TINY_BACKBONE, global_size=56, local_size=28, batch=4, n_local=2,
        dino_head_n_prototypes=256, dino_head_hidden_dim=128, dino_head_bottleneck_dim=32, dino_head_nlayers=3,
        ibot_separate_head=True, ibot_head_n_prototypes=128, ibot_head_hidden_dim=96, ibot_head_bottleneck_dim=24,
        ibot_head_nlayers=3, centering="sinkhorn_knopp", base_lr=1e-2, official_epoch_length=10, epochs=3,
        warmup_epochs=1, warmup_teacher_temp_epochs=2, iteration=4, seed=2),
    "ssl_vits14": dict(
        COMMON, **VITS_BACKBONE, global_size=224, local_size=98, batch=2, n_local=8,
        dino_head_n_prototypes=65536, dino_head_hidden_dim=2048, dino_head_bottleneck_dim=256, dino_head_nlayers=3,
        ibot_separate_head=False, centering="sinkhorn_knopp", base_lr=2e-4, official_epoch_length=100, epochs=100,
        warmup_epochs=10, warmup_teacher_temp_epochs=30, iteration=1500, seed=3),
}

# --------------------------------------------------------------------------------------------------------------
# config object (attribute and item access, like the OmegaConf DictConfig the official code gets)


class Cfg(dict):
    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None

    def __setattr__(self, k, v):
        self[k] = v

    def __deepcopy__(self, memo):
        return Cfg.wrap(copy.deepcopy(Cfg.unwrap(self), memo))

    @staticmethod
    def wrap(x):
        if isinstance(x, dict):
            return Cfg({k: Cfg.wrap(v) for k, v in x.items()})
        if isinstance(x, (list, tuple)):
            return [Cfg.wrap(v) for v in x]
        return x

    @staticmethod
    def unwrap(x):
        if isinstance(x, dict):
            return {k: Cfg.unwrap(v) for k, v in x.items()}
        if isinstance(x, list):
            return [Cfg.unwrap(v) for v in x]
        return x


def _merge(a, b):
    out = Cfg.wrap(Cfg.unwrap(a))
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = Cfg.wrap(Cfg.unwrap(v))
    return out


# --------------------------------------------------------------------------------------------------------------
# shims


class _FakeBlockDiagonalMask:
    """What forward_backward needs of xformers.ops.fmha.BlockDiagonalMask: concatenate [1, n_i, D] inputs along
    dim 1 and split a per-token result back."""

    def __init__(self, lengths):
        self.lengths = list(lengths)

    @classmethod
    def from_tensor_list(cls, tensors):
        for t in tensors:
            assert t.shape[0] == 1, "only the [1, n_i, D] form used by forward_backward is supported"
        return cls([t.shape[1] for t in tensors]), __import__("torch").cat(list(tensors), dim=1)

    def split(self, tensor):
        assert tensor.shape[1] == sum(self.lengths)
        out, o = [], 0
        for n in self.lengths:
            out.append(tensor[:, o : o + n])
            o += n
        return out


class _Placeholder:
    def __init__(self, *a, **k):
        raise RuntimeError("placeholder from the histoflow shim; not usable here")


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    m.__histoflow_shim__ = True
    sys.modules[name] = m
    return m


def _install_stub_modules():
    # xformers: only the fmha mask used by SSLMetaArch.forward_backward. No cross_entropy / memory_efficient_attention
    # (XFORMERS_DISABLED=1 keeps layers from asking; iBOT's `from xformers.ops import cross_entropy` falls back).
    fmha = types.SimpleNamespace(BlockDiagonalMask=_FakeBlockDiagonalMask)
    xf = _module("xformers")
    xf.ops = _module("xformers.ops", fmha=fmha)
    fv = _module("fvcore")
    fv.common = _module("fvcore.common")
    fv.common.checkpoint = _module("fvcore.common.checkpoint", Checkpointer=_Placeholder,
                                   PeriodicCheckpointer=_Placeholder)
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        import yaml

        class OmegaConf:
            @staticmethod
            def load(path):
                with open(path) as f:
                    return Cfg.wrap(yaml.safe_load(f))

            @staticmethod
            def create(x=None):
                return Cfg.wrap(Cfg.unwrap(x or {}))

            @staticmethod
            def merge(*cfgs):
                out = Cfg()
                for c in cfgs:
                    out = _merge(out, c)
                return out

            @staticmethod
            def to_yaml(cfg):
                return yaml.safe_dump(Cfg.unwrap(cfg))

            @staticmethod
            def from_cli(opts=None):
                assert not opts
                return Cfg()

        _module("omegaconf", OmegaConf=OmegaConf)


def _install_fsdp_stub():
    _module(
        "dinov2.fsdp",
        get_fsdp_wrapper=lambda model_cfg, modules_to_wrap=set(): (lambda m: m),
        ShardedGradScaler=_Placeholder,
        get_fsdp_modules=lambda x: [x],
        reshard_fsdp_model=lambda x: None,
        FSDPCheckpointer=_Placeholder,
        is_fsdp=lambda x: False,
        free_if_fsdp=lambda x: None,
    )


_STATE = {}


def install_shims(dinov2_src, threads=THREADS):
    """Installs every shim, imports the official modules and returns them in a namespace (idempotent)."""
    if _STATE:
        _STATE["torch"].set_num_threads(threads)
        return _STATE["ns"]
    src = os.path.abspath(dinov2_src)
    if not os.path.isfile(os.path.join(src, "dinov2", "train", "ssl_meta_arch.py")):
        sys.exit(f"--dinov2-src {src}: no dinov2/train/ssl_meta_arch.py there")
    import warnings

    warnings.filterwarnings("ignore", message="Default upsampling behavior")
    torch, sdpa_shimmed = mef.import_dinov2(src)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    _install_stub_modules()
    import dinov2  # noqa: F401

    _install_fsdp_stub()
    import torch.distributed as dist

    import dinov2.train.ssl_meta_arch as sma
    import dinov2.train.train as dtrain
    from dinov2.data import collate_data_and_cast, MaskingGenerator
    from dinov2.configs import dinov2_default_config
    from dinov2.models import vision_transformer as vits
    from dinov2.utils.config import apply_scaling_rules_to_cfg
    from dinov2.utils.param_groups import get_params_groups_with_decay
    from dinov2.utils.utils import CosineScheduler

    def forward_features_list(self, x_list, masks_list):
        # == the official nested (block-diagonal attention) path when drop path is 0
        return [self.forward_features(x, masks=m) for x, m in zip(x_list, masks_list)]

    vits.DinoVisionTransformer.forward_features_list = forward_features_list

    if not dist.is_initialized():
        tmpdir = tempfile.mkdtemp(prefix="histoflow_gloo_")
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dist.init_process_group("gloo", init_method="file://" + os.path.join(tmpdir, "store"), rank=0, world_size=1)

    ns = types.SimpleNamespace(torch=torch, dist=dist, sma=sma, dtrain=dtrain, vits=vits,
                               collate_data_and_cast=collate_data_and_cast, MaskingGenerator=MaskingGenerator,
                               default_cfg=dinov2_default_config, apply_scaling_rules_to_cfg=apply_scaling_rules_to_cfg,
                               get_params_groups_with_decay=get_params_groups_with_decay,
                               CosineScheduler=CosineScheduler, sdpa_shimmed=sdpa_shimmed)
    _STATE.update(torch=torch, ns=ns)
    return ns


@contextlib.contextmanager
def cuda_is_identity(torch):
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


# --------------------------------------------------------------------------------------------------------------
# model construction


def fork_interpolate_pos_encoding(torch, x, w, h):
    """The study's fork (beneroth13/dinov2 dinov2/train/ssl_meta_arch.py, interpolate_pos_encoding(x, w, h)):
    bicubic F.interpolate with scale_factor (w / M, h / M), class token kept."""
    import torch.nn.functional as nnf

    N = x.shape[1] - 1
    dim = x.shape[-1]
    w0 = w / int(math.sqrt(N))
    h0 = h / int(math.sqrt(N))
    patch_pos_embed = nnf.interpolate(
        x[:, 1:].reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
        scale_factor=(w0, h0),
        mode="bicubic",
    )
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((x[:, :1], patch_pos_embed), dim=1)


def build_backbone(ns, case, init=True):
    torch, vits = ns.torch, ns.vits
    common = dict(patch_size=case["patch_size"], init_values=case["layerscale_init"], ffn_layer=case["ffn_layer"],
                  block_chunks=0, num_register_tokens=case["num_register_tokens"],
                  interpolate_antialias=case["interpolate_antialias"], interpolate_offset=case["interpolate_offset"],
                  qkv_bias=case["qkv_bias"], proj_bias=case["proj_bias"], ffn_bias=case["ffn_bias"],
                  drop_path_rate=case["drop_path_rate"], drop_path_uniform=case["drop_path_uniform"])
    if case["arch"] == "vit_small":
        model = vits.vit_small(img_size=case["img_size"], **common)
    elif case["arch"] == "tiny":
        model = vits.DinoVisionTransformer(
            img_size=case["img_size"], embed_dim=case["embed_dim"], depth=case["depth"], num_heads=case["num_heads"],
            mlp_ratio=case["mlp_ratio"], block_fn=functools.partial(vits.Block, attn_class=vits.MemEffAttention),
            **common)
    else:
        raise ValueError(case["arch"])
    if init:
        sd = model.state_dict()
        model.load_state_dict(histoflow_init.init_state_dict(sd), strict=True)
    if case.get("pos_embed_resize"):
        assert case["pos_embed_resize"] == "bicubic-scale-factor"
        g = case["pos_embed_grid"]
        assert model.pos_embed.shape[1] == 1 + case["pos_embed_trained_grid"] ** 2
        with torch.no_grad():
            resized = fork_interpolate_pos_encoding(torch, model.pos_embed.detach(), g, g)
        assert tuple(resized.shape) == (1, 1 + g * g, model.embed_dim)
        model.pos_embed = torch.nn.Parameter(resized.detach().clone())
    return model


def make_cfg(ns, case, batch=None):
    c = case
    cfg = copy.deepcopy(Cfg.wrap(Cfg.unwrap(ns.default_cfg)))
    cfg.compute_precision.grad_scaler = False
    cfg.dino.update(loss_weight=c["dino_loss_weight"], head_n_prototypes=c["dino_head_n_prototypes"],
                    head_bottleneck_dim=c["dino_head_bottleneck_dim"], head_nlayers=c["dino_head_nlayers"],
                    head_hidden_dim=c["dino_head_hidden_dim"], koleo_loss_weight=c["koleo_loss_weight"])
    cfg.ibot.update(loss_weight=c["ibot_loss_weight"], mask_sample_probability=c["mask_sample_probability"],
                    mask_ratio_min_max=list(c["mask_ratio_min_max"]), separate_head=c["ibot_separate_head"])
    if c["ibot_separate_head"]:
        cfg.ibot.update(head_n_prototypes=c["ibot_head_n_prototypes"],
                        head_bottleneck_dim=c["ibot_head_bottleneck_dim"],
                        head_nlayers=c["ibot_head_nlayers"], head_hidden_dim=c["ibot_head_hidden_dim"])
    cfg.train.update(batch_size_per_gpu=batch or c["batch"], OFFICIAL_EPOCH_LENGTH=c["official_epoch_length"],
                     centering=c["centering"], seed=c.get("seed", 0))
    cfg.student.update(arch=c["arch"], patch_size=c["patch_size"], drop_path_rate=c["drop_path_rate"],
                       layerscale=c["layerscale_init"], drop_path_uniform=c["drop_path_uniform"],
                       ffn_layer=c["ffn_layer"], block_chunks=0, qkv_bias=c["qkv_bias"], proj_bias=c["proj_bias"],
                       ffn_bias=c["ffn_bias"], num_register_tokens=c["num_register_tokens"],
                       interpolate_antialias=c["interpolate_antialias"], interpolate_offset=c["interpolate_offset"])
    cfg.teacher.update(momentum_teacher=c["momentum_teacher"], final_momentum_teacher=c["final_momentum_teacher"],
                       warmup_teacher_temp=c["warmup_teacher_temp"], teacher_temp=c["teacher_temp"],
                       warmup_teacher_temp_epochs=c["warmup_teacher_temp_epochs"])
    cfg.optim.update(epochs=c["epochs"], weight_decay=c["weight_decay"], weight_decay_end=c["weight_decay_end"],
                     base_lr=c["base_lr"], lr=0.0, warmup_epochs=c["warmup_epochs"], min_lr=c["min_lr"],
                     clip_grad=c["clip_grad"], freeze_last_layer_epochs=c["freeze_last_layer_epochs"],
                     scaling_rule=c["scaling_rule"], patch_embed_lr_mult=c["patch_embed_lr_mult"],
                     layerwise_decay=c["layerwise_decay"], adamw_beta1=c["adamw_beta1"], adamw_beta2=c["adamw_beta2"])
    cfg.crops.update(local_crops_number=c["n_local"], global_crops_size=c["global_size"],
                     local_crops_size=c["local_size"])
    ns.apply_scaling_rules_to_cfg(cfg)  # official: lr = base_lr * sqrt(batch * world / 1024)
    return cfg


def build_model(ns, case, cfg, init=True):
    """SSLMetaArch(cfg) with the backbones built here; heads histoflow-initialised; teacher <- student."""
    torch = ns.torch
    student_bb = build_backbone(ns, case, init=init)
    teacher_bb = build_backbone(ns, case, init=init)
    saved = ns.sma.build_model_from_cfg
    ns.sma.build_model_from_cfg = lambda cfg_, only_teacher=False: (student_bb, teacher_bb, student_bb.embed_dim)
    try:
        model = ns.sma.SSLMetaArch(cfg)
    finally:
        ns.sma.build_model_from_cfg = saved
    if init:
        for k in model.student.keys():
            if k == "backbone":
                continue
            head = model.student[k]
            sd = head.state_dict()
            new = {}
            for name, t in sd.items():
                if name == "last_layer.weight_g":
                    new[name] = torch.ones_like(t)
                else:
                    new[name] = torch.from_numpy(histoflow_init.init_values(f"{k}.{name}", tuple(t.shape)))
            head.load_state_dict(new, strict=True)
    # prepare_for_distributed_training, minus the FSDP wrapping
    for k in model.student.keys():
        model.teacher[k].load_state_dict(model.student[k].state_dict())
    if case["koleo_loss_weight"] > 0:
        model.koleo_loss.pdist = torch.nn.PairwiseDistance(2, eps=case["koleo_pdist_eps"])
        if case["koleo_forward_eps"] != 1e-8:
            model.koleo_loss.forward = functools.partial(model.koleo_loss.forward, eps=case["koleo_forward_eps"])
    model.need_to_synchronize_fsdp_streams = False
    model.train()
    return model


def ema_update(torch, model, m):
    """SSLMetaArch.update_teacher's arithmetic without FSDP."""
    student_param_list, teacher_param_list = [], []
    with torch.no_grad():
        for k in model.student.keys():
            student_param_list += list(model.student[k].parameters())
            teacher_param_list += list(model.teacher[k].parameters())
        torch._foreach_mul_(teacher_param_list, m)
        torch._foreach_add_(teacher_param_list, student_param_list, alpha=1 - m)


def clip_student(torch, model, clip):
    out = {}
    for k, v in model.student.items():
        total = torch.nn.utils.clip_grad_norm_(v.parameters(), clip)
        out[k] = float(total)
    return out


def preprocess(torch, u8):
    x = torch.from_numpy(u8.copy()).to(torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
    x = (x - mean) / std
    return x.permute(0, 3, 1, 2).contiguous()


def make_batch(ns, case, cfg, global_crops, local_crops, seed):
    """Runs the official collate over dummy samples carrying the given crops (rows crop_index * B + sample)."""
    import random

    torch = ns.torch
    B, n_local, G = cfg.train.batch_size_per_gpu, cfg.crops.local_crops_number, cfg.crops.global_crops_size
    assert global_crops.shape[0] == 2 * B and local_crops.shape[0] == n_local * B
    samples = [({"global_crops": [global_crops[i * B + s] for i in range(2)],
                 "local_crops": [local_crops[j * B + s] for j in range(n_local)]}, ()) for s in range(B)]
    img_size, patch_size = G, cfg.student.patch_size
    n_tokens = (img_size // patch_size) ** 2
    mask_generator = ns.MaskingGenerator(
        input_size=(img_size // patch_size, img_size // patch_size),
        max_num_patches=0.5 * img_size // patch_size * img_size // patch_size,  # as in train.py (left-to-right)
    )
    random.seed(seed)
    data = ns.collate_data_and_cast(samples, mask_ratio_tuple=cfg.ibot.mask_ratio_min_max,
                                    mask_probability=cfg.ibot.mask_sample_probability, dtype=torch.float32,
                                    n_tokens=n_tokens, mask_generator=mask_generator)
    assert torch.equal(data["collated_global_crops"], global_crops)
    assert torch.equal(data["collated_local_crops"], local_crops)
    return data, mask_generator


# --------------------------------------------------------------------------------------------------------------
# sketch


def count_sketch(name, x):
    """CountSketch of x (float32 values, flattened row-major) under stream "sketch:" + NAME (see docstring)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1).astype(np.float64)
    z = histoflow_init.raw_stream("sketch:" + name, x.size)
    bucket = (z & np.uint64(SKETCH_BUCKETS - 1)).astype(np.int64)
    sign = np.where((z >> np.uint64(63)) == np.uint64(0), 1.0, -1.0)
    return np.bincount(bucket, weights=sign * x, minlength=SKETCH_BUCKETS).astype(np.float64)


def count_sketch_scalar(name, x):
    """Pure-Python reference of count_sketch (slow; self-check only)."""
    x = [float(v) for v in np.asarray(x, dtype=np.float32).reshape(-1)]
    out = [0.0] * SKETCH_BUCKETS
    for i, v in enumerate(x):
        z = histoflow_init._scalar_z("sketch:" + name, i)
        out[z & (SKETCH_BUCKETS - 1)] += v if (z >> 63) == 0 else -v
    return np.array(out)


def sketch_self_check():
    n = 5000
    x = ((np.arange(n) % 7) - 3).astype(np.float32)
    s = count_sketch("selfcheck", x)
    assert np.array_equal(s, count_sketch_scalar("selfcheck", x))
    z = histoflow_init.raw_stream("sketch:selfcheck", 3)
    return {"NAME": "selfcheck", "n": n, "x_i": "float32((i % 7) - 3)",
            "z_0_2": [f"0x{int(v):016x}" for v in z], "sketch_0_7": [float(v) for v in s[:8]],
            "sketch_sum": float(s.sum()), "sketch_abs_sum": float(np.abs(s).sum())}


class Writer:
    def __init__(self):
        self.tensors = []
        self.sketched = []
        self.sketched_shapes = {}

    def exact(self, key, arr):
        self.tensors.append((key, np.ascontiguousarray(arr)))

    def scalar(self, key, v):
        self.tensors.append((key, np.array([float(v)], dtype=np.float64)))

    def f64(self, key, arr):
        self.tensors.append((key, np.ascontiguousarray(np.asarray(arr, dtype=np.float64))))

    def sized(self, key, arr, sketch_name=None):
        a = np.asarray(arr, dtype=np.float32)
        if a.size <= EXACT_MAX:
            self.tensors.append((key, np.ascontiguousarray(a)))
        else:
            self.tensors.append((key, count_sketch(sketch_name or key, a)))
            self.sketched.append(key)
            self.sketched_shapes[key] = [int(s) for s in a.shape]


# --------------------------------------------------------------------------------------------------------------
# one case


def np32(t):
    return t.detach().cpu().to(dtype=__import__("torch").float32).numpy().copy()


def run_case(ns, name, case, args):
    torch = ns.torch
    torch.manual_seed(0)
    cfg = make_cfg(ns, case)
    B, nL, G, L = case["batch"], case["n_local"], case["global_size"], case["local_size"]

    g_u8 = histoflow_init.input_bytes(2 * B, G, G, name="global_crops")
    l_u8 = histoflow_init.input_bytes(nL * B, L, L, name="local_crops")
    global_crops, local_crops = preprocess(torch, g_u8), preprocess(torch, l_u8)
    data, mask_generator = make_batch(ns, case, cfg, global_crops, local_crops, case["seed"])

    model = build_model(ns, case, cfg)
    # hyper-parameters the official constructors hard-code (recorded in the config): make sure they are the ones used
    assert model.dino_loss.student_temp == case["student_temp"] == model.ibot_patch_loss.student_temp
    assert model.dino_loss.center_momentum == case["center_momentum"] == model.ibot_patch_loss.center_momentum
    if case["centering"] == "centering":
        with torch.no_grad():
            model.dino_loss.center = torch.from_numpy(
                histoflow_init.init_values("dino_loss.center", tuple(model.dino_loss.center.shape)))
            model.ibot_patch_loss.center = torch.from_numpy(
                histoflow_init.init_values("ibot_patch_loss.center", tuple(model.ibot_patch_loss.center.shape)))

    optimizer = ns.dtrain.build_optimizer(cfg, model.get_params_groups())
    scheds = ns.dtrain.build_schedulers(cfg)
    sched_names = ["lr", "wd", "momentum", "teacher_temp", "last_layer_lr"]
    it = case["iteration"]
    lr, wd, mom, teacher_temp, last_layer_lr = (float(s[it]) for s in scheds)
    total_iters = cfg.optim.epochs * cfg.train.OFFICIAL_EPOCH_LENGTH

    # ---- capture (wrapping the official loss methods; their results are passed through untouched)
    cap = {"dino_fwd": [], "teacher_dino": [], "ibot_masked": [], "koleo": [], "total": []}

    def wrap(obj, meth, key):
        orig = getattr(obj, meth)

        def w(*a, **k):
            out = orig(*a, **k)
            cap[key].append((a, k, out))
            return out

        setattr(obj, meth, w)

    wrap(model.dino_loss, "forward", "dino_fwd")
    wrap(model.dino_loss, "softmax_center_teacher" if case["centering"] == "centering" else "sinkhorn_knopp_teacher",
         "teacher_dino")
    wrap(model.ibot_patch_loss, "forward_masked", "ibot_masked")
    wrap(model.koleo_loss, "forward", "koleo")
    wrap(model, "backprop_loss", "total")

    # ---- the do_train loop body
    t0 = time.time()
    ns.dtrain.apply_optim_scheduler(optimizer, lr, wd, last_layer_lr)
    optimizer.zero_grad(set_to_none=True)
    with cuda_is_identity(torch):
        loss_dict = model.forward_backward(data, teacher_temp=teacher_temp)
    named = list(model.student.named_parameters())
    grads = {}
    for pname, p in named:
        assert p.grad is not None, f"no gradient for {pname}"
        grads[pname] = p.grad.detach().clone()
    clip_norms = clip_student(torch, model, cfg.optim.clip_grad)
    optimizer.step()
    ema_update(torch, model, mom)
    if case["centering"] == "centering":
        model.dino_loss.apply_center_update()
        model.ibot_patch_loss.apply_center_update()
    step_seconds = time.time() - t0

    # ---- collect
    w = Writer()
    w.exact("input.global_crops", global_crops.numpy())
    w.exact("input.local_crops", local_crops.numpy())
    masks = data["collated_masks"]
    w.exact("input.masks", masks.numpy().astype(np.uint8))
    w.exact("input.masks_weight", data["masks_weight"].numpy().astype(np.float32))
    n_masked = int(data["mask_indices_list"].shape[0])

    assert len(cap["dino_fwd"]) == 2 and len(cap["teacher_dino"]) == 1 and len(cap["ibot_masked"]) == 1
    assert len(cap["koleo"]) == 2 and len(cap["total"]) == 1
    (la, lk, _), (ga, gk, _) = cap["dino_fwd"]
    student_global = gk["student_output_list"][0]
    target_dino = lk["teacher_out_softmaxed_centered_list"]
    teacher_cls_after_head = cap["teacher_dino"][0][0][0]
    ia, ik, _ = cap["ibot_masked"][0]
    student_ibot, target_ibot = ia[0], ia[1]
    K = case["dino_head_n_prototypes"]
    K_ibot = case["ibot_head_n_prototypes"] if case["ibot_separate_head"] else K
    assert tuple(student_global.shape) == (2 * B, K) and tuple(teacher_cls_after_head.shape) == (2 * B, K)
    assert tuple(target_dino.shape) == (2, B, K) and tuple(target_ibot.shape) == (n_masked, K_ibot)
    assert tuple(student_ibot.shape) == (n_masked, K_ibot)
    w.sized("head.student_global_cls", np32(student_global))
    w.sized("head.teacher_global_cls", np32(teacher_cls_after_head))
    w.sized("head.student_ibot_masked", np32(student_ibot))
    w.sized("target.dino", np32(target_dino))
    w.sized("target.ibot", np32(target_ibot))

    terms = {
        "dino_local": case["dino_loss_weight"] * float(loss_dict["dino_local_crops_loss"]),
        "dino_global": case["dino_loss_weight"] * float(loss_dict["dino_global_crops_loss"]),
        "koleo": float(loss_dict["koleo_loss"]) * 2,  # loss_dict holds koleo / loss_scales (= 2); exact in fp32
        "ibot": case["ibot_loss_weight"] * float(loss_dict["ibot_loss"]) * 2,  # loss_dict holds ibot / 2
        "total": float(cap["total"][0][0][0]),
    }
    koleo_chunks = [float(c[2]) for c in cap["koleo"]]
    assert abs(terms["koleo"] - case["koleo_loss_weight"] * sum(koleo_chunks)) < 1e-6 * max(1, abs(terms["koleo"]))
    s = terms["dino_local"] + terms["dino_global"] + terms["koleo"] + terms["ibot"]
    assert abs(s - terms["total"]) < 1e-5 * max(1.0, abs(s)), (s, terms)
    for k, v in terms.items():
        w.scalar("term." + k, v)
    w.f64("term.koleo_chunks", koleo_chunks)

    if case["centering"] == "centering":
        w.sized("center.dino_after", np32(model.dino_loss.center))
        w.sized("center.ibot_after", np32(model.ibot_patch_loss.center))

    for k, v in (("teacher_temp", teacher_temp), ("lr", lr), ("wd", wd), ("momentum", mom),
                 ("last_layer_lr", last_layer_lr)):
        w.scalar(k, v)
    for sname, sch in zip(sched_names, scheds):
        w.f64("schedule." + sname, [float(sch[i]) for i in range(total_iters + 3)])

    for k, v in clip_norms.items():
        w.scalar(f"clip.{k}.total_norm", v)
        w.scalar(f"clip.{k}.coef", min(cfg.optim.clip_grad / (v + 1e-6), 1.0))

    # per-parameter groups from the official function, per student module
    groups = {}
    for k, m in model.student.items():
        for d in ns.get_params_groups_with_decay(model=m, lr_decay_rate=cfg.optim.layerwise_decay,
                                                 patch_embed_lr_mult=cfg.optim.patch_embed_lr_mult):
            groups[f"{k}.{d['name']}"] = (float(d["lr_multiplier"]), float(d["wd_multiplier"]),
                                          float(bool(d["is_last_layer"])))
    assert set(groups) == {n for n, _ in named}
    pid = {id(p): n for n, p in named}
    fused = []
    for g in optimizer.param_groups:
        names = [pid[id(p)] for p in g["params"]]
        for n in names:
            assert groups[n] == (g["lr_multiplier"], g["wd_multiplier"], float(bool(g["is_last_layer"]))), n
        fused.append({"lr_multiplier": g["lr_multiplier"], "wd_multiplier": g["wd_multiplier"],
                      "is_last_layer": bool(g["is_last_layer"]), "lr": g["lr"], "weight_decay": g["weight_decay"],
                      "eps": g["eps"], "betas": list(g["betas"]), "foreach": g.get("foreach"), "params": names})

    teacher_named = dict(model.teacher.named_parameters())
    zero_grads = []
    gradnorms = {}
    for pname, p in named:
        w.f64("group." + pname, groups[pname])
        gnp = grads[pname].numpy()
        if not np.any(gnp):
            zero_grads.append(pname)
        w.sized("grad." + pname, gnp, pname)
        gradnorms[pname] = float(np.sqrt(np.sum(gnp.astype(np.float64) ** 2)))
        w.scalar("gradnorm." + pname, gradnorms[pname])
        w.sized("param_after." + pname, np32(p), pname)
        w.sized("teacher_after." + pname, np32(teacher_named[pname]), pname)
    if case.get("pos_embed_resize"):
        w.exact("init.backbone.pos_embed_resized", build_backbone(ns, case).pos_embed.detach().numpy())
    # pos-embed resize cross-check with the numpy bicubic matrix of make_encoder_fixtures (diagnostic)
    pos_check = None
    if case.get("pos_embed_resize"):
        M, g = case["pos_embed_trained_grid"], case["pos_embed_grid"]
        pe = histoflow_init.init_values("pos_embed", (1, 1 + M * M, case["embed_dim"])).astype(np.float64)[0]
        r = mef.interp_matrix_bicubic(M, g, g / M)
        grid = np.einsum("ah,bw,hwd->abd", r, r, pe[1:].reshape(M, M, -1)).reshape(g * g, -1)
        ref = np.concatenate([pe[:1], grid], 0)[None]
        pos_check = float(np.abs(ref - build_backbone(ns, case).pos_embed.detach().numpy()).max())
        assert pos_check < 1e-5, pos_check

    upperbound = int(data["upperbound"])
    collate_meta = {
        "upperbound": upperbound, "n_masked_patches": n_masked, "n_tokens": int(masks.shape[1]),
        "n_samples_masked": int(2 * B * cfg.ibot.mask_sample_probability),
        "masked_per_row": [int(v) for v in masks.sum(1)],
        "mask_generator": {"height": mask_generator.height, "width": mask_generator.width,
                           "min_num_patches": mask_generator.min_num_patches,
                           "max_num_patches": mask_generator.max_num_patches,
                           "log_aspect_ratio": list(mask_generator.log_aspect_ratio)},
        "mask_indices_list": "nonzero of input.masks flattened row-major (row = crop_index * B + sample)",
        "masks_weight": "per masked token (row-major order): 1 / (number of masked tokens of its row)",
    }
    config = dict(case)
    config.update({
        "case": name, "n_global_crops": 2, "lr_scaled": cfg.optim.lr, "total_iters": total_iters,
        "schedule_values": {"lr": lr, "wd": wd, "momentum": mom, "teacher_temp": teacher_temp,
                            "last_layer_lr": last_layer_lr},
        "schedulers": "dinov2.train.train.build_schedulers(cfg) (official, called directly)",
        "optimizer": "dinov2.train.train.build_optimizer: torch.optim.AdamW(model.get_params_groups(), betas); "
                     "eps 1e-8 (AdamW default), amsgrad False, foreach True (set by get_maybe_fused_params...), "
                     "fresh state: this is AdamW step 1",
        "ibot_head_n_prototypes_effective": K_ibot,
        "embed_dim": model.embed_dim, "n_tokens_global": (G // case["patch_size"]) ** 2,
        "n_tokens_local": (L // case["patch_size"]) ** 2,
    })
    meta = {
        "format": FIXTURE_FORMAT,
        "case": name,
        "config": json.dumps(config, sort_keys=True),
        "dinov2_cfg": json.dumps(Cfg.unwrap(cfg), sort_keys=True),
        "collate": json.dumps(collate_meta),
        "param_groups": json.dumps(fused),
        "param_names": json.dumps([n for n, _ in named]),
        "param_shapes": json.dumps({n: list(p.shape) for n, p in named}),
        "init": histoflow_init.SCHEME,
        "init_rule": "backbone entries: init_values(entry) without prefix (ViT-S pos_embed at [1,1370,384] before "
                     "the resize); heads: init_values('dino_head.'+entry) / init_values('ibot_head.'+entry), "
                     "last_layer.weight_g = 1; centering case: centers init_values('dino_loss.center', [1,K]), "
                     "init_values('ibot_patch_loss.center', [1,1,K_ibot]); teacher = copy of student",
        "input_generator": f"{histoflow_init.SCHEME}: u8 = z_i >> 56 of NAME 'global_crops' over [2B,G,G,3] and "
                           f"'local_crops' over [nL*B,L,L,3], row = crop_index*B + sample",
        "preprocessing": mef.PREPROCESSING,
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "sketched": json.dumps(w.sketched),
        "sketched_shapes": json.dumps(w.sketched_shapes),
        "sketch_rule": "n <= 4096: exact float32; else float64[4096] CountSketch: z_i = raw_stream('sketch:'+NAME, n), "
                       "bucket = z & 4095, sign = +1 if z >> 63 == 0 else -1, sketch[b] = sum sign_i x_i (float64, "
                       "increasing i); NAME = parameter name with prefix for grad/param_after/teacher_after, else "
                       "the key",
        "sketch_self_check": json.dumps(sketch_self_check()),
        "pos_embed_resize": ("bicubic-scale-factor: fork interpolate_pos_encoding(pos_embed, 16, 16) = "
                             "F.interpolate(grid [1,D,37,37], scale_factor=(16/37,16/37), mode='bicubic', "
                             "align_corners=False, antialias=False); cls row kept; trained grid 37 -> 16"
                             if case.get("pos_embed_resize") else "none"),
        "pos_embed_resize_numpy_max_abs_err": "n/a" if pos_check is None else f"{pos_check:.3g}",
        "semantics": json.dumps({
            "crop_order": "global/local crops are crop-index major: row = crop_index * B + sample",
            "teacher_cls_order": "teacher cls tokens are chunked in 2 and concatenated swapped (crop 1 rows first), "
                                 "so student global crop 0 is matched with teacher crop 1 and vice versa",
            "dino_local": "sum over local crops s and teacher crops t of -mean_b sum_k t*log_softmax(s/0.1), "
                          "divided by (n_global*(n_global-1) + n_global*n_local)",
            "dino_global": "student global [2B,K] vs flattened target [2B,K] (swapped order), * 2 / same divisor",
            "koleo": "koleo_loss_weight * sum over the 2 global crops (chunks of B student backbone cls tokens "
                     "x_norm_clstoken, before the head) of KoLeo; pdist eps added to every component",
            "ibot": "forward_masked: -sum_m masks_weight_m * sum_k t*log_softmax(s/0.1) / (2B), times 2 * 1/2",
            "upperbound": "only the size of the zero-padded buffers fed to the heads; rows >= n_masked are "
                          "sliced away before any loss, so it has no effect on the numbers",
            "sinkhorn_ibot_B": "iBOT Sinkhorn uses B = n_masked_patches (all-reduced), K = K_ibot, 3 iterations",
            "centering": "softmax((x - center)/teacher_temp); the centre update (momentum 0.9 with the batch mean of "
                         "the teacher head outputs; iBOT: mean over all masked tokens) is only applied at the next "
                         "softmax_center_teacher call; center.*_after are after apply_center_update()",
            "last_layer_freeze": "last_layer_lr schedule is 0 for the first freeze_last_layer_epochs epochs; "
                                 "gradients are still computed and clipped together with the rest",
            "ema": "teacher = float32(teacher * float32(m)), then fma(float32(1 - m), student, teacher) rounded once "
                   "(torch 1.13 CPU foreach mul_ then add_ with alpha)",
            "clip": "per student module: total = ||g||_2 over its params, coef = clip/(total+1e-6), clamped to 1",
            "adamw": "torch 1.13 _multi_tensor_adamw, step t = 1 (fresh state), per group lr = sched * lr_multiplier "
                     "(last layer: last_layer_lr * lr_multiplier), weight_decay = wd * wd_multiplier: p *= 1 - lr*wd; "
                     "m = 0.9 m + 0.1 g; v = 0.999 v + 0.001 g*g; denom = sqrt(v) / sqrt(1 - 0.999^t) + 1e-8; "
                     "p += -(lr / (1 - 0.9^t)) * m / denom (g = clipped gradient)",
        }),
        "dinov2_commit": args.dinov2_commit,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "torch_threads": str(THREADS),
        "dtype": "float32",
        "sdpa": "plain softmax(q k^T / sqrt(head_dim)) v shim (torch < 2.0)" if ns.sdpa_shimmed else "torch",
        "shims": json.dumps(SHIMS),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": "tools/parity/make_finetune_fixtures.py",
    }
    info = {"terms": terms, "step_seconds": step_seconds, "zero_grads": zero_grads, "n_masked": n_masked,
            "upperbound": upperbound, "schedule": config["schedule_values"], "clip": clip_norms,
            "koleo_chunks": koleo_chunks, "model": model, "grads": grads}
    return w, meta, info


def check_file(path, w, meta, info, name, case):
    back, back_meta = mef.read_safetensors(path)
    assert back_meta == meta and set(back) == {n for n, _ in w.tensors}
    for n, a in w.tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
    for k in ("dino_local", "dino_global", "koleo", "ibot", "total"):
        assert np.all(np.isfinite(back["term." + k])), k
    sketched = set(json.loads(back_meta["sketched"]))
    for n in back:
        if n.startswith("grad."):
            assert np.any(back[n] != 0), f"zero gradient {n}"
            assert np.all(np.isfinite(back[n])), n
    for n in back:
        if n.startswith(("param_after.", "teacher_after.", "head.", "target.")):
            assert np.all(np.isfinite(back[n])), n
    # sketch rule self-check on live tensors (pure-Python reference) for the tiny cases
    if case["arch"] == "tiny":
        model = info["model"]
        p_named = dict(model.student.named_parameters())
        pick = [n for n in ("backbone.blocks.0.attn.qkv.weight", "dino_head.last_layer.weight_v") if n in p_named]
        for pn in pick:
            assert "param_after." + pn in sketched
            ref = count_sketch_scalar(pn, p_named[pn].detach().numpy())
            err = np.abs(ref - back["param_after." + pn]).max()
            assert err <= 1e-9 * max(1.0, np.abs(ref).max()), (pn, err)
            ref = count_sketch_scalar(pn, info["grads"][pn].numpy())
            assert np.abs(ref - back["grad." + pn]).max() <= 1e-9 * max(1.0, np.abs(ref).max()), pn
        # an exact entry against the live tensor
        pn = "backbone.norm.weight"
        assert np.array_equal(back["param_after." + pn], p_named[pn].detach().numpy())
    return back


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dinov2-src", required=True, help="folder holding the dinov2 package (added to sys.path)")
    ap.add_argument("--dinov2-commit", default=DINOV2_COMMIT, help="commit of the DINOv2 sources (metadata)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "finetune"),
                    help="output folder (default: <repo>/tests/fixtures/finetune)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = ap.parse_args()

    for line in histoflow_init.self_check_lines():
        print(line)
    sc = sketch_self_check()
    print(f"sketch self-check: NAME='sketch:selfcheck' n=5000 sketch[0:4]={sc['sketch_0_7'][:4]} (scalar == vector)")

    ns = install_shims(args.dinov2_src)
    os.makedirs(args.out, exist_ok=True)
    t_all = time.time()
    for name in [c for c in args.cases.split(",") if c]:
        if name not in CASES:
            sys.exit(f"unknown case {name!r}")
        case = CASES[name]
        t0 = time.time()
        w, meta, info = run_case(ns, name, case, args)
        path = os.path.join(args.out, name + ".safetensors")
        mef.write_safetensors(path, w.tensors, meta)
        check_file(path, w, meta, info, name, case)
        size = os.path.getsize(path)
        print(f"\n== {name}: {path} ({size} bytes, {time.time() - t0:.1f} s total, step {info['step_seconds']:.2f} s)")
        sched = ", ".join(f"{k}={v:.6g}" for k, v in info["schedule"].items())
        print(f"   schedule @ it {case['iteration']}: {sched}")
        print("   terms: " + ", ".join(f"{k}={v:.7g}" for k, v in info["terms"].items()))
        print(f"   koleo chunks (unweighted): {info['koleo_chunks']}")
        print(f"   n_masked={info['n_masked']} upperbound={info['upperbound']} clip total norms: "
              + ", ".join(f"{k}={v:.5g}" for k, v in info["clip"].items()))
        print(f"   tensors: {len(w.tensors)} ({len(w.sketched)} sketched)"
              + (f"; ZERO GRADIENTS: {info['zero_grads']}" if info["zero_grads"] else ""))
        if meta["pos_embed_resize_numpy_max_abs_err"] != "n/a":
            print(f"   pos_embed resize vs numpy bicubic: max|err| = {meta['pos_embed_resize_numpy_max_abs_err']}")
        del info
    print(f"\ntotal {time.time() - t_all:.1f} s")


if __name__ == "__main__":
    main()
