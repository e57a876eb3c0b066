"""Contact sheet of a dataset's views: the target outlined in white, the distractors in yellow, and the
off-target negatives a pair would draw from the view (``pairs.sample_negatives``) as red (on a distractor) and cyan
(background) dots.

    .venv/bin/python scripts/data_contact_sheet.py --dataset data/clutter --out docs/images/data_clutter.png
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def contact_sheet(dataset, indices, cols: int = 4, scale: int = 2, negatives: int = 16, seed: int = 0) -> np.ndarray:
    """``(rows * H * scale, cols * W * scale, 3)`` uint8 RGB sheet of the views ``indices`` of an ``RGBDDataset``."""
    import cv2

    from dense_descriptor_grasp.data.pairs import sample_negatives

    tiles = []
    for j, i in enumerate(indices):
        s = dataset.load_numpy(i)
        h, w = s["mask"].shape
        img = cv2.resize(np.ascontiguousarray(s["rgb"]), (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        for m, colour in ((s["objects_mask"] & ~s["mask"], (255, 230, 0)), (s["mask"], (255, 255, 255))):
            big = cv2.resize(m.astype(np.uint8), (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(img, contours, -1, colour, 1)
        uv, ok = sample_negatives(np.random.default_rng([seed, j]), s["mask"], s["objects_mask"], negatives)
        for (u, v) in uv[ok].astype(int):
            colour = (255, 40, 40) if s["objects_mask"][v, u] else (0, 230, 255)
            cv2.circle(img, (int((u + 0.5) * scale), int((v + 0.5) * scale)), 2, colour, -1)
        tiles.append(img)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[r:r + cols], axis=1) for r in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", required=True, help="PNG path")
    ap.add_argument("--num", type=int, default=8, help="views (the first ones, one per scene)")
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--negatives", type=int, default=16, help="negatives drawn per view (0 = none)")
    args = ap.parse_args(argv)
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.data.dataset_format import write_png

    ds = RGBDDataset(args.dataset)
    first = [ids[0] for ids in ds.scenes().values()][:args.num]
    write_png(args.out, contact_sheet(ds, first, args.cols, args.scale, args.negatives))
    print(f"{args.out}: {len(first)} views of {args.dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
