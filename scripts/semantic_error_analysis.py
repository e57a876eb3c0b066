"""Where the wrong matches of a semantic-point evaluation go, and whether the error depends on the object's size.

    .venv/bin/python scripts/semantic_error_analysis.py benchmarks/results/semantic_object_pose/semantic_report.json \
        [--method demo] [--dataset data/demo_duck_eval]

Reads a ``semantic_report.json`` written by ``evaluate_model --semantic`` and, for one method, prints per named
part: how many predicted pixels land on the target, on a distractor or on the background (from the dataset's
mask PNG and camera JSON), and the median pixel error; then, for the matches more than 10 px off, which named part's
true pixel lies nearest to the prediction (every part projected with the view's camera and target pose, visible or
not: a confusion of, say, the beak tip with the head top shows as such); then the median pixel / mm error and the
share within 10 mm per quartile of the target's size in the image (square root of its mask area, in pixels); then,
for reports that record each part's ``support`` (how many target pixels lie within 1 cm of it), the median error
per part when both the query and the reference view see at least k such pixels; then, for reports that record the
grasp node's ratio test per match (``ratio``), what a stricter ``max_ratio`` would trade: the share of matches the
node would still accept and their median errors.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", help="semantic_report.json")
    p.add_argument("--method", default=None, help="method row (default: the first one)")
    p.add_argument("--dataset", default=None,
                   help="the evaluated dataset folder (default: the report's, relative to the current folder)")
    args = p.parse_args(argv)
    report = json.loads(Path(args.report).read_text())
    root = Path(args.dataset or report["settings"]["dataset"])
    if not (root / "camera").is_dir() or not (root / "mask").is_dir():
        raise SystemExit(f"{args.report}: its dataset {root} (camera/ and mask/) is not here; run from the folder the "
                         "evaluation ran in or pass --dataset PATH")
    method = args.method or next(iter(report["methods"]))
    if method not in report["methods"]:
        raise SystemExit(f"{args.report}: no method {method!r}; methods: {list(report['methods'])}")
    where, px_by_part, rows, size_of = {}, {}, [], {}
    parts = {k: np.asarray(v, dtype=np.float64) for k, v in (report.get("settings", {}).get("parts") or {}).items()}
    confused = {}   # part -> {nearest part to the wrong prediction: count}
    for m in report["matches"]:
        vid, part, r = m["view_id"], m["part"], m["methods"][method]
        camera = json.loads((root / "camera" / f"{vid}.json").read_text())
        mask = cv2.imread(str(root / "mask" / f"{vid}.png"), cv2.IMREAD_UNCHANGED)
        targets = [o["mask_value"] for o in camera.get("objects", []) if o.get("role", "target") == "target"]
        u, v = (int(round(c)) for c in r["uv"])
        u, v = min(max(u, 0), mask.shape[1] - 1), min(max(v, 0), mask.shape[0] - 1)
        kind = "target" if mask[v, u] in targets else ("distractor" if mask[v, u] > 0 else "background")
        where.setdefault(part, {"target": 0, "distractor": 0, "background": 0})[kind] += 1
        px_by_part.setdefault(part, []).append(r["px_error"])
        nearest = _nearest_part(camera, targets, parts, r["uv"]) if r["px_error"] > WRONG_PX else None
        if nearest is not None:
            confused.setdefault(part, {}).setdefault(nearest, 0)
            confused[part][nearest] += 1
        if vid not in size_of:
            size_of[vid] = float(np.sqrt(np.isin(mask, targets).sum()))
        mm = r["mm_error"] if r["mm_error"] is not None else float("inf")
        rows.append((size_of[vid], r["px_error"], mm))
    print(f"{args.report}, method {method!r}: where the predicted pixel lands, per part")
    for part, counts in where.items():
        print(f"  {part:>12}: {counts}, median {np.median(px_by_part[part]):.1f} px ({len(px_by_part[part])} matches)")
    if confused:
        print(f"matches more than {WRONG_PX:.0f} px off: the named part whose true pixel is nearest to the prediction")
        for part, counts in confused.items():
            ranked = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
            print(f"  {part:>12}: {ranked}")
    rows = np.asarray(rows)
    edges = np.quantile(rows[:, 0], [0, 0.25, 0.5, 0.75, 1])
    print("by target size (sqrt of the target mask area, px):")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] <= hi)]
        print(f"  {lo:5.1f}-{hi:5.1f} px: {len(sel)} matches, median {np.median(sel[:, 1]):.1f} px, "
              f"{np.median(sel[:, 2]):.1f} mm, within 10 mm {np.mean(sel[:, 2] <= 10):.2f}")
    _by_support(report["matches"], method)
    ratios = [m["methods"][method].get("ratio") for m in report["matches"]]
    if ratios and all(r is not None for r in ratios):
        ratios = np.asarray(ratios, dtype=np.float64)
        print("by the grasp node's max_ratio (best / second-best distance outside exclusion_radius, at most R):")
        for limit in (0.95, 0.9, 0.8, 0.7, 0.6, 0.5):
            sel = rows[ratios <= limit]
            if not len(sel):
                print(f"  R = {limit:.2f}: no match accepted")
                continue
            print(f"  R = {limit:.2f}: {len(sel)} of {len(rows)} accepted ({len(sel) / len(rows):.2f}), median "
                  f"{np.median(sel[:, 1]):.1f} px, {np.median(sel[:, 2]):.1f} mm, within 10 mm "
                  f"{np.mean(sel[:, 2] <= 10):.2f}")
    return 0


WRONG_PX = 10.0
SUPPORT_LEVELS = (0, 10, 20, 40)


def _by_support(matches, method) -> None:
    """Per part, the median pixel error of the matches whose part is seen by at least k target pixels within 1 cm of
    it (``support``) in both the query and the reference view; skipped for reports without support."""
    if not matches or any(m.get("query_support") is None and m.get("reference_support") is None for m in matches):
        return
    print("by how much of the part both views see (support: target pixels within 1 cm, in query and reference >= k):")
    for part in dict.fromkeys(m["part"] for m in matches):
        cells = []
        for k in SUPPORT_LEVELS:
            px = [m["methods"][method]["px_error"] for m in matches if m["part"] == part
                  and (m.get("query_support") or 0) >= k and (m.get("reference_support") or 0) >= k]
            cells.append(f">= {k}: {np.median(px):.1f} px ({len(px)})" if px else f">= {k}: -")
        print(f"  {part:>12}: " + ", ".join(cells))


def _nearest_part(camera: dict, targets, parts: dict, uv):
    """Name of the part whose projection in this view is nearest to pixel ``uv``; None without the geometry."""
    target = [o for o in camera.get("objects", []) if o.get("mask_value") in targets and "T_world_object" in o]
    if not parts or not target or "K" not in camera or "T_world_camera" not in camera:
        return None
    T = np.linalg.inv(np.asarray(camera["T_world_camera"], np.float64)) @ np.asarray(target[0]["T_world_object"],
                                                                                    np.float64)
    K = np.asarray(camera["K"], np.float64)
    best, best_d = None, np.inf
    for name, p in parts.items():
        x = T[:3, :3] @ p + T[:3, 3]
        if x[2] <= 0:
            continue
        d = np.hypot(K[0, 0] * x[0] / x[2] + K[0, 2] - uv[0], K[1, 1] * x[1] / x[2] + K[1, 2] - uv[1])
        if d < best_d:
            best, best_d = name, d
    return best


if __name__ == "__main__":
    raise SystemExit(main())
