"""What a part's reference descriptor lights up in the query view: a picture per match of a semantic evaluation.

    .venv/bin/python scripts/semantic_match_heatmaps.py REPORT CHECKPOINT OUT.png --part beak_tip \
        [--min-support 30] [--count 6] [--method demo] [--dataset data/demo_duck_eval]

Reads a ``semantic_report.json`` of ``evaluate_model --semantic`` (its matches name the query view, the reference
view and the reference pixel), recomputes the checkpoint's descriptors of both views with the one inference path
(``model.inference.descriptor_image`` / ``descriptors_at``), and draws one row per match: the reference view with
the reference pixel (blue), the query view with the part's true pixel (green) and the method's match (red), and the
grasp node's heatmap of the L2 distance to the reference descriptor (``grasping.matching.heatmap``: the best ~2 %
of the pixels glow) over the query. ``--min-support K`` keeps the matches whose part both views see with at least K
target pixels within 1 cm (the report's ``query_support`` / ``reference_support``). Pixels are doubled in the PNG.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

SCALE = 2
COLOURS = {"reference": (0, 0, 255), "truth": (0, 255, 0), "match": (255, 0, 0)}   # RGB


def _circle(img: np.ndarray, uv, colour) -> None:
    u, v = (int(round(c * SCALE + (SCALE - 1) / 2)) for c in uv)
    cv2.circle(img, (u, v), 3 * SCALE, colour, 1)


def match_rows(report: dict, part: str, min_support: int, count: int):
    """The report's matches of ``part`` that both views see with ``support >= min_support``, at most ``count``."""
    parts = sorted({m["part"] for m in report["matches"]})
    if part not in parts:
        raise SystemExit(f"no matches of part {part!r} in the report; its parts: {parts}")
    rows = [m for m in report["matches"] if m["part"] == part and m.get("reference_view_id") is not None
            and (m.get("query_support") or 0) >= min_support and (m.get("reference_support") or 0) >= min_support]
    if not rows:
        raise SystemExit(f"no match of {part!r} with support >= {min_support} in both views; lower --min-support")
    return rows[:count]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", help="semantic_report.json")
    p.add_argument("checkpoint", help="the model the report's method row was computed with")
    p.add_argument("out", help="PNG to write")
    p.add_argument("--part", required=True, help="named part, e.g. beak_tip")
    p.add_argument("--method", default=None, help="method row whose match is drawn (default: the first one)")
    p.add_argument("--dataset", default=None, help="the evaluated dataset (default: the report's)")
    p.add_argument("--min-support", type=int, default=0)
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.grasping.matching import colorize_heatmap, distance_maps, heatmap
    from dense_descriptor_grasp.model.checkpoint import load_model
    from dense_descriptor_grasp.model.inference import descriptor_image, descriptors_at

    torch.set_num_threads(args.threads)
    report = json.loads(Path(args.report).read_text())
    method = args.method or next(iter(report["methods"]))
    if method not in report["methods"]:
        raise SystemExit(f"{args.report}: no method {method!r}; methods: {list(report['methods'])}")
    rows = match_rows(report, args.part, args.min_support, args.count)
    root = args.dataset or report["settings"]["dataset"]
    if not Path(root, "camera").is_dir():
        raise SystemExit(f"{args.report}: its dataset {root} is not here; pass --dataset PATH")
    dataset = RGBDDataset(root, split=None, validate=False)
    model = load_model(args.checkpoint).eval()

    def view(view_id):
        s = dataset.load_numpy(dataset.index_of(view_id))
        return s, descriptor_image(model, s["rgb"], depth=s["depth"], K=s["K"])

    tiles = []
    for m in rows:
        ref, ref_desc = view(m["reference_view_id"])
        query, query_desc = view(m["view_id"])
        reference = descriptors_at(ref_desc, np.asarray([m["reference_uv"]], np.float64))
        heat = heatmap(distance_maps(query_desc, reference, "l2"))
        panels = [np.ascontiguousarray(x) for x in (ref["rgb"], query["rgb"], colorize_heatmap(heat, query["rgb"]))]
        panels = [cv2.resize(x, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST) for x in panels]
        _circle(panels[0], m["reference_uv"], COLOURS["reference"])
        predicted = m["methods"][method].get("uv")
        for panel in panels[1:]:
            _circle(panel, m["true_uv"], COLOURS["truth"])
            if predicted is not None:
                _circle(panel, predicted, COLOURS["match"])
        tiles.append(np.hstack(panels))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(np.vstack(tiles), cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"{out}: could not be written")
    print(f"{out}: {len(tiles)} matches of {args.part!r} (reference | query: truth green, {method} red | heatmap)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
