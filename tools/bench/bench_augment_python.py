#!/usr/bin/python3
"""DINOv2's official augmentation (dinov2/data/augmentations.py, DataAugmentationDINO, with the study fork's
vertical flip) as users run it: a torch DataLoader with T worker processes over PIL images held in memory
(tiles made before the clock starts, as bench_augment does), batches of 8, each worker with one torch thread; the
clock starts once the first batch has arrived (worker start-up left out).

usage:
  git -C /work/.mirror/facebookresearch+dinov2/repo archive HEAD dinov2 | tar -x -C /tmp/dinov2src
  /usr/bin/python3 tools/bench/bench_augment_python.py --dinov2-src /tmp/dinov2src [--threads T] [--images N]
Prints one JSON line: {"threads", "images", "seconds", "images_per_second"}.
"""
import argparse
import json
import sys
import time

import numpy as np


def make_tile(size, seed):
    """bench_augment's H&E-like tile, in numpy (same recipe, another generator)."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3))
    n = rng.normal(0, 12, size=(size, size, 1))
    img[:] = np.array([230, 160, 200]) + n
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(size * size // 300):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), 3 + 4 * rng.uniform()
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = [90, 50, 140]
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dinov2-src", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--tiles", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    sys.path.insert(0, args.dinov2_src)
    import torch
    from PIL import Image
    from torchvision import transforms
    from dinov2.data.augmentations import DataAugmentationDINO

    augmentation = DataAugmentationDINO((0.32, 1.0), (0.05, 0.32), 8, global_crops_size=224, local_crops_size=98)
    for geometric in (augmentation.geometric_augmentation_global, augmentation.geometric_augmentation_local):
        geometric.transforms.append(transforms.RandomVerticalFlip(p=0.5))  # the study's fork
    tiles = [Image.fromarray(make_tile(args.size, 1000 + k), "RGB") for k in range(args.tiles)]

    class Tiles(torch.utils.data.Dataset):
        def __len__(self):
            return args.images

        def __getitem__(self, index):
            return augmentation(tiles[index % len(tiles)])

    def init_worker(_):
        torch.set_num_threads(1)

    loader = torch.utils.data.DataLoader(Tiles(), batch_size=8, num_workers=args.threads, collate_fn=lambda batch: batch,
                                         worker_init_fn=init_worker, persistent_workers=False)
    # The clock starts at the first batch: worker start-up and the first batch are left out (Python's best case;
    # a training run pays start-up once).
    batches = iter(loader)
    next(batches)
    start = time.perf_counter()
    count = sum(len(batch) for batch in batches)
    seconds = time.perf_counter() - start
    print(json.dumps({"threads": args.threads, "images": count, "seconds": seconds, "images_per_second": count / seconds}))


if __name__ == "__main__":
    main()
