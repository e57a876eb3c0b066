"""What a geometry-trained network thinks each target pixel is: the object point its descriptor decodes to.

    .venv/bin/python scripts/semantic_coordinate_map.py models/demo/last.pt data/demo_duck_eval OUT.png \
        [--views 6] [--object duck] [--sigma METRES]

For a network trained with the geometry term (``losses.coords`` > 0, docs/TRAINING.md), a pixel's descriptor should
be the embedding ``e(x)`` of its point ``x`` on the object (``training/coords.py``). This script decodes every
target pixel of some views of a dataset with known target poses: among the object points the target pixels of a
third of the views show (back-projected, in the object frame), the one whose embedding is nearest to the pixel's
descriptor. It draws, per view, the image, the true object coordinates and the decoded ones (x, y, z of the object
frame as red, green, blue over the object's extent; the rest of the image dimmed), and prints per named part the
median distance between decoded and true point over the target pixels within 1 cm of the part, and the cosine of
their descriptors with their own embedding (1 = fitted exactly). A part whose pixels decode to another part's colour
is one the descriptors confuse with it, whatever the reference view.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

NEAR_PART_M = 0.01      # target pixels within this distance of a part (object frame) count as that part's


def _uint8_rgb(sample) -> np.ndarray:
    rgb = np.asarray(sample["rgb"])
    if rgb.ndim == 3 and rgb.shape[0] == 3 and rgb.shape[-1] != 3:
        rgb = rgb.transpose(1, 2, 0)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def object_points(sample, T_world_object):
    """``(u, v, points (N, 3))``: the target pixels with depth of a numpy sample and their object-frame points
    (the semantic evaluation's ``object_coordinate_descriptors`` at those pixels)."""
    from dense_descriptor_grasp.evaluation.semantic import object_coordinate_descriptors

    depth = np.asarray(sample["depth"])
    mask = np.asarray(sample["mask"], bool)
    coords = object_coordinate_descriptors(depth, sample["K"], sample["T_world_camera"], T_world_object, mask)
    v, u = np.nonzero(mask & (depth > 0))
    return u, v, coords[:, v, u].T.astype(np.float64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("dataset", help="dataset folder with target poses (generate_dataset writes them)")
    p.add_argument("out", help="PNG to write")
    p.add_argument("--views", type=int, default=6, help="views drawn (rows) and scored (default 6)")
    p.add_argument("--object", default="duck", help="target object whose named parts are scored (default duck)")
    p.add_argument("--sigma", type=float, default=None,
                   help="embedding length scale, metres (default: the checkpoint's losses.coords_sigma)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import cv2
    import torch

    from dense_descriptor_grasp.data.dataset import DatasetError, RGBDDataset, target_pose
    from dense_descriptor_grasp.model.checkpoint import load_model
    from dense_descriptor_grasp.model.inference import descriptor_image
    from dense_descriptor_grasp.objects import named_parts
    from dense_descriptor_grasp.training.coords import coordinate_embedding

    torch.set_num_threads(max(1, args.threads))
    if args.views < 1:
        raise SystemExit("semantic_coordinate_map: --views must be >= 1")
    model = load_model(args.checkpoint)
    losses = ((getattr(model, "checkpoint_info", None) or {}).get("config") or {}).get("losses") or {}
    sigma = args.sigma if args.sigma is not None else losses.get("coords_sigma")
    if args.sigma is None and not float(losses.get("coords") or 0.0) > 0:
        raise SystemExit(f"semantic_coordinate_map: {args.checkpoint} was not trained with the geometry term "
                         "(losses.coords = 0), so its descriptors are not object-point embeddings; pass --sigma to "
                         "decode anyway")
    if not sigma or sigma <= 0:
        raise SystemExit("semantic_coordinate_map: --sigma must be > 0")
    try:
        views = RGBDDataset(args.dataset, split=None, validate=False)
        parts = named_parts(args.object)
    except (DatasetError, ValueError, KeyError) as exc:
        raise SystemExit(f"semantic_coordinate_map: {exc}")

    def pose(i):
        try:
            return target_pose(views.records[i])
        except (DatasetError, ValueError) as exc:
            raise SystemExit(f"semantic_coordinate_map: {args.dataset}: view {views.records[i].view_id} has no "
                             f"target pose ({exc})")

    candidates = []
    for i in range(0, len(views), 3):
        _, _, pts = object_points(views.load_numpy(i), pose(i))
        candidates.append(pts[::4])
    candidates = np.concatenate(candidates)
    if not len(candidates):
        raise SystemExit(f"semantic_coordinate_map: {args.dataset}: no target pixels with depth")
    lo, hi = candidates.min(0), candidates.max(0)
    names = list(parts)
    embeddings = {}     # D -> the candidates' embeddings, computed once
    decoded_err = {n: [] for n in names}
    fit = {n: [] for n in names}
    rows = []
    step = max(1, len(views) // args.views)
    for i in list(range(0, len(views), step))[:args.views]:
        sample = views.load_numpy(i)
        rgb = _uint8_rgb(sample)
        desc = descriptor_image(model, rgb, depth=sample["depth"], K=sample["K"])
        u, v, pts = object_points(sample, pose(i))
        if not len(u):
            continue
        D = desc.shape[0]
        if D not in embeddings:
            embeddings[D] = coordinate_embedding(torch.from_numpy(candidates), D, sigma).float().numpy()
        emb = embeddings[D]
        own = coordinate_embedding(torch.from_numpy(pts), D, sigma).float().numpy()
        f = desc[:, v, u].T
        decoded = candidates[np.argmax(f @ emb.T, axis=1)]
        cos = np.sum(f * own, axis=1)
        err = np.linalg.norm(decoded - pts, axis=1)
        for n in names:
            near = np.linalg.norm(pts - parts[n], axis=1) <= NEAR_PART_M
            if near.any():
                decoded_err[n].extend(err[near].tolist())
                fit[n].extend(cos[near].tolist())

        def paint(points):
            img = (rgb * 0.3).astype(np.uint8)
            img[v, u] = np.clip((points - lo) / np.maximum(hi - lo, 1e-9) * 255.0, 0, 255).astype(np.uint8)
            return img

        rows.append(np.hstack([rgb, paint(pts), paint(decoded)]))
    if not rows:
        raise SystemExit(f"semantic_coordinate_map: {args.dataset}: no drawn view shows the target")
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    sheet = cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"semantic_coordinate_map: could not write {out}")
    print(f"{len(rows)} views of {args.dataset}; columns: image | true object coordinates | decoded (x, y, z as R, G, "
          f"B over the object's extent); sigma {sigma} m")
    print("| part | target pixels within 1 cm | median decoded error, mm | median cosine with its own embedding |")
    print("|---|---:|---:|---:|")
    for n in names:
        if decoded_err[n]:
            print(f"| {n} | {len(decoded_err[n])} | {1000 * np.median(decoded_err[n]):.1f} | {np.median(fit[n]):.2f} |")
        else:
            print(f"| {n} | 0 | - | - |")
    print(f"picture: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
