"""Peak process memory and time of one training step: keypoint method vs the NT-Xent baseline, over D.

```
python -m benchmarks.training_memory            # D in 3 8 16 32 64 128 256 512, 640x480, batch 1, 128 corr.
python -m benchmarks.training_memory --quick    # D in 3 512 only (add --height/--width for a tiny smoke run)
```

Each (method, D) runs in a **fresh Python subprocess** (``--worker``), so no allocator state, cached buffers or
high-water mark leaks from one configuration into the next. In the worker:

1. ``import torch`` + the package -> RSS ``import_mb``;
2. build ``DenseDescriptorNet(D, num_keypoints=8, method)`` in ``train()`` mode, an Adam optimiser, and one synthetic
   pair batch (batch 1, two 640x480 views, an elliptic object mask, a plane of depth, an augmentation-like rigid
   motion between the views, 128 correspondences) -> RSS ``baseline_mb`` (everything that exists before a step);
3. ``--steps`` training steps exactly as ``train_model`` does them: ``training.objective.compute_losses`` (twin
   forward of A and B in one trunk pass + the method's loss terms), ``total.backward()``, ``optimizer.step()``,
   ``zero_grad(set_to_none=True)``;
4. ``peak_mb`` = the process's RSS high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after the steps:
   the paper's "memory of training" on a CPU. ``step_cost_mb = peak_mb - baseline_mb`` is what the step itself adds
   (activations, gradients, Adam state). ``step_s`` is the median wall time of the steps after the first one.
5. ``train_mb = peak_mb - import_mb``: everything training allocates (weights, Adam state, batch, activations,
   gradients) without the imported libraries' own memory (718 MiB for this CUDA build of torch, the same for every
   configuration). This is the CPU analogue of the paper's Table 1, which counts GPU memory: the tensors of training
   live there, the framework's code and host-side state do not.

Writes ``benchmarks/results/training_memory.{json,md,png}`` (or ``--output-dir``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DIMS = (3, 8, 16, 32, 64, 128, 256, 512)
QUICK_DIMS = (3, 512)
METHODS = ("keypoint", "ntxent")
# The paper's Table 1 (GPU, 48 GB card, batch 1, 128 correspondences): GB of GPU memory by D.
PAPER_GB = {
    "ntxent": {3: 9.38, 8: 13.72, 16: 20.48, 32: 30.07},
    "keypoint": {3: 4.76, 32: 4.87, 512: 7.92},
}
RESULT_PREFIX = "TRAINING_MEMORY_RESULT "


# ----------------------------------------------------------------------------------------------- worker
def _maxrss_mb() -> float:
    """The RSS high-water mark of this process in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def synthetic_pair_batch(height: int, width: int, num_correspondences: int, seed: int = 0) -> dict:
    """One pair batch (batch 1) following docs/ARCHITECTURE.md, for benchmarking only.

    An elliptic object mask in the middle of the image on a plane 0.6 m away (background 0.9 m), K with
    ``f = 0.82 W``, view B = view A moved by a 10 degree rotation about y and 3 cm along x (an augmentation-like
    rigid motion: ``T_world_cam_a = I``), and ``num_correspondences`` pixels of A's mask with their exact partners in
    B (``valid`` where the partner lands inside the image).
    """
    import torch

    from dense_descriptor_grasp.geometry.camera import backproject, project
    from dense_descriptor_grasp.geometry.se3 import make_se3, se3_apply, se3_inverse, so3_exp

    g = torch.Generator().manual_seed(seed)
    H, W = height, width
    vs, us = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    mask = (((us - W / 2) / (0.3 * W)) ** 2 + ((vs - H / 2) / (0.3 * H)) ** 2) <= 1.0
    depth = torch.where(mask, torch.tensor(0.6), torch.tensor(0.9))
    f = 0.82 * W
    K = torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])
    R = so3_exp(torch.tensor([0.0, 0.1745, 0.0]))
    T_b_a = make_se3(R, torch.tensor([0.03, 0.0, 0.0]))
    T_world_cam_b = se3_inverse(T_b_a)
    vv, uu = torch.nonzero(mask, as_tuple=True)
    pick = torch.randint(0, vv.numel(), (num_correspondences,), generator=g)
    uv_a = torch.stack([uu[pick], vv[pick]], dim=1).float()
    X_a = backproject(uv_a, depth[vv[pick], uu[pick]], K)
    uv_b, _ = project(se3_apply(T_b_a, X_a), K)
    valid = (uv_b[:, 0] >= 0) & (uv_b[:, 0] <= W - 1) & (uv_b[:, 1] >= 0) & (uv_b[:, 1] <= H - 1)
    uv_b = torch.stack([uv_b[:, 0].clamp(0, W - 1), uv_b[:, 1].clamp(0, H - 1)], dim=1)
    rgb_a = torch.rand(1, 3, H, W, generator=g)
    rgb_b = torch.rand(1, 3, H, W, generator=g)
    return {
        "rgb_a": rgb_a, "rgb_b": rgb_b,
        "depth_a": depth[None].clone(), "depth_b": depth[None].clone(),
        "mask_a": mask[None].clone(), "mask_b": mask[None].clone(),
        "K_a": K[None].clone(), "K_b": K[None].clone(),
        "T_world_cam_a": torch.eye(4)[None], "T_world_cam_b": T_world_cam_b[None].float(),
        "uv_a": uv_a[None], "uv_b": uv_b[None].float(), "valid": valid[None],
        "fit_residual": torch.zeros(1),
    }


def run_worker(method: str, dim: int, height: int, width: int, num_correspondences: int, steps: int,
               num_keypoints: int = 8, seed: int = 0) -> dict:
    """Measure one configuration in this process (call it in a fresh process; see the module docstring)."""
    t0 = time.perf_counter()
    import torch

    from dense_descriptor_grasp.model import DenseDescriptorNet
    from dense_descriptor_grasp.training.config import LossConfig
    from dense_descriptor_grasp.training.objective import compute_losses

    import_mb = _maxrss_mb()
    torch.manual_seed(seed)
    model = DenseDescriptorNet(descriptor_dim=dim, num_keypoints=num_keypoints, method=method).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0e-4)
    batch = synthetic_pair_batch(height, width, num_correspondences, seed)
    cfg = LossConfig()
    baseline_mb = _maxrss_mb()
    baseline_rss_mb = _rss_mb()
    setup_s = time.perf_counter() - t0

    times, losses = [], []
    for _ in range(steps):
        t = time.perf_counter()
        terms = compute_losses(model, batch, cfg)
        terms["total"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(terms["total"].detach()))
        del terms
        times.append(time.perf_counter() - t)
    peak_mb = _maxrss_mb()
    timed = times[1:] if len(times) > 1 else times
    return {
        "method": method,
        "descriptor_dim": dim,
        "height": height,
        "width": width,
        "batch_size": 1,
        "num_correspondences": num_correspondences,
        "num_keypoints": num_keypoints if method == "keypoint" else 0,
        "steps": steps,
        "import_mb": round(import_mb, 1),
        "baseline_mb": round(baseline_mb, 1),
        "baseline_rss_mb": round(baseline_rss_mb, 1),
        "peak_mb": round(peak_mb, 1),
        "step_cost_mb": round(peak_mb - baseline_mb, 1),
        "train_mb": round(peak_mb - import_mb, 1),
        "step_s": round(statistics.median(timed), 3),
        "step_times_s": [round(t, 3) for t in times],
        "setup_s": round(setup_s, 2),
        "losses": losses,
        "torch_threads": torch.get_num_threads(),
    }


def run_timing_worker(dim: int, height: int, width: int, num_correspondences: int, rounds: int,
                      num_keypoints: int = 8, seed: int = 0) -> dict:
    """Step times of both methods at one D, **interleaved** in one process (keypoint step, NT-Xent step, ...), so
    that a change in the load of a shared machine hits both alike. One untimed warm-up round; medians of the rest."""
    import torch

    from dense_descriptor_grasp.model import DenseDescriptorNet
    from dense_descriptor_grasp.training.config import LossConfig
    from dense_descriptor_grasp.training.objective import compute_losses

    torch.manual_seed(seed)
    batch = synthetic_pair_batch(height, width, num_correspondences, seed)
    cfg = LossConfig()
    setups = {}
    for method in METHODS:
        model = DenseDescriptorNet(descriptor_dim=dim, num_keypoints=num_keypoints, method=method).train()
        setups[method] = (model, torch.optim.Adam(model.parameters(), lr=1.0e-4))
    times = {m: [] for m in METHODS}
    for r in range(rounds + 1):
        for method, (model, optimizer) in setups.items():
            t = time.perf_counter()
            terms = compute_losses(model, batch, cfg)
            terms["total"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            del terms
            if r > 0:
                times[method].append(time.perf_counter() - t)
    kp, nx = statistics.median(times["keypoint"]), statistics.median(times["ntxent"])
    return {"descriptor_dim": dim, "height": height, "width": width, "rounds": rounds,
            "keypoint_step_s": round(kp, 3), "ntxent_step_s": round(nx, 3), "ntxent_over_keypoint": round(nx / kp, 3),
            "keypoint_times_s": [round(t, 3) for t in times["keypoint"]],
            "ntxent_times_s": [round(t, 3) for t in times["ntxent"]]}


# ----------------------------------------------------------------------------------------------- driver
def measure_in_subprocess(method: str, dim: int, args, timing: bool = False) -> dict:
    """Run one configuration in a fresh interpreter; returns its result dict or ``{"error": ...}``.
    ``timing``: the interleaved step-time worker of both methods at ``dim`` instead (``method`` ignored)."""
    cmd = [sys.executable, "-m", "benchmarks.training_memory", "--dim", str(dim),
           "--height", str(args.height), "--width", str(args.width), "--correspondences", str(args.correspondences),
           "--steps", str(args.steps), "--num-keypoints", str(args.num_keypoints)]
    cmd += ["--timing-worker", "--timing-rounds", str(args.timing_rounds)] if timing else ["--worker", "--method", method]
    repo = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    if args.threads:
        cmd += ["--threads", str(args.threads)]
        env["OMP_NUM_THREADS"] = str(args.threads)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=repo, env=env)
    except subprocess.TimeoutExpired:
        return {"method": method, "descriptor_dim": dim, "error": f"timed out after {args.timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"method": method, "descriptor_dim": dim, "error": f"worker exit code {proc.returncode}: {' / '.join(tail)}"}


def _get(results, method, dim, key):
    for r in results:
        if r["method"] == method and r["descriptor_dim"] == dim and "error" not in r:
            return r[key]
    return None


def _train_mb(results, method, dim):
    """peak - import footprint of one configuration (computed for reports written before ``train_mb`` existed)."""
    peak, imported = _get(results, method, dim, "peak_mb"), _get(results, method, dim, "import_mb")
    return peak - imported if peak and imported else None


def evaluate_targets(results, timing=()) -> list:
    """Issue 5's targets on the measured numbers: a list of ``{target, value, limit, met}`` (None when not measured).
    The step-time target uses the interleaved timing at D=512 when there is one (robust to a shared machine)."""
    kp3, kp512 = _get(results, "keypoint", 3, "peak_mb"), _get(results, "keypoint", 512, "peak_mb")
    nx512 = _get(results, "ntxent", 512, "peak_mb")
    kps, nxs = _get(results, "keypoint", 512, "step_s"), _get(results, "ntxent", 512, "step_s")
    t512 = next((t for t in timing if t.get("descriptor_dim") == 512 and "error" not in t), None)
    if t512 is not None:
        kps, nxs = t512["keypoint_step_s"], t512["ntxent_step_s"]
    out = []

    def add(name, value, limit, ok):
        out.append({"target": name, "value": None if value is None else round(value, 3), "limit": limit,
                    "met": None if value is None else bool(ok(value))})

    add("keypoint peak memory D=512 / D=3 <= 1.1", kp512 / kp3 if kp3 and kp512 else None, 1.1, lambda v: v <= 1.1)
    add("keypoint peak memory / NT-Xent peak memory at D=512 <= 0.25", kp512 / nx512 if kp512 and nx512 else None, 0.25,
        lambda v: v <= 0.25)
    add("NT-Xent step time / keypoint step time at D=512 >= 4" + (" (interleaved timing)" if t512 else ""), nxs / kps if kps and nxs else None, 4.0, lambda v: v >= 4.0)
    kc, nc = _get(results, "keypoint", 512, "step_cost_mb"), _get(results, "ntxent", 512, "step_cost_mb")
    kt, nt = _train_mb(results, "keypoint", 512), _train_mb(results, "ntxent", 512)
    add("keypoint training memory / NT-Xent training memory at D=512 <= 0.25 (peak - import footprint: the tensors "
        "of training, as the paper's GPU figures count them)", kt / nt if kt and nt else None, 0.25, lambda v: v <= 0.25)
    add("(not an issue target) keypoint step cost / NT-Xent step cost at D=512, i.e. without the shared process baseline",
        kc / nc if kc and nc else None, 0.25, lambda v: v <= 0.25)
    return out


def write_outputs(report: dict, out_dir: Path) -> dict:
    from ._common import atomic_write_json, atomic_write_text, machine_line, markdown_table, save_figure

    out_dir = Path(out_dir)
    results = report["results"]
    dims = report["settings"]["dims"]
    rows = []
    for dim in dims:
        row = [dim]
        for method in METHODS:
            r = next((x for x in results if x["method"] == method and x["descriptor_dim"] == dim), None)
            if r is None or "error" in r:
                row += ["error" if r else "-", "", "", ""]
            else:
                row += [f"{r['peak_mb']:.0f}", f"{r['baseline_mb']:.0f}", f"{r['step_cost_mb']:.0f}", f"{r['step_s']:.2f}"]
        kp, nx = _get(results, "keypoint", dim, "peak_mb"), _get(results, "ntxent", dim, "peak_mb")
        ks, ns = _get(results, "keypoint", dim, "step_s"), _get(results, "ntxent", dim, "step_s")
        kc, nc = _get(results, "keypoint", dim, "step_cost_mb"), _get(results, "ntxent", dim, "step_cost_mb")
        kt, nt = _train_mb(results, "keypoint", dim), _train_mb(results, "ntxent", dim)
        row += [f"{kt:.0f}" if kt else "", f"{nt:.0f}" if nt else "",
                f"{kp / nx:.2f}" if kp and nx else "", f"{kt / nt:.2f}" if kt and nt else "",
                f"{kc / nc:.2f}" if kc and nc else "", f"{ns / ks:.2f}" if ks and ns else ""]
        rows.append(row)
    s = report["settings"]
    header = ["D", "keypoint peak MiB", "keypoint baseline MiB", "keypoint step cost MiB", "keypoint step s",
              "NT-Xent peak MiB", "NT-Xent baseline MiB", "NT-Xent step cost MiB", "NT-Xent step s",
              "keypoint training MiB", "NT-Xent training MiB", "peak ratio kp/NT-Xent", "training-memory ratio kp/NT-Xent",
              "step-cost ratio kp/NT-Xent", "step-time ratio NT-Xent/kp"]
    md = [f"# Training-step memory and time: keypoint method vs NT-Xent baseline\n",
          f"Command: `{report['command']}`  \n",
          f"Machine: {machine_line(report['machine'])}; load average at end "
          f"{report.get('machine_after', {}).get('load_average_1_5_15')}  \n",
          f"Setting: {s['width']}x{s['height']}, batch 1 (twin forward of A and B), {s['correspondences']} correspondences, "
          f"{s['num_keypoints']} keypoints, {s['steps']} steps per configuration, each in a fresh subprocess; "
          f"peak = RSS high-water mark (ru_maxrss) of the process, baseline = RSS after importing torch and building "
          f"model + Adam + batch, step cost = peak - baseline, training = peak - the import footprint (weights, Adam "
          f"state, batch, activations, gradients: what the paper's GPU figures count), step s = median of steps 2..{s['steps']}. "
          f"Memory of a bare `import torch` + package: {report.get('import_mb_median', 'n/a')} MiB.\n\n",
          markdown_table(header, rows), "\n## Targets of issue 5\n\n"]
    timing = [t for t in report.get("interleaved_timing", []) if "error" not in t]
    if timing:
        md[-1] = ("\n## Step time, both methods interleaved in one process\n\n"
                  f"One process per D, alternating a keypoint step and an NT-Xent step for {s.get('timing_rounds')} timed "
                  "rounds after one warm-up round (medians), so that the other jobs on this shared machine slow both alike. "
                  "The per-configuration step times in the table above come from separate processes at different moments "
                  "and are only indicative.\n\n")
        md.append(markdown_table(["D", "keypoint step s", "NT-Xent step s", "NT-Xent / keypoint"],
                                 [[t["descriptor_dim"], f"{t['keypoint_step_s']:.2f}", f"{t['ntxent_step_s']:.2f}",
                                   f"{t['ntxent_over_keypoint']:.2f}"] for t in timing]))
        md.append("\n## Targets of issue 5\n\n")
    md.append(markdown_table(["target", "measured", "met"],
                             [[t["target"], "n/a" if t["value"] is None else t["value"],
                               "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")] for t in report["targets"]]))
    errors = [r for r in results if "error" in r]
    if errors:
        md.append("\nFailed configurations:\n\n" + "".join(f"- {r['method']} D={r['descriptor_dim']}: {r['error']}\n" for r in errors))
    md.append("\nPaper, Table 1 (GPU memory, GB): NT-Xent DON " +
              ", ".join(f"D={d}: {v}" for d, v in PAPER_GB["ntxent"].items()) + "; the paper's method " +
              ", ".join(f"D={d}: {v}" for d, v in PAPER_GB["keypoint"].items()) + ".\n")
    files = {"json": out_dir / "training_memory.json", "md": out_dir / "training_memory.md", "png": out_dir / "training_memory.png"}
    atomic_write_text(files["md"], "".join(md))
    atomic_write_json(files["json"], report)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, style, color in zip(METHODS, ("o-", "s-"), ("tab:blue", "tab:orange")):
        ds = [d for d in dims if _get(results, method, d, "peak_mb")]
        label = "keypoint (this paper)" if method == "keypoint" else "NT-Xent (DON baseline)"
        axes[0].plot(ds, [_get(results, method, d, "peak_mb") / 1024 for d in ds], style, color=color, label=f"{label}, peak")
        axes[0].plot(ds, [_get(results, method, d, "step_cost_mb") / 1024 for d in ds], style[0] + "--", color=color,
                     alpha=0.5, label=f"{label}, step cost (peak - baseline)")
        axes[1].plot(ds, [_get(results, method, d, "step_s") for d in ds], style, color=color, alpha=0.5,
                     label=f"{label}, separate processes")
        key = "keypoint_step_s" if method == "keypoint" else "ntxent_step_s"
        tds = [t["descriptor_dim"] for t in report.get("interleaved_timing", []) if "error" not in t]
        if tds:
            axes[1].plot(tds, [t[key] for t in report["interleaved_timing"] if "error" not in t], style[0], color=color,
                         markersize=10, markeredgecolor="black", linestyle="none", label=f"{label}, interleaved")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.set_xlabel("descriptor dimension D")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("GiB (process RSS)")
    axes[0].set_title(f"Training-step memory, {s['width']}x{s['height']}, batch 1, CPU", fontsize=10)
    axes[1].set_ylabel("seconds per step (median)")
    axes[1].set_title("Training-step time", fontsize=10)
    fig.tight_layout()
    save_figure(fig, files["png"])
    plt.close(fig)
    return {k: str(v) for k, v in files.items()}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training_memory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"only D in {QUICK_DIMS} (smoke test)")
    p.add_argument("--dims", type=int, nargs="+", default=None, help=f"descriptor dimensions (default {DIMS})")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--correspondences", type=int, default=128)
    p.add_argument("--num-keypoints", type=int, default=8)
    p.add_argument("--steps", type=int, default=4, help="training steps per configuration (first one not timed)")
    p.add_argument("--timing-dims", type=int, nargs="*", default=None,
                   help="D values for the interleaved step-time comparison (default: 3 and 512 if measured; none with --quick)")
    p.add_argument("--timing-rounds", type=int, default=5, help="timed rounds of the interleaved comparison")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads in every worker (default: torch's default, one per core); on a "
                        "machine shared with other jobs 1 avoids OpenMP threads spinning against each other")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    p.add_argument("--from-json", default=None, help="only re-render the .md and .png from an earlier .json report")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--timing-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", default=None, help=argparse.SUPPRESS)
    p.add_argument("--dim", type=int, default=None, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.steps < 1:
        raise SystemExit("--steps must be >= 1")
    if (args.worker or args.timing_worker) and args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.worker:
        result = run_worker(args.method, args.dim, args.height, args.width, args.correspondences, args.steps, args.num_keypoints)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if args.timing_worker:
        result = run_timing_worker(args.dim, args.height, args.width, args.correspondences, args.timing_rounds,
                                   args.num_keypoints)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    from tqdm import tqdm

    from ._common import RESULTS_DIR, machine_description

    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        report["targets"] = evaluate_targets(report["results"], report.get("interleaved_timing", []))
        files = write_outputs(report, Path(args.output_dir) if args.output_dir else Path(args.from_json).parent)
        print("wrote", ", ".join(files.values()))
        return 0
    dims = list(args.dims or (QUICK_DIMS if args.quick else DIMS))
    out_dir = Path(args.output_dir) if args.output_dir else RESULTS_DIR
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = machine_description()
    configs = [(m, d) for d in dims for m in args.methods]
    results = []
    bar = tqdm(configs, desc="training_memory", unit="config")
    for method, dim in bar:
        bar.set_postfix_str(f"{method} D={dim}")
        r = measure_in_subprocess(method, dim, args)
        results.append(r)
        if "error" in r:
            tqdm.write(f"{method:8s} D={dim:3d}: ERROR {r['error']}")
        else:
            tqdm.write(f"{method:8s} D={dim:3d}: peak {r['peak_mb']:8.0f} MiB  baseline {r['baseline_mb']:6.0f} MiB  "
                       f"step {r['step_s']:.2f} s")
    if args.timing_dims is None:
        timing_dims = [] if args.quick else [d for d in (3, 512) if d in dims]
    else:
        timing_dims = list(args.timing_dims)
    timing = []
    for dim in tqdm(timing_dims, desc="interleaved step timing", unit="D", disable=not timing_dims):
        t = measure_in_subprocess("both", dim, args, timing=True)
        t.setdefault("descriptor_dim", dim)
        timing.append(t)
        if "error" in t:
            tqdm.write(f"interleaved timing D={dim}: ERROR {t['error']}")
        else:
            tqdm.write(f"interleaved timing D={dim}: keypoint {t['keypoint_step_s']:.2f} s, NT-Xent {t['ntxent_step_s']:.2f} s")
    imports = [r["import_mb"] for r in results if "import_mb" in r]
    cmd = "python -m benchmarks.training_memory" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(argv if argv is not None else sys.argv[1:]))
    report = {
        "command": cmd,
        "machine": machine,
        "machine_after": {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"dims": dims, "methods": list(args.methods), "height": args.height, "width": args.width,
                     "correspondences": args.correspondences, "num_keypoints": args.num_keypoints, "steps": args.steps,
                     "timing_dims": timing_dims, "timing_rounds": args.timing_rounds, "threads": args.threads},
        "import_mb_median": round(statistics.median(imports), 1) if imports else None,
        "results": results,
        "interleaved_timing": timing,
        "targets": evaluate_targets(results, timing),
    }
    files = write_outputs(report, out_dir)
    for t in report["targets"]:
        print(f"target: {t['target']}: measured {t['value']} -> {'n/a' if t['met'] is None else ('met' if t['met'] else 'NOT met')}")
    print("wrote", ", ".join(files.values()))
    return 0 if all("error" not in r for r in results + timing) else 1


if __name__ == "__main__":
    raise SystemExit(main())
