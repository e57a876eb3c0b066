"""BatchNorm at inference, both ways: the semantic-point evaluation of checkpoints with the BatchNorm statistics they
were saved with switched to ``running`` (PyTorch's default: the averages of training) and to ``image`` (each image's
own statistics, ``model.norm_statistics``), side by side in one table with the two floors.

    .venv/bin/python scripts/semantic_norm_statistics.py data/demo_duck_eval OUT_DIR NAME=models/demo/last.pt \
        [NAME2=other.pt ...] [--max-views 120] [--threads 1]

Rows ``NAME/running`` and ``NAME/image`` per checkpoint (the weights are the same; only what ``eval()`` normalises
with differs). The untrained floor always uses running statistics (``evaluation.semantic.untrained_twin``). Writes
``OUT_DIR/semantic_report.json`` and the matches PNG; prints the table and the per-part median pixel errors.
"""
from __future__ import annotations

import argparse

import torch

from dense_descriptor_grasp.evaluation.semantic import semantic_point_evaluation
from dense_descriptor_grasp.model.checkpoint import load_model


def both_ways(path):
    """``{"running": model, "image": model}``: the checkpoint twice, differing only in ``norm_statistics``."""
    out = {}
    for mode in ("running", "image"):
        model = load_model(path).eval()
        model.norm_statistics = mode
        out[mode] = model
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("checkpoints", nargs="+", metavar="NAME=CHECKPOINT")
    p.add_argument("--max-views", type=int, default=120)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = {}
    for spec in args.checkpoints:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"checkpoints are given as NAME=PATH, got {spec!r}")
        for mode, model in both_ways(path).items():
            methods[f"{name}/{mode}"] = model
    report = semantic_point_evaluation(methods, args.dataset, include_floors=True, out_dir=args.out,
                                       max_views=args.max_views, progress=False)
    print(report["table_markdown"])
    for name, stats in report["methods"].items():
        print(name, {part: None if v["median_px"] is None else round(v["median_px"], 1)
                     for part, v in stats["per_part"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
