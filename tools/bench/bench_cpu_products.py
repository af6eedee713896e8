#!/usr/bin/python3
"""The matrix products a ViT-S/14 finetuning step spends its time in, timed on oneDNN (libdnnl.so.2, the library
Debian's LibTorch links and histoflow's cpu_linear.hpp calls) and on LibTorch's own path (torch.mm: OpenBLAS for
fp32, oneDNN through LibTorch for bf16), at the same thread count. Prints GFLOP/s per shape, median of R timed
calls after one untimed. Run it twice to see OpenBLAS's kernel choice: as the environment has it, and with
`env -u OPENBLAS_CORETYPE` (the first line names the kernels OpenBLAS ran).

usage: /usr/bin/python3 tools/bench/bench_cpu_products.py [--threads T] [--repeats R]
"""
import argparse
import ctypes
import os
import statistics
import time

import torch

# name, M, N, K, transposes of A and B as the layer's forward or backward product takes them (row-major).
SHAPES = [
    ("ViT-S qkv forward: [4112 x 384] . [384 x 1152]", 4112, 1152, 384, "N", "T"),
    ("ViT-S fc2 forward: [4112 x 1536] . [1536 x 384]", 4112, 384, 1536, "N", "T"),
    ("ViT-S fc2 input gradient: [4112 x 384] . [384 x 1536]", 4112, 1536, 384, "N", "N"),
    ("ViT-S fc2 weight gradient: [384 x 4112] . [4112 x 1536]", 384, 1536, 4112, "T", "N"),
    ("DINO head prototypes forward: [700 x 256] . [256 x 65536]", 700, 65536, 256, "N", "T"),
    ("its weight gradient: [65536 x 700] . [700 x 256]", 65536, 256, 700, "T", "N"),
    ("its input gradient: [700 x 65536] . [65536 x 256]", 700, 256, 65536, "N", "N"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dnnl = ctypes.CDLL("libdnnl.so.2")
    gemm_args = [ctypes.c_char, ctypes.c_char] + [ctypes.c_int64] * 3 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int64,
                                                                          ctypes.c_void_p, ctypes.c_int64, ctypes.c_float,
                                                                          ctypes.c_void_p, ctypes.c_int64]
    dnnl.dnnl_sgemm.argtypes = gemm_args
    dnnl.dnnl_gemm_bf16bf16f32.argtypes = gemm_args  # exported by libdnnl; histoflow uses the matmul primitive

    def rate(fn, flops):
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return flops / statistics.median(times) / 1e9

    print(f"threads {args.threads}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, GFLOP/s")
    print(f"{'product':58} {'oneDNN fp32':>11} {'torch fp32':>10} {'oneDNN bf16>fp32':>16} {'torch bf16':>10}")
    for name, m, n, k, ta, tb in SHAPES:
        flops = 2.0 * m * n * k
        row = []
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn((m, k) if ta == "N" else (k, m)).to(dtype)
            b = torch.randn((k, n) if tb == "N" else (n, k)).to(dtype)
            c = torch.empty(m, n)
            fn = dnnl.dnnl_sgemm if dtype == torch.float32 else dnnl.dnnl_gemm_bf16bf16f32
            call = (lambda fn=fn, a=a, b=b, c=c: fn(ta.encode(), tb.encode(), m, n, k, 1.0, a.data_ptr(), a.shape[1],
                                                    b.data_ptr(), b.shape[1], 0.0, c.data_ptr(), n))
            op_a = a if ta == "N" else a.t()
            op_b = b if tb == "N" else b.t()
            row += [rate(call, flops), rate(lambda op_a=op_a, op_b=op_b: torch.mm(op_a, op_b), flops)]
            reference = torch.mm(op_a.double(), op_b.double())
            error = ((c.double() - reference).norm() / reference.norm()).item()
            assert error < 1e-5, f"{name}: oneDNN's {dtype} product differs from fp64 by {error}"
        print(f"{name:58} {row[0]:11.0f} {row[1]:10.0f} {row[2]:16.0f} {row[3]:10.0f}")


if __name__ == "__main__":
    main()
