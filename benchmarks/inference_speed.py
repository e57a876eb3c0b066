"""Descriptor images per second vs the bare ResNet-34 trunk, at 320x240 and 640x480, for D in {16, 64, 512}.

```
python -m benchmarks.inference_speed            # sizes 320x240 640x480, D in 16 64 512
python -m benchmarks.inference_speed --quick    # 320x240 only, D = 64 (add --sizes 128x96 for a tiny smoke run)
```

For each image size, batch 1, in ``eval()`` mode under ``torch.inference_mode()``:

- **trunk**: ``model.trunk(x)`` on an already ImageNet-normalised image: the ResNet-34 layers only, the lower bound
  of any dense-descriptor network built on it;
- **descriptors D**: ``model.descriptors(rgb)``, the network part of the eq. 1 path a ROS node runs: input
  normalisation, trunk, 1x1 projection to D, bilinear upsampling to the input size, L2 normalisation over D. (The
  descriptor node calls it through ``model.inference.descriptor_image``, which adds the uint8 -> float conversion,
  the optional input resize and the copy to numpy; ``benchmarks.node_pipeline`` times that whole node.)

The configurations of one size are timed **interleaved** (trunk, D=16, D=64, D=512, trunk, ...) for ``--repeats``
rounds after ``--warmup`` untimed rounds, so that a change in the load of the shared machine hits all of them alike;
fps = 1 / median time. ``ratio`` = descriptor fps / trunk fps at the same size (1.0 = the head, upsampling and
normalisation cost nothing). Writes ``benchmarks/results/inference_speed.{json,md,png}`` (or ``--output-dir``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

SIZES = ((320, 240), (640, 480))  # (width, height)
DIMS = (16, 64, 512)
QUICK_SIZES = ((320, 240),)
QUICK_DIMS = (64,)


def _parse_size(text: str):
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT like 640x480, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"size must be at least 32x32 (output stride 32), got {text!r}")
    return (w, h)


def measure(sizes, dims, repeats: int, warmup: int, seed: int = 0, progress: bool = True) -> list:
    """Median seconds per image of the trunk and of ``descriptors()`` for each D, per size; a list of result dicts."""
    import torch
    from tqdm import tqdm

    from dense_descriptor_grasp.model import DenseDescriptorNet

    torch.manual_seed(seed)
    models = {d: DenseDescriptorNet(descriptor_dim=d, num_keypoints=8, method="keypoint").eval() for d in dims}
    trunk_model = models[dims[0]]
    # one trunk for everything: share its weights so only the head differs between configurations
    for m in models.values():
        m.trunk = trunk_model.trunk
    results = []
    total = len(sizes) * (warmup + repeats)
    bar = tqdm(total=total, desc="inference_speed", unit="round", disable=not progress)
    for (w, h) in sizes:
        rgb = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
        x = (rgb - trunk_model.image_mean) / trunk_model.image_std
        runs = {"trunk": lambda: trunk_model.trunk(x)}
        for d in dims:
            runs[f"D={d}"] = (lambda m: (lambda: m.descriptors(rgb)))(models[d])
        times = {k: [] for k in runs}
        with torch.inference_mode():
            for r in range(warmup + repeats):
                for name, fn in runs.items():
                    t = time.perf_counter()
                    out = fn()
                    dt = time.perf_counter() - t
                    if r >= warmup:
                        times[name].append(dt)
                    del out
                bar.update(1)
        trunk_s = statistics.median(times["trunk"])
        results.append({"width": w, "height": h, "config": "trunk", "descriptor_dim": None,
                        "median_s": round(trunk_s, 5), "fps": round(1 / trunk_s, 3), "ratio": 1.0,
                        "times_s": [round(t, 5) for t in times["trunk"]]})
        for d in dims:
            s = statistics.median(times[f"D={d}"])
            results.append({"width": w, "height": h, "config": "descriptors", "descriptor_dim": d,
                            "median_s": round(s, 5), "fps": round(1 / s, 3), "ratio": round(trunk_s / s, 3),
                            "times_s": [round(t, 5) for t in times[f"D={d}"]]})
    bar.close()
    return results


def evaluate_targets(results) -> list:
    r = next((x for x in results if x["config"] == "descriptors" and x["descriptor_dim"] == 64
              and (x["width"], x["height"]) == (640, 480)), None)
    value = None if r is None else r["ratio"]
    return [{"target": "descriptor fps / bare-trunk fps at 640x480, D=64 >= 0.8", "value": value, "limit": 0.8,
             "met": None if value is None else bool(value >= 0.8)}]


def write_outputs(report: dict, out_dir: Path) -> dict:
    from ._common import atomic_write_json, atomic_write_text, machine_line, markdown_table, save_figure

    out_dir = Path(out_dir)
    rows = []
    for r in report["results"]:
        what = "bare trunk (ResNet-34 layers)" if r["config"] == "trunk" else f"descriptors(), D={r['descriptor_dim']}"
        rows.append([f"{r['width']}x{r['height']}", what, f"{r['median_s'] * 1000:.1f}", f"{r['fps']:.2f}", f"{r['ratio']:.3f}"])
    s = report["settings"]
    md = ["# Inference speed: dense descriptor images vs the bare trunk\n\n",
          f"Command: `{report['command']}`  \n",
          f"Machine: {machine_line(report['machine'])}  \n",
          f"Setting: batch 1, eval mode, torch.inference_mode, {s['warmup']} warm-up + {s['repeats']} timed rounds per size, "
          "configurations interleaved within each round; ms = median wall time per image; ratio = fps / trunk fps.\n\n",
          markdown_table(["size", "what", "ms / image", "images / s", "ratio to trunk"], rows),
          "\n## Target of issue 5\n\n",
          markdown_table(["target", "measured", "met"],
                         [[t["target"], "n/a" if t["value"] is None else t["value"],
                           "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")] for t in report["targets"]])]
    files = {"json": out_dir / "inference_speed.json", "md": out_dir / "inference_speed.md", "png": out_dir / "inference_speed.png"}
    atomic_write_text(files["md"], "".join(md))
    atomic_write_json(files["json"], report)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [(w, h) for (w, h) in s["sizes"]]
    labels = ["trunk"] + [f"D={d}" for d in s["dims"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        fps = []
        for (w, h) in sizes:
            r = next(x for x in report["results"] if (x["width"], x["height"]) == (w, h)
                     and (x["config"] == "trunk" if label == "trunk" else x["descriptor_dim"] == int(label[2:])))
            fps.append(r["fps"])
        ax.bar([j + i * width for j in range(len(sizes))], fps, width, label="bare trunk" if label == "trunk" else f"descriptors {label}")
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(sizes))])
    ax.set_xticklabels([f"{w}x{h}" for (w, h) in sizes])
    ax.set_ylabel("images per second (batch 1, CPU)")
    ax.set_title("Descriptor extraction vs bare ResNet-34 trunk", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure(fig, files["png"])
    plt.close(fig)
    return {k: str(v) for k, v in files.items()}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.inference_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one size (320x240) and D=64 only (smoke test)")
    p.add_argument("--sizes", type=_parse_size, nargs="+", default=None, help="WIDTHxHEIGHT ... (default 320x240 640x480)")
    p.add_argument("--dims", type=int, nargs="+", default=None, help=f"descriptor dimensions (default {DIMS})")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per size (default 15, --quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds per size (default 2, --quick 1)")
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's default, one per core); 1 on a machine shared with other jobs")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from ._common import RESULTS_DIR, machine_description

    sizes = list(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    dims = list(args.dims or (QUICK_DIMS if args.quick else DIMS))
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 15)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if repeats < 1 or warmup < 0:
        raise SystemExit("--repeats must be >= 1 and --warmup >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = machine_description()
    results = measure(sizes, dims, repeats, warmup)
    cmd = "python -m benchmarks.inference_speed" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(argv if argv is not None else sys.argv[1:]))
    report = {
        "command": cmd,
        "machine": machine,
        "machine_after": {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"sizes": [list(s) for s in sizes], "dims": dims, "repeats": repeats, "warmup": warmup, "batch_size": 1,
                     "threads": args.threads},
        "results": results,
        "targets": evaluate_targets(results),
    }
    out_dir = Path(args.output_dir) if args.output_dir else RESULTS_DIR
    files = write_outputs(report, out_dir)
    for r in results:
        what = "trunk" if r["config"] == "trunk" else f"D={r['descriptor_dim']}"
        print(f"{r['width']}x{r['height']} {what:6s} {r['fps']:7.2f} img/s  ratio {r['ratio']:.3f}")
    for t in report["targets"]:
        print(f"target: {t['target']}: measured {t['value']} -> {'n/a' if t['met'] is None else ('met' if t['met'] else 'NOT met')}")
    print("wrote", ", ".join(files.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
