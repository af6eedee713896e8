#!/usr/bin/python3
"""Writes patch-level feature files as other tools save them, for patch_feature_reader's test:

  tests/fixtures/features/foreign_train.pt   torch.save({"embeddings": float16 [60, 8], "targets": int64 [60]})
  tests/fixtures/features/foreign_test.h5    h5py: features float32 [30, 8], labels int32 [30] (no paths, no class names)
  tests/fixtures/features/foreign_{train,test}_expected.h5  the same rows as float32 features + int64 labels

Three classes, each a Gaussian around its own centre (seeded). usage: /usr/bin/python3 tools/parity/make_foreign_feature_fixtures.py
"""
import os

import h5py
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "features")


def rows(rng, n, centres):
    labels = np.arange(n) % len(centres)
    features = centres[labels] + rng.normal(0, 1.0, size=(n, centres.shape[1]))
    return features.astype(np.float16).astype(np.float32), labels


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(14)
    centres = rng.normal(0, 2.0, size=(3, 8))
    train_x, train_y = rows(rng, 60, centres)
    test_x, test_y = rows(rng, 30, centres)
    torch.save({"embeddings": torch.from_numpy(train_x).half(), "targets": torch.from_numpy(train_y).long()},
               os.path.join(OUT, "foreign_train.pt"))
    with h5py.File(os.path.join(OUT, "foreign_test.h5"), "w") as f:
        f["features"] = test_x
        f["labels"] = test_y.astype(np.int32)
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        with h5py.File(os.path.join(OUT, f"foreign_{name}_expected.h5"), "w") as f:
            f["features"], f["labels"] = x, y.astype(np.int64)


if __name__ == "__main__":
    main()
