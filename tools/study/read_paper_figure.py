#!/usr/bin/env python3
"""Reads the values plotted in Figure 1 of the study's repository (beneroth13/dinov2, media/figure1.png).

The paper's table of frozen extractors was not available to this project; the authors' figure plots CTransPath,
RetCCL, frozen DINOv2 ViT-S/14 and the finetuned ViT-S/14 on NCT-CRC (accuracy), TCGA and CPTAC (AUROC) without
printing the values. This script measures them: the y axis from its tick marks (0.75 ... 0.90), each marker's
centre from the rows where its colour is wider than the connecting lines. The finetuned ViT-S/14 points, whose
values the paper states (TCGA 0.89, CPTAC 0.85), check the reading. graphs/study/reference/paper_results.csv holds
what it printed; docs/reproduce-the-study.md says which values were kept and why.

usage: read_paper_figure.py FIGURE1_PNG
  git -C <beneroth13/dinov2 clone> show ffb73cd:media/figure1.png > figure1.png
needs python3-pil and python3-numpy.
"""
import sys

import numpy as np
from PIL import Image

# Marker colours (RGB) and the x of each dataset's column, in the 2438 x 1896 original.
SERIES = {"CTransPath": (226, 134, 131), "RetCCL": (166, 235, 153), "DINOv2 ViT-S": (212, 163, 217),
          "DINOv2 ViT-S finetuned": (150, 204, 232)}
COLUMNS = {"NCT-CRC accuracy": 442, "TCGA AUROC": 1364, "CPTAC AUROC": 2286}
TICKS = (0.90, 0.85, 0.80, 0.75)  # top to bottom
MARKER_HALF_WIDTH = 30            # pixels either side of a column searched for a marker
MARKER_MIN_WIDTH = 12             # a row wider than this in the marker's colour is marker, not line
LEGEND_LEFT, LEGEND_BOTTOM = 1500, 420


def axis_scale(dark):
    """(row of the first tick, value per row) from the tick marks left of the y axis."""
    axis = int(np.argmax(dark[:, : dark.shape[1] // 3].sum(axis=0)))
    rows = [y for y in range(dark.shape[0]) if dark[y, axis - 15 : axis - 2].sum() >= 10]
    ticks = []  # runs of adjacent rows are one tick mark
    for y in rows:
        if ticks and y - ticks[-1][-1] == 1:
            ticks[-1].append(y)
        else:
            ticks.append([y])
    centres = [sum(t) / len(t) for t in ticks]
    if len(centres) != len(TICKS):
        sys.exit(f"found {len(centres)} tick marks on the y axis, expected {len(TICKS)}: not the figure this reads")
    step = np.diff(centres)
    if step.max() - step.min() > 1:
        sys.exit(f"tick marks not evenly spaced: {centres}")
    return centres[0], (TICKS[0] - TICKS[-1]) / (centres[-1] - centres[0])


def marker_span(mask, column):
    """(first, last) row of the marker in one column: rows where its colour is wider than a connecting line."""
    band = mask[:, column - MARKER_HALF_WIDTH : column + MARKER_HALF_WIDTH + 1].sum(axis=1)
    rows = np.nonzero(band >= MARKER_MIN_WIDTH)[0]
    return (int(rows.min()), int(rows.max())) if rows.size else None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    image = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
    if image.shape[:2] != (1896, 2438):
        sys.exit(f"image is {image.shape[1]} x {image.shape[0]}, expected 2438 x 1896 (media/figure1.png at ffb73cd)")
    top, per_row = axis_scale(image.sum(axis=2) < 200)
    value = lambda row: TICKS[0] - (row - top) * per_row
    image[:LEGEND_BOTTOM, LEGEND_LEFT:] = 255  # the legend holds a marker of every colour too
    print(f"y axis: {TICKS[0]} at row {top:.1f}, {per_row * 1000:.4f} per 1000 rows")
    print(f"{'series':24} {'column':18} {'rows':>11} {'value':>7}")
    for name, colour in SERIES.items():
        mask = np.abs(image - np.array(colour)).sum(axis=2) < 60
        spans = {column: marker_span(mask, x) for column, x in COLUMNS.items()}
        full = max(last - first for first, last in filter(None, spans.values()))
        for column, span in spans.items():
            if span is None:
                print(f"{name:24} {column:18} {'-':>11} {'-':>7}")
                continue
            first, last = span
            text = f"{value((first + last) / 2):7.4f}"
            if last - first < full - 4:  # partly under another marker, or lines widened its other columns' rows
                text += (f"  (spans {last - first} of {full} rows: {value(first + full / 2):.4f} from its top edge,"
                         f" {value(last - full / 2):.4f} from its bottom edge)")
            print(f"{name:24} {column:18} {first:5d}-{last:<5d} {text}")


if __name__ == "__main__":
    main()
