"""How much would a perfect foreground gate help? The semantic-point evaluation with the search restricted to the
target's ground-truth mask (an upper bound for ``model.foreground``'s learned gate).

    .venv/bin/python scripts/semantic_oracle_gating.py models/demo/last.pt data/demo_duck_eval OUT_DIR \
        [--dilate 0 2 4] [--threads 1]

Rows: the checkpoint as the grasp node searches (whole image), and the same descriptors with every pixel outside the
target's mask (dilated by 0, 2, 4 px) set far from any unit descriptor (every view: query and reference; a reference
pixel is always on the target, so only the search is restricted). Writes ``OUT_DIR/semantic_report.json`` and the
matches PNG, prints the table and the per-part median pixel errors. Uses the dataset's target masks, which a robot
does not have: a diagnostic, not a method.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from dense_descriptor_grasp.evaluation.semantic import semantic_point_evaluation
from dense_descriptor_grasp.model.checkpoint import load_model
from dense_descriptor_grasp.model.inference import descriptor_image

OFF_TARGET = 10.0  # every descriptor value: squared distance to any unit descriptor >= (10 - 1)^2


def masked(model, dilate_px: int):
    """A descriptor callable ``f(view) -> (D, H, W)`` whose pixels off the (dilated) target mask are ``OFF_TARGET``."""
    kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)

    def descriptors(view):
        d = descriptor_image(model, view["rgb"], depth=view["depth"], K=view["K"])
        mask = view["target_mask"].astype(np.uint8)
        if dilate_px:
            mask = cv2.dilate(mask, kernel)
        d[:, mask == 0] = OFF_TARGET
        return d

    return descriptors


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--dilate", type=int, nargs="+", default=[0, 2, 4], help="mask dilations in px")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint).eval()
    methods = {"checkpoint": model}
    methods.update({f"gt_mask_dilate{k}": masked(model, k) for k in args.dilate})
    report = semantic_point_evaluation(methods, args.dataset, include_floors=True, out_dir=args.out, progress=False)
    print(report["table_markdown"])
    for name, stats in report["methods"].items():
        print(name, {part: None if v["median_px"] is None else round(v["median_px"], 1) for part, v in stats["per_part"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
