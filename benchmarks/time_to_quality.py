"""Time to quality: the semantic-point error on held-out clutter every few minutes of training, per method.

    python -m benchmarks.time_to_quality --train-dataset data/clutter_train --eval-dataset data/clutter_eval \
        --presets clutter paper --minutes 30 --eval-every 5 --threads 1

Each preset (``dense_descriptor_grasp/training/presets.py``) trains in its own process (side by side, one torch
thread each by default, so both see the same machine load) in slices of ``--eval-every`` minutes of training
wall clock; after each slice the run's ``last.pt`` is evaluated with the semantic-point evaluation
(``evaluation/semantic.py``: named parts of the target matched over the whole image of held-out cluttered
scenes) and training resumes (``--resume``). Evaluation time is not counted as training time. Step 0 is the
untrained network of the same architecture. Writes ``benchmarks/results/time_to_quality.{json,md,png}``;
a killed run continues where it stopped (each slice's result is stored before the next starts).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dense_descriptor_grasp.training.threads import threads_arg

from benchmarks._common import RESULTS_DIR, atomic_write_json, machine_description, machine_line, markdown_table, save_figure

NAME = "time_to_quality"
METRICS = ("median_px", "pck_3", "pck_5", "pck_10", "median_mm", "within_10mm")


def _summary(report: dict, name: str) -> dict:
    """The metrics of method ``name`` in a semantic-evaluation report."""
    row = report["methods"][name]
    return {k: row.get(k) for k in METRICS + ("matches",)}


def run_one(args) -> int:
    """Worker: train preset ``args.worker`` in slices and evaluate after each (one process per preset)."""
    import torch

    from dense_descriptor_grasp.evaluation.semantic import semantic_point_evaluation
    from dense_descriptor_grasp.model.checkpoint import load_model
    from dense_descriptor_grasp.training.config import load_config
    from dense_descriptor_grasp.training.presets import preset_overrides
    from dense_descriptor_grasp.training.train import run_training

    torch.set_num_threads(1 if args.threads == "auto" else args.threads)   # auto: the evaluations run on one
    preset = args.worker
    out = Path(args.runs) / preset
    state_path = out / "time_to_quality.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"preset": preset, "points": []}
    overrides = preset_overrides(preset) + list(args.set or []) + [
        f"data.dataset={json.dumps(args.train_dataset)}", f"train.out={json.dumps(str(out))}",
        "train.steps=100000000", f"train.seed={args.seed}", "train.tensorboard=false",
        f"train.num_threads={args.threads}", f"train.checkpoint_every={args.checkpoint_every}",
        f"train.device={json.dumps(args.device)}",
    ]
    if args.width and args.height:
        overrides.append(f"data.image_size=[{args.height}, {args.width}]")

    def evaluate(minutes: float) -> None:
        model = load_model(out / "last.pt", device=args.device)
        # a run trained at --width x --height sees the held-out views at that size too (descriptors and the error
        # stay at the views' own size)
        report = semantic_point_evaluation({preset: model}, args.eval_dataset, object_name=args.object,
                                           max_views=args.max_views, device=args.device,
                                           include_floors=not state["points"],
                                           input_size="train" if args.width and args.height else None)
        point = {"minutes": round(minutes, 3), "step": int(model.checkpoint_info["step"]),
                 **_summary(report, preset)}
        if not state["points"]:
            state["floors"] = {k: _summary(report, k) for k in report["methods"] if k != preset}
        state["points"].append(point)
        atomic_write_json(state_path, state)
        print(f"[{preset}] {minutes:5.1f} min, step {point['step']}: median {point['median_px']} px, "
              f"{point['median_mm']} mm, within 10 mm {point['within_10mm']}", flush=True)

    if not (out / "last.pt").is_file():  # the untrained network at minute 0
        cfg = load_config(args.config, overrides + ["train.steps=0"])
        run_training(cfg, progress=False, log=lambda m: None)
    if not state["points"]:
        evaluate(0.0)
    minutes = state["points"][-1]["minutes"]
    while minutes < args.minutes - 1e-6:
        slice_minutes = min(args.eval_every, args.minutes - minutes)
        # train.max_minutes is the run folder's total budget (the checkpoint counts the minutes already trained)
        cfg = load_config(args.config, overrides + [f"train.max_minutes={minutes + slice_minutes}"])
        summary = run_training(cfg, resume="auto", progress=False, log=lambda m: None)
        if summary["status"] != "ok":
            print(f"[{preset}] training stopped: {summary['status']}", file=sys.stderr)
            return 1
        minutes += summary["seconds"] / 60.0
        evaluate(minutes)
    return 0


def plot(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for (metric, label), ax in zip((("median_px", "median pixel error (px)"), ("median_mm", "median 3-D error (mm)"),
                                    ("within_10mm", "fraction within 10 mm")), axes):
        for preset, run in results["runs"].items():
            xs = [p["minutes"] for p in run["points"]]
            ys = [p[metric] for p in run["points"]]
            ax.plot(xs, ys, marker="o", label=preset)
        floors = next((r.get("floors") for r in results["runs"].values() if r.get("floors")), {}) or {}
        for name, row in floors.items():
            if row.get(metric) is not None:
                ax.axhline(row[metric], ls="--", lw=1, color="grey")
                ax.text(0, row[metric], f" {name}", va="bottom", fontsize=8, color="grey")
        ax.set_xlabel("training minutes (wall clock, this machine)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"time to quality on held-out clutter ({Path(results['eval_dataset']).name})")
    fig.tight_layout()
    return save_figure(fig, path)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks.time_to_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--train-dataset")
    p.add_argument("--eval-dataset", help="held-out cluttered scenes (another seed, eval distractors)")
    p.add_argument("--presets", nargs="+", default=["clutter_rgbd", "paper"])
    p.add_argument("--minutes", type=float, default=30.0, help="training minutes per preset")
    p.add_argument("--eval-every", type=float, default=5.0, help="minutes of training between evaluations")
    p.add_argument("--threads", type=threads_arg, default=1, metavar="N|auto",
                   help="torch threads per preset process (train.num_threads; auto: one or all cores, measured)")
    p.add_argument("--max-views", type=int, default=60, help="held-out views evaluated each time")
    p.add_argument("--object", default="duck")
    p.add_argument("--config", default=None)
    p.add_argument("--set", action="append", default=[], help="extra section.key=value override for every preset")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", default="models/time_to_quality", help="run folders, one per preset")
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder of the result files")
    p.add_argument("--from-json", default=None, metavar="JSON",
                   help="only rewrite the markdown and PNG from an earlier run's JSON (no training)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _f(x, digits):
    return "" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) and x == x else str(x))


def write_report(results: dict, out: Path) -> str:
    """``time_to_quality.{json,md,png}`` in ``out`` from a results dict; returns the markdown."""
    from dense_descriptor_grasp.atomic_io import atomic_write_text

    runs = results["runs"]
    atomic_write_json(out / f"{NAME}.json", results)
    rows = []
    for p, run in runs.items():
        for pt in run["points"]:
            rows.append([p, _f(pt["minutes"], 1), pt["step"], _f(pt["median_px"], 1), _f(pt["median_mm"], 1),
                         _f(pt["pck_3"], 3), _f(pt["pck_5"], 3), _f(pt["pck_10"], 3), _f(pt["within_10mm"], 3)])
    floors = next((r.get("floors") for r in runs.values() if r.get("floors")), {}) or {}
    for name, row in floors.items():
        rows.append([f"floor: {name}", "", "", _f(row["median_px"], 1), _f(row["median_mm"], 1), _f(row["pck_3"], 3),
                     _f(row["pck_5"], 3), _f(row["pck_10"], 3), _f(row["within_10mm"], 3)])
    table = markdown_table(["preset", "minutes", "step", "median px", "median mm", "PCK@3", "PCK@5", "PCK@10",
                            "within 10 mm"], rows)
    matches = next((pt.get("matches") for r in runs.values() for pt in r["points"]), None)
    md = (f"# Time to quality\n\n`{results['command']}`\n\nMachine: {machine_line(results['machine'])}; each preset "
          f"trains in its own process with the given torch threads; load average at the end "
          f"{results.get('load_average_end')}.\n\nHeld-out set: `{results['eval_dataset']}` ({matches} part matches "
          f"per evaluation). Minutes are training wall clock (evaluation excluded).\n\n{table}\n"
          f"Wall clock of the whole benchmark: {results['wall_seconds']} s.\n")
    atomic_write_text(out / f"{NAME}.md", md)
    if runs:
        plot(results, out / f"{NAME}.png")
    return md


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.worker:
        return run_one(args)
    if not args.from_json and not (args.train_dataset and args.eval_dataset):
        print("time_to_quality: --train-dataset and --eval-dataset are required (or --from-json)", file=sys.stderr)
        return 2
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        print(write_report(results, Path(args.out)))
        return 0
    machine = machine_description()
    t0 = time.time()
    argv = list(sys.argv[1:] if argv is None else argv)
    procs = {p: subprocess.Popen([sys.executable, "-m", "benchmarks.time_to_quality", *argv, "--worker", p])
             for p in args.presets}
    codes = {p: proc.wait() for p, proc in procs.items()}
    runs = {}
    for p in args.presets:
        path = Path(args.runs) / p / "time_to_quality.json"
        if path.is_file():
            runs[p] = json.loads(path.read_text())
    results = {"machine": machine, "command": "python -m benchmarks.time_to_quality " + " ".join(argv),
               "eval_dataset": args.eval_dataset, "train_dataset": args.train_dataset, "runs": runs,
               "exit_codes": codes, "wall_seconds": round(time.time() - t0, 1),
               "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    print(write_report(results, Path(args.out)))
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
