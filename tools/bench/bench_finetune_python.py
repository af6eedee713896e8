#!/usr/bin/python3
"""Times one official DINOv2 self-supervised training step in Python torch (the reference for the C++ fine-tuning
step): SSLMetaArch.forward_backward + per-module gradient clipping + AdamW step over the official parameter groups
(with the schedules' values applied by apply_optim_scheduler) + teacher EMA, for ViT-S/14 with the study's
pos_embed resized to 16x16, DINO head 65536/2048/256 (3 layers), shared iBOT head, Sinkhorn-Knopp centering,
B images per step (2 global 224 crops + 8 local 98 crops each). Prints one JSON line.

usage:
  git -C /work/.mirror/facebookresearch+dinov2/repo archive HEAD dinov2 | tar -x -C /tmp/dinov2src
  /usr/bin/python3 tools/bench/bench_finetune_python.py --dinov2-src /tmp/dinov2src [--batch 8] [--threads T]
      [--precision fp32|bf16] [--warmup 2] [--steps 5] [--drop-path-rate 0.0] [--drop-path-uniform]

The model, the official-code imports and every shim (no xFormers / FSDP / CUDA) come from
tools/parity/make_finetune_fixtures.py (see its docstring): this times exactly the step those fixtures record, with
the official constructor's random initialisation instead of histoflow-init-v1 and random normal crops (made once,
outside the timed loop); the iBOT masks come from the official collate_data_and_cast once (random.seed(0)).
--drop-path-rate / --drop-path-uniform set cfg.student.drop_path_rate / drop_path_uniform (default 0: the study's
fork builds its backbones with the hub defaults, i.e. no stochastic depth; 0.4 is accepted). With drop path the
per-element student path runs the official Block.forward stochastic-depth code instead of the xFormers nested one.
--precision bf16 wraps forward_backward in torch.autocast("cpu", dtype=torch.bfloat16): the CPU analogue of the
official fp16 autocast / FSDP mixed precision (parameters, optimiser, clipping and EMA stay float32; no grad scaler,
which bf16 does not need). KoLeo's torch.cuda.amp.autocast(enabled=False) does not switch CPU autocast off, so it
runs in bf16 here. The optimiser state persists across steps (as in training); the schedule iteration is fixed
(--iteration, default 1500 as in the ssl_vits14 fixture).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "parity"))

import make_finetune_fixtures as mff  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dinov2-src", required=True, help="folder holding the dinov2 package")
    ap.add_argument("--batch", type=int, default=8, help="images per step (each: 2 global + 8 local crops)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--drop-path-rate", type=float, default=0.0)
    ap.add_argument("--drop-path-uniform", action="store_true")
    ap.add_argument("--iteration", type=int, default=None, help="schedule iteration (default: the fixture's)")
    args = ap.parse_args()

    ns = mff.install_shims(args.dinov2_src, threads=args.threads)
    torch = ns.torch
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(0)
    case = dict(mff.CASES["ssl_vits14"], batch=args.batch, drop_path_rate=args.drop_path_rate,
                drop_path_uniform=args.drop_path_uniform)
    it = case["iteration"] if args.iteration is None else args.iteration
    cfg = mff.make_cfg(ns, case)
    B, nL, G, L = case["batch"], case["n_local"], case["global_size"], case["local_size"]
    global_crops = torch.randn(2 * B, 3, G, G)
    local_crops = torch.randn(nL * B, 3, L, L)
    data, _ = mff.make_batch(ns, case, cfg, global_crops, local_crops, seed=0)

    model = mff.build_model(ns, case, cfg, init=False)
    optimizer = ns.dtrain.build_optimizer(cfg, model.get_params_groups())
    scheds = ns.dtrain.build_schedulers(cfg)
    lr, wd, mom, teacher_temp, last_layer_lr = (float(s[it]) for s in scheds)

    def step():
        ns.dtrain.apply_optim_scheduler(optimizer, lr, wd, last_layer_lr)
        optimizer.zero_grad(set_to_none=True)
        with mff.cuda_is_identity(torch):
            if args.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss_dict = model.forward_backward(data, teacher_temp=teacher_temp)
            else:
                loss_dict = model.forward_backward(data, teacher_temp=teacher_temp)
        mff.clip_student(torch, model, cfg.optim.clip_grad)
        optimizer.step()
        mff.ema_update(torch, model, mom)
        return loss_dict

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss_dict = step()
        times.append(time.perf_counter() - t0)
    total = sum(float(v) for v in loss_dict.values())
    assert total == total, "NaN loss"
    med = statistics.median(times)
    print(json.dumps({
        "impl": "python-official",
        "precision": args.precision,
        "threads": args.threads,
        "batch": B,
        "steps": args.steps,
        "warmup": args.warmup,
        "drop_path_rate": args.drop_path_rate,
        "drop_path_uniform": args.drop_path_uniform,
        "step_seconds_median": med,
        "step_seconds_all": times,
        "images_per_second": B / med,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch_version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
