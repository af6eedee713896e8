#!/usr/bin/python3
"""Reference values for the slide-level benchmark's metrics, from scikit-learn (Debian python3-sklearn).

Writes tests/fixtures/mil/sklearn_metrics.json: AUROC (binary with ties, macro one-vs-rest), ROC curve points,
balanced accuracy and F1 (binary and macro) of the argmax predictions, and numpy percentiles (bootstrap
intervals). The C++ tests compare to 1e-6, so they need no Python.

Run: /usr/bin/python3 tools/parity/make_sklearn_fixtures_mil.py
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score, roc_curve

rng = np.random.default_rng(20240611)
cases = []


def add(name, y, probs, classes):
    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    case = {"name": name, "classes": classes, "labels": y.tolist(), "probabilities": probs.ravel().tolist()}
    if classes == 2:
        case["auroc"] = roc_auc_score(y, probs[:, 1])
        fpr, tpr, _ = roc_curve(y, probs[:, 1])
        case["roc_fpr"], case["roc_tpr"] = fpr.tolist(), tpr.tolist()
        case["f1"] = f1_score(y, pred, labels=[0, 1], average="binary", zero_division=0)
    else:
        case["auroc"] = roc_auc_score(y, probs, multi_class="ovr", average="macro")
        case["f1"] = f1_score(y, pred, average="macro", zero_division=0)
    case["balanced_accuracy"] = balanced_accuracy_score(y, pred)
    cases.append(case)


def binary(scores):
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([1 - scores, scores], axis=1)


# Binary, continuous scores.
y = rng.integers(0, 2, 80)
add("binary_continuous", y, binary(np.clip(0.3 * y + rng.normal(0.35, 0.25, 80), 0, 1)), 2)
# Binary, heavy ties (scores on a 0.1 grid), as from a confident model.
y = rng.integers(0, 2, 60)
add("binary_ties", y, binary(np.round(np.clip(0.25 * y + rng.uniform(0, 0.75, 60), 0, 1), 1)), 2)
# Binary, every score equal: AUROC 0.5.
add("binary_all_tied", [0, 1, 0, 1, 1], binary([0.5] * 5), 2)
# Binary, unbalanced, perfect separation.
add("binary_perfect", [0] * 9 + [1] * 3, binary([0.1 * i for i in range(9)] + [0.95, 0.97, 0.99]), 2)
# Three classes, softmax of noisy logits.
y = rng.integers(0, 3, 90)
logits = rng.normal(0, 1, (90, 3))
logits[np.arange(90), y] += 1.0
add("multiclass_3", y, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 3)
# Four classes, integer logits: many tied rows.
y = rng.integers(0, 4, 70)
logits = rng.integers(0, 3, (70, 4)).astype(np.float64)
logits[np.arange(70), y] += 1.0
add("multiclass_4_ties", y, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 4)

values = rng.normal(0.8, 0.05, 200)
percentiles = {"values": values.tolist(), "q": [0.0, 2.5, 50.0, 97.5, 100.0],
               "expected": np.percentile(values, [0.0, 2.5, 50.0, 97.5, 100.0]).tolist()}

out = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mil" / "sklearn_metrics.json"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps({"sklearn_version": sklearn.__version__, "numpy_version": np.__version__,
                           "cases": cases, "percentile": percentiles}, indent=1) + "\n")
print(f"wrote {out} ({len(cases)} cases, sklearn {sklearn.__version__})")
