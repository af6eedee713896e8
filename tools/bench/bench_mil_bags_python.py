#!/usr/bin/python3
"""MIL aggregators on real-size bags in Python torch: the same five models as histoflow's mil plugin (same layer
sizes, dropout, loss, AdamW settings), the same step (tiles drawn, z-scored, one bag per step), the same bags read
from the same HDF5 files in the timed part. Prints one JSON line per run.

  make-data: /usr/bin/python3 tools/bench/bench_mil_bags_python.py make-data --out DIR --bags 200 --tiles 20000
             writes DIR/bag_0000.h5 ... (CLAM layout: /features float32 [tiles, dim], /coords int64 [tiles, 2]),
             labels alternating 0/1 (label-1 bags hold a few shifted tiles). Not timed.
  run:       /usr/bin/python3 tools/bench/bench_mil_bags_python.py run --data DIR --aggregator transformer
             [--bags N] [--max-tiles 512] [--score] [--threads 2]
             one training epoch over the first N bags (in file order), then with --score every bag scored whole
             (eval, no gradient, probabilities and attention copied out, as predict_bag does).

Large bags, as a Python user would write them with torch 1.13 (no scaled_dot_product_attention): the transformer's
attention in chunks of queries under torch.utils.checkpoint when its weights exceed 16 Mi values, and each
layer under torch.utils.checkpoint in training when its input exceeds 4 Mi values (histoflow's thresholds);
TransMIL's attention is lucidrains' nystrom-attention formula as TransMIL uses it (its [tokens x landmarks]
softmaxes whole). Dropout is torch's (F.dropout), on the attention weights too, as histoflow's models do.
Model construction and initialisation are outside the timed part."""
import argparse
import json
import math
import os
import resource
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint

WHOLE_ATTENTION_LIMIT = 1 << 24
RECOMPUTE_ABOVE = 1 << 22


def attention(q, k, v, dropout, training):
    """softmax(q k^T / sqrt(d)) v over [heads, tokens, d], whole or in chunks of queries recomputed in backward."""
    heads, tokens, dim = q.shape
    keys = k.shape[1]
    scale = dim ** -0.5

    def block(q_block, k, v):
        weights = torch.softmax(q_block @ k.transpose(1, 2) * scale, -1)
        return F.dropout(weights, dropout, training) @ v, weights

    if heads * tokens * keys <= WHOLE_ATTENTION_LIMIT:
        return block(q, k, v)
    chunk = max(1, WHOLE_ATTENTION_LIMIT // (heads * keys))
    outputs, first_weights = [], None
    for start in range(0, tokens, chunk):
        q_block = q[:, start:start + chunk]
        if torch.is_grad_enabled():
            out = checkpoint.checkpoint(lambda a, b, c: block(a, b, c)[0], q_block, k, v)
        else:
            out, weights = block(q_block, k, v)
            if start == 0:
                first_weights = weights
        outputs.append(out)
    if first_weights is None:  # the class token's weights, for the heatmap
        with torch.no_grad():
            first_weights = torch.softmax(q[:, :1] @ k.transpose(1, 2) * scale, -1)
    return torch.cat(outputs, 1), first_weights


class SelfAttentionLayer(nn.Module):
    """x + Attention(LayerNorm(x)) [+ MLP], histoflow's SelfAttentionLayer."""

    def __init__(self, dim, heads, mlp_dim, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim) if mlp_dim else None
        self.fc1 = nn.Linear(dim, mlp_dim) if mlp_dim else None
        self.fc2 = nn.Linear(mlp_dim, dim) if mlp_dim else None

    def compute(self, x):
        tokens, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(tokens, 3, self.heads, dim // self.heads).permute(1, 2, 0, 3)
        attended, weights = attention(q, k, v, self.dropout, self.training)
        cls = weights[:, 0].mean(0).detach()
        y = x + F.dropout(self.proj(attended.permute(1, 0, 2).reshape(tokens, dim)), self.dropout, self.training)
        if self.fc1 is None:
            return y, cls
        m = self.fc2(F.dropout(F.gelu(self.fc1(self.norm2(y))), self.dropout, self.training))
        return y + F.dropout(m, self.dropout, self.training), cls

    def compute_keeping_cls(self, x):
        y, self.cls = self.compute(x)  # the first run's (the rerun in backward sets the same)
        return y

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and x.numel() > RECOMPUTE_ABOVE:
            return checkpoint.checkpoint(self.compute_keeping_cls, x), self.cls
        return self.compute(x)


def pseudo_inverse(x, iterations=6):
    """nystrom-attention's moore_penrose_iter_pinv."""
    magnitude = x.abs()
    z = x.transpose(-1, -2) / (magnitude.sum(-1).max() * magnitude.sum(-2).max())
    identity = torch.eye(x.shape[-1]).unsqueeze(0)
    for _ in range(iterations):
        xz = x @ z
        z = 0.25 * z @ (13 * identity - (xz @ (15 * identity - (xz @ (7 * identity - xz)))))
    return z


class NystromAttentionLayer(nn.Module):
    """x + NystromAttention(LayerNorm(x)): lucidrains' nystrom-attention with TransMIL's settings."""

    def __init__(self, dim, heads, landmarks, dropout):
        super().__init__()
        self.heads, self.landmarks, self.dropout = heads, landmarks, dropout
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.residual_conv = nn.Conv2d(heads, heads, (33, 1), padding=(16, 0), groups=heads, bias=False)

    def compute(self, x):
        tokens, dim = x.shape
        m = self.landmarks
        padding = (m - tokens % m) % m
        h = F.pad(self.norm(x), (0, 0, padding, 0))
        n = tokens + padding
        q, k, v = self.qkv(h).view(n, 3, self.heads, dim // self.heads).permute(1, 2, 0, 3)
        q = q * (dim // self.heads) ** -0.5
        q_l = q.reshape(self.heads, m, n // m, -1).mean(2)
        k_l = k.reshape(self.heads, m, n // m, -1).mean(2)
        a1 = torch.softmax(q @ k_l.transpose(1, 2), -1)
        a2 = torch.softmax(q_l @ k_l.transpose(1, 2), -1)
        a3 = torch.softmax(q_l @ k.transpose(1, 2), -1)
        out = (a1 @ pseudo_inverse(a2)) @ (a3 @ v)
        out = out + self.residual_conv(v.unsqueeze(0)).squeeze(0)
        out = out.permute(1, 0, 2).reshape(n, dim)[padding:]
        return x + F.dropout(self.out(out), self.dropout, self.training)

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and x.numel() > RECOMPUTE_ABOVE:
            return checkpoint.checkpoint(self.compute, x)
        return self.compute(x)


class GatedAttention(nn.Module):
    def __init__(self, dim, attention_dim, dropout):
        super().__init__()
        self.v, self.u, self.w = nn.Linear(dim, attention_dim), nn.Linear(dim, attention_dim), nn.Linear(attention_dim, 1)
        self.dropout = dropout

    def forward(self, h):
        gate = F.dropout(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h)), self.dropout, self.training)
        return torch.softmax(self.w(gate).squeeze(1), 0)


class MeanMlp(nn.Module):
    def __init__(self, d_in, hidden, classes, dropout):
        super().__init__()
        self.hidden, self.classifier, self.dropout = nn.Linear(d_in, hidden), nn.Linear(hidden, classes), dropout

    def forward(self, bag, label):
        h = F.dropout(torch.relu(self.hidden(bag.mean(0, keepdim=True))), self.dropout, self.training)
        return self.classifier(h).squeeze(0), None, None


class GatedAttentionMil(nn.Module):
    def __init__(self, d_in, hidden, classes, dropout):
        super().__init__()
        self.project = nn.Linear(d_in, hidden)
        self.attention = GatedAttention(hidden, max(hidden // 4, 16), dropout)
        self.classifier = nn.Linear(hidden, classes)
        self.dropout = dropout

    def forward(self, bag, label):
        h = F.dropout(torch.relu(self.project(bag)), self.dropout, self.training)
        a = self.attention(h)
        return self.classifier(a.unsqueeze(0) @ h).squeeze(0), a, None


class ClamSingleBranch(nn.Module):
    def __init__(self, d_in, hidden, classes, dropout):
        super().__init__()
        self.project = nn.Linear(d_in, hidden)
        self.attention = GatedAttention(hidden, max(hidden // 2, 16), dropout)
        self.classifier = nn.Linear(hidden, classes)
        self.instance_classifiers = nn.ModuleList([nn.Linear(hidden, 2) for _ in range(classes)])
        self.dropout = dropout

    def forward(self, bag, label):
        h = F.dropout(torch.relu(self.project(bag)), self.dropout, self.training)
        a = self.attention(h)
        logits = self.classifier(a.unsqueeze(0) @ h).squeeze(0)
        k = min(8, h.shape[0] // 2)
        auxiliary = None
        if self.training and label is not None and k > 0:
            top, bottom = torch.topk(a, k)[1], torch.topk(a, k, largest=False)[1]
            instances = torch.cat([h[top], h[bottom]])
            targets = torch.cat([torch.ones(k, dtype=torch.long), torch.zeros(k, dtype=torch.long)])
            auxiliary = F.cross_entropy(self.instance_classifiers[label](instances), targets) * (0.3 / 0.7)
        return logits, a, auxiliary


class TransMil(nn.Module):
    def __init__(self, d_in, hidden, classes, dropout):
        super().__init__()
        self.project = nn.Linear(d_in, hidden)
        self.cls_token = nn.Parameter(torch.zeros(1, hidden))
        self.layer1 = NystromAttentionLayer(hidden, 8, max(hidden // 2, 1), dropout)
        self.layer2 = NystromAttentionLayer(hidden, 8, max(hidden // 2, 1), dropout)
        self.ppeg = nn.ModuleList([nn.Conv2d(hidden, hidden, k, padding=k // 2, groups=hidden) for k in (7, 5, 3)])
        self.norm = nn.LayerNorm(hidden)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, bag, label):
        h = torch.relu(self.project(bag))
        n, d = h.shape
        side = math.ceil(math.sqrt(n))
        missing = side * side - n
        while missing > 0:
            take = min(missing, n)
            h = torch.cat([h, h[:take]])
            missing -= take
        x = self.layer1(torch.cat([self.cls_token, h]))
        grid = x[1:].transpose(0, 1).reshape(1, d, side, side)
        encoded = grid
        for conv in self.ppeg:
            encoded = encoded + conv(grid)
        x = self.layer2(torch.cat([x[:1], encoded.reshape(d, side * side).transpose(0, 1)]))
        return self.classifier(self.norm(x[:1])).squeeze(0), None, None


class Transformer(nn.Module):
    def __init__(self, d_in, hidden, classes, dropout):
        super().__init__()
        self.project = nn.Linear(d_in, hidden)
        self.cls_token = nn.Parameter(torch.zeros(1, hidden))
        self.layers = nn.ModuleList([SelfAttentionLayer(hidden, 8, hidden, dropout) for _ in range(2)])
        self.norm = nn.LayerNorm(hidden)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, bag, label):
        x = torch.cat([self.cls_token, torch.relu(self.project(bag))])
        for layer in self.layers:
            x, cls = layer(x)
        tiles = cls[1:]
        return self.classifier(self.norm(x[:1])).squeeze(0), tiles / tiles.sum(), None


MODELS = {"mean_mlp": MeanMlp, "gated_attention": GatedAttentionMil, "clam_sb": ClamSingleBranch,
          "transmil": TransMil, "transformer": Transformer}


def make_data(args):
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for b in range(args.bags):
        path = os.path.join(args.out, f"bag_{b:04d}.h5")
        if os.path.exists(path):
            continue
        features = rng.standard_normal((args.tiles, args.dim), dtype=np.float32)
        if b % 2 == 1:
            features[: max(1, args.tiles // 50), :8] += 1.5
        coords = np.stack([np.arange(args.tiles) % 256 * 224, np.arange(args.tiles) // 256 * 224], 1).astype(np.int64)
        with h5py.File(path + ".tmp", "w") as f:
            f["features"] = features
            f["coords"] = coords
        os.replace(path + ".tmp", path)


def read_bag(data, b):
    with h5py.File(os.path.join(data, f"bag_{b:04d}.h5"), "r") as f:
        return torch.from_numpy(f["features"][:])


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dim = read_bag(args.data, 0).shape[1]
    model = MODELS[args.aggregator](dim, args.hidden_dim, 2, args.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
    mean, std = torch.zeros(dim), torch.ones(dim)  # the generating distribution's; z-scoring is still done
    class_weights = [1.0, 1.0]  # alternating labels: balanced
    parameters = sum(p.numel() for p in model.parameters())

    model.train()
    losses, read_seconds = [], 0.0
    start = time.perf_counter()
    for b in range(args.bags):
        t = time.perf_counter()
        features = read_bag(args.data, b)
        read_seconds += time.perf_counter() - t
        label = b % 2
        n = features.shape[0]
        if 0 < args.max_tiles < n:
            features = features.index_select(0, torch.randperm(n)[: args.max_tiles])
        logits, _, auxiliary = model((features - mean) / std, label)
        loss = F.cross_entropy(logits.unsqueeze(0), torch.tensor([label])) * class_weights[label]
        if auxiliary is not None:
            loss = loss + auxiliary
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    epoch_seconds = time.perf_counter() - start

    score_seconds = None
    if args.score:
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for b in range(args.bags):
                features = read_bag(args.data, b)
                logits, attention, _ = model((features - mean) / std, None)
                probabilities = torch.softmax(logits.double(), 0).tolist()
                if attention is not None:
                    assert attention.numel() == features.shape[0]
                    attention = attention.float().numpy().copy()
        score_seconds = time.perf_counter() - start
    print(json.dumps({"side": "python", "aggregator": args.aggregator, "bags": args.bags, "max_tiles": args.max_tiles,
                      "parameters": parameters, "epoch_seconds": epoch_seconds, "read_seconds": read_seconds,
                      "score_seconds": score_seconds, "mean_loss": sum(losses) / len(losses),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": args.threads}), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make-data")
    m.add_argument("--out", required=True)
    m.add_argument("--bags", type=int, default=200)
    m.add_argument("--tiles", type=int, default=20000)
    m.add_argument("--dim", type=int, default=1024)
    m.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True)
    r.add_argument("--aggregator", required=True, choices=sorted(MODELS))
    r.add_argument("--bags", type=int, default=200)
    r.add_argument("--max-tiles", type=int, default=512)
    r.add_argument("--score", action="store_true")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--hidden-dim", type=int, default=512)
    r.add_argument("--dropout", type=float, default=0.25)
    r.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    make_data(args) if args.command == "make-data" else run(args)


if __name__ == "__main__":
    sys.exit(main())
