"""``preview_pairs``: PNGs of training pairs side by side, with correspondence lines and mask outlines.

    preview_pairs --dataset data/duck --out outputs/preview --num 4 [--mode augment|multiview]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .augment import JitterConfig
from .dataset import DatasetError, RGBDDataset
from .dataset_format import write_png
from .pairs import PairDataset

__all__ = ["draw_pair", "main", "get_args_parser"]


def _to_uint8(rgb_chw: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(rgb_chw).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def draw_pair(pair: dict, max_lines: int = 40, scale: int = 2, seed: int = 0) -> np.ndarray:
    """``(H * scale, 2 * W * scale, 3)`` uint8 RGB image: A left, B right, mask outlines in white,
    up to ``max_lines`` valid correspondences as coloured lines with dots at both ends.

    ``pair`` is a numpy or torch pair dict (unbatched).
    """
    import cv2

    p = {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in pair.items()}
    a, b = _to_uint8(p["rgb_a"]), _to_uint8(p["rgb_b"])
    h, w = a.shape[:2]
    canvas = np.ascontiguousarray(np.concatenate([a, b], axis=1))
    canvas = cv2.resize(canvas, (2 * w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
    for mask, dx in ((p["mask_a"], 0), (p["mask_b"], w)):
        big = cv2.resize(mask.astype(np.uint8), (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, (255, 255, 255), 1, offset=(dx * scale, 0))
    idx = np.nonzero(p["valid"])[0]
    rng = np.random.default_rng(seed)
    idx = rng.permutation(idx)[:max_lines]
    for j, i in enumerate(idx):
        hue = int(180 * j / max(1, len(idx)))
        colour = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
        pa = (int(round((p["uv_a"][i, 0] + 0.5) * scale - 0.5)), int(round((p["uv_a"][i, 1] + 0.5) * scale - 0.5)))
        pb = (int(round((p["uv_b"][i, 0] + w + 0.5) * scale - 0.5)), int(round((p["uv_b"][i, 1] + 0.5) * scale - 0.5)))
        cv2.line(canvas, pa, pb, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, pa, 2, colour, -1)
        cv2.circle(canvas, pb, 2, colour, -1)
    return canvas


def get_args_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="preview_pairs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="dataset folder (docs/DATA.md)")
    ap.add_argument("--out", required=True, help="folder for the PNGs")
    ap.add_argument("--num", type=int, default=4, help="number of pairs")
    ap.add_argument("--mode", choices=("augment", "multiview"), default="augment")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lines", type=int, default=40, help="correspondence lines per pair")
    ap.add_argument("--scale", type=int, default=2, help="pixel magnification of the preview")
    ap.add_argument("--no-jitter", action="store_true", help="show the pairs without photometric jitter")
    return ap


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        ds = RGBDDataset(args.dataset)
        pairs = PairDataset(ds, mode=args.mode, seed=args.seed,
                            jitter=JitterConfig.off() if args.no_jitter else None)
    except (DatasetError, ValueError) as exc:
        print(f"preview_pairs: error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    n = min(args.num, len(pairs))
    for i in range(n):
        pair = pairs.numpy_pair(i)
        img = draw_pair(pair, args.lines, args.scale, seed=i)
        path = os.path.join(args.out, f"pair_{args.mode}_{i:03d}.png")
        write_png(path, img)
        print(f"{path}: {int(pair['valid'].sum())} valid correspondences, fit_residual "
              f"{float(pair['fit_residual']) * 1000:.2f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
