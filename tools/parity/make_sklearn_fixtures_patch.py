#!/usr/bin/python3
"""Reference results for the patch-level benchmark from scikit-learn (Debian python3-sklearn 1.2).

Writes tests/fixtures/patch_eval/{knn,linear,metrics}.json; the C++ tests (patch_eval_tests) read them, so the
test suite needs no Python. Run with Debian's interpreter: /usr/bin/python3 tools/parity/make_sklearn_fixtures_patch.py

Regularisation: sklearn minimises C * sum(cross-entropy) + 1/2 ||W||^2; histoflow's linear probe minimises
mean(cross-entropy) + lambda/2 ||W||^2, so lambda = 1 / (C * n_train).
"""
import json
import os

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "patch_eval")


def clusters(rng, n_per_class, classes, dim, spread, shift=0.0):
    centres = rng.normal(size=(classes, dim))
    x, y = [], []
    for c in range(classes):
        x.append(centres[c] + shift + spread * rng.normal(size=(n_per_class[c], dim)))
        y += [c] * n_per_class[c]
    return np.concatenate(x).astype(np.float32), np.array(y, dtype=np.int64)


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def knn_fixture(rng):
    classes, dim = 4, 32
    centres_rng = np.random.default_rng(1)
    x_all, y_all = clusters(centres_rng, [120, 90, 60, 100], classes, dim, spread=3.0)
    order = rng.permutation(len(y_all))
    x_all, y_all = x_all[order], y_all[order]
    train_x, train_y = x_all[:300], y_all[:300]
    test_x, test_y = x_all[300:], y_all[300:]
    ks = [1, 5, 20]
    temperature = 0.07
    result = {"sklearn": sklearn.__version__, "classes": classes, "dim": dim, "temperature": temperature,
              "train_rows": len(train_y), "test_rows": len(test_y),
              "train_x": floats(train_x), "train_y": train_y.tolist(), "test_x": floats(test_x), "test_y": test_y.tolist(),
              "ks": ks, "majority": {}, "weighted": {}, "near_tie": {}}
    # Cosine similarity in float64 for the tie flags and DINO voting (sklearn's own numbers for majority).
    a = train_x.astype(np.float64)
    b = test_x.astype(np.float64)
    sim = (b / np.linalg.norm(b, axis=1, keepdims=True)) @ (a / np.linalg.norm(a, axis=1, keepdims=True)).T
    ranked = np.sort(-sim, axis=1)
    for k in ks:
        model = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(train_x, train_y)
        result["majority"][str(k)] = model.predict(test_x).tolist()
        # A query is ambiguous when its k-th and (k+1)-th neighbours are (almost) equally far: float32 may order them either way.
        gap = ranked[:, k] - ranked[:, k - 1]
        result["near_tie"][str(k)] = (gap < 1e-5).tolist()
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(test_y), classes))
        for q in range(len(test_y)):
            for j in top[q]:
                votes[q, train_y[j]] += np.exp(sim[q, j] / temperature)
        result["weighted"][str(k)] = votes.argmax(axis=1).tolist()
    return result


def linear_fixture(rng):
    classes, dim = 3, 16
    x, y = clusters(np.random.default_rng(2), [200, 150, 250], classes, dim, spread=2.2)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    train_x, train_y, test_x, test_y = x[:400], y[:400], x[400:], y[400:]
    scaler = StandardScaler().fit(train_x)
    result = {"sklearn": sklearn.__version__, "classes": classes, "dim": dim, "train_rows": len(train_y),
              "test_rows": len(test_y), "train_x": floats(train_x), "train_y": train_y.tolist(),
              "test_x": floats(test_x), "test_y": test_y.tolist(), "fits": []}
    for C in [0.001, 0.01, 0.1, 1.0]:
        model = LogisticRegression(C=C, multi_class="multinomial", solver="lbfgs", max_iter=10000, tol=1e-10)
        model.fit(scaler.transform(train_x), train_y)
        predicted = model.predict(scaler.transform(test_x))
        result["fits"].append({"C": C, "lambda": 1.0 / (C * len(train_y)),
                               "balanced_accuracy": balanced_accuracy_score(test_y, predicted),
                               "predictions": predicted.tolist()})
    return result


def metrics_case(name, y_true, y_pred, classes):
    labels = list(range(classes))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {"name": name, "classes": classes, "y_true": list(y_true), "y_pred": list(y_pred),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels).ravel().tolist(),
            "accuracy": accuracy_score(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
            "weighted_f1": f1_score(y_true, y_pred, average="weighted", zero_division=0),
            "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist()}


def metrics_fixture(rng):
    import warnings
    warnings.simplefilter("ignore")  # the zero-division cases warn by design
    cases = []
    y_true = rng.integers(0, 5, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 5, size=200))
    cases.append(metrics_case("random five classes", y_true.tolist(), y_pred.tolist(), 5))
    # Class 2 never predicted (precision 0/0), class 3 predicted but never true (recall 0/0), class 4 in neither.
    cases.append(metrics_case("zero division", [0, 0, 1, 1, 2, 2, 2, 0], [0, 3, 1, 0, 1, 0, 3, 0], 5))
    cases.append(metrics_case("perfect", [0, 1, 2, 1], [0, 1, 2, 1], 3))
    cases.append(metrics_case("all wrong", [0, 0, 1, 1], [1, 1, 0, 0], 2))
    return {"sklearn": sklearn.__version__, "cases": cases}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, make in [("knn", knn_fixture), ("linear", linear_fixture), ("metrics", metrics_fixture)]:
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(make(rng), f)
        print("wrote", os.path.join(OUT, name + ".json"))


if __name__ == "__main__":
    main()
