#!/usr/bin/env python3
"""tools/gpu/check's summary: the phases it recorded, the environment, the encoder benchmark's rows, the
end-to-end against encoder-only figures, and (on a GPU) the issue's goals, as OUT/summary.md and OUT/summary.json.
Exit status 1 when a phase failed; the goals are reported, not enforced."""
import argparse
import json
from pathlib import Path

# The goals of the GPU path (issue 15): ViT-L/16 (`uni`) bf16 on one H200, and the whole-slide graph against the encoder.
GOAL_UNI_BF16_TILES_PER_SECOND = 900.0
GOAL_END_TO_END_RATIO = 0.9


def rows(path):
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    phases = [{"phase": r[0], "status": r[1], "seconds": int(r[2]), "detail": r[3] if len(r) > 3 else ""} for r in rows(args.work / "results.tsv")]
    environment = {r[0]: r[1] for r in rows(args.work / "figures.tsv") if len(r) > 1}
    bench = [row for f in sorted(args.work.glob("bench*.json")) for row in json.loads(f.read_text())]
    e2e = {}
    for r in rows(args.work / "e2e.tsv"):
        if r[0] == "config":
            e2e["config"] = dict(zip(("backbone", "precision", "batch", "streams", "other_streams"), r[1:]))
        else:
            e2e[r[0]] = {"tiles": int(r[1]), "seconds": float(r[2]), "tiles_per_second": float(r[3]), "opening_seconds": float(r[4]), "status": r[5]}
    if "encoder_only" in e2e and "end_to_end" in e2e:
        e2e["ratio"] = e2e["end_to_end"]["tiles_per_second"] / e2e["encoder_only"]["tiles_per_second"]

    goals = {}
    if args.profile == "gpu":
        uni = [r for r in bench if r["backbone"] == "uni" and r["precision"] == "bf16"]
        best = max(uni, key=lambda r: r["images_per_second"]) if uni else None
        goals["uni_bf16_tiles_per_second"] = {
            "goal": f">= {GOAL_UNI_BF16_TILES_PER_SECOND:.0f}", "measured": round(best["images_per_second"], 1) if best else None,
            "batch": best["batch"] if best else None, "met": bool(best and best["images_per_second"] >= GOAL_UNI_BF16_TILES_PER_SECOND)}
        goals["end_to_end_over_encoder_only"] = {
            "goal": f">= {GOAL_END_TO_END_RATIO}", "measured": round(e2e["ratio"], 3) if "ratio" in e2e else None,
            "met": bool("ratio" in e2e and e2e["ratio"] >= GOAL_END_TO_END_RATIO)}

    failed = [p["phase"] for p in phases if p["status"] == "failed"]
    summary = {"profile": args.profile, "passed": not failed, "failed_phases": failed, "phases": phases,
               "environment": environment, "encoder_benchmark": bench, "end_to_end": e2e, "goals": goals}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    md = [f"# tools/gpu/check {args.profile}: {'all phases passed' if not failed else 'FAILED: ' + ', '.join(failed)}", ""]
    if environment:
        md += ["| environment | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in environment.items()] + [""]
    md += ["| phase | status | s | detail |", "|---|---|---:|---|"]
    md += [f"| {p['phase']} | {p['status']} | {p['seconds']} | {p['detail'][:240]} |" for p in phases] + [""]
    if bench:
        md += ["Encoder benchmark (bench_encoders; images/s = tiles/s, median of 5 windows):", "",
               "| backbone | precision | batch | tiles/s | GFLOP/s | of peak | device |", "|---|---|---:|---:|---:|---:|---|"]
        md += [f"| {r['backbone']} | {r['precision']} | {r['batch']} | {r['images_per_second']:.1f} | {r['gflops']:.0f} | "
               f"{100 * r['gflops'] / r['peak_gflops']:.0f}% | {r.get('device', 'cpu')} |" for r in bench] + [""]
    if "ratio" in e2e:
        c = e2e.get("config", {})
        md += [f"Whole slide against encoder-only ({c.get('backbone')} {c.get('precision')}, batch {c.get('batch')}, "
               f"{c.get('streams')} streams; seconds exclude the stages' opening):", "",
               "| run | tiles | s | tiles/s |", "|---|---:|---:|---:|"]
        md += [f"| {run}{' (' + c.get('other_streams', '') + ' streams)' if run == 'encoder_only_streams' else ''} | "
               f"{e2e[run]['tiles']} | {e2e[run]['seconds']:.2f} | {e2e[run]['tiles_per_second']:.1f} |"
               for run in ("encoder_only", "end_to_end", "encoder_only_streams") if run in e2e]
        md += ["", f"end-to-end / encoder-only: {e2e['ratio']:.3f}", ""]
    for name, g in goals.items():
        md.append(f"goal {name}: {g['goal']}, measured {g['measured']} -> {'met' if g['met'] else 'NOT met'}")
    text = "\n".join(md).rstrip() + "\n"
    (args.out / "summary.md").write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
