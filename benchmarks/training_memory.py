"""Peak process memory and time of one training step over D: keypoint method vs NT-Xent, without and with a decoder.

```
python -m benchmarks.training_memory            # every method x decoder none/fpn x D in 3 8 16 ... 512, 640x480
python -m benchmarks.training_memory --quick    # D in 3 512 only (add --height/--width for a tiny smoke run)
python -m benchmarks.training_memory --methods keypoint ntxent_fullres --decoders none   # the issue-5 table
```

Methods (``--methods``):

- ``keypoint``: the paper's method (``training.objective.compute_losses``, method ``keypoint``). Its keypoint heads
  read the ``(B, D, h, w)`` features; only the N keypoint maps are upsampled to full resolution, never the D-channel
  descriptors.
- ``ntxent``: the NT-Xent baseline as ``train_model`` trains it now (``compute_losses``, method ``ntxent``): the
  descriptors are sampled from the low-resolution features at the correspondences (``training/ntxent.py``); the
  full-resolution D-channel image is not built.
- ``ntxent_fullres``: **benchmark-only variant**, the NT-Xent of issue 5's table (before issue 11): the features are
  bilinearly upsampled to the full ``(B, D, H, W)`` image, then sampled at the correspondences (the same
  ``ntxent_loss``; same loss values up to float rounding). This is the row that builds the full-resolution image.

Decoders (``--decoders``): ``none`` (the paper's network: stride-32 trunk output + 1x1 projection) and ``fpn`` (the
feature-pyramid decoder, ``--fpn-stride`` 4 by default, ``--decoder-channels`` 128), as ``model.decoder``.

Each (method, decoder, D) runs in a **fresh Python subprocess** (``--worker``), so no allocator state, cached
buffers or high-water mark leaks from one configuration into the next. In the worker:

1. ``import torch`` + the package -> RSS ``import_mb``;
2. build ``DenseDescriptorNet(D, num_keypoints=8, method, decoder)`` in ``train()`` mode, an Adam optimiser, and one
   synthetic pair batch (batch 1, two 640x480 views, an elliptic object mask, a plane of depth, an augmentation-like
   rigid motion between the views, 128 correspondences, no off-object negatives) -> RSS ``baseline_mb``
   (everything that exists before a step);
3. ``--steps`` training steps exactly as ``train_model`` does them: ``training.objective.compute_losses`` (twin
   forward of A and B in one trunk pass + the method's loss terms; ``ntxent_fullres``: see above),
   ``total.backward()``, ``optimizer.step()``, ``zero_grad(set_to_none=True)``;
4. ``peak_mb`` = the process's RSS high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after the steps:
   the paper's "memory of training" on a CPU. ``step_cost_mb = peak_mb - baseline_mb`` is what the step itself adds
   (activations, gradients, Adam state). ``step_s`` is the median wall time of the steps after the first one.
5. ``train_mb = peak_mb - import_mb``: everything training allocates (weights, Adam state, batch, activations,
   gradients) without the imported libraries' own memory (the same for every configuration). This is the CPU
   analogue of the paper's Table 1, which counts GPU memory: the tensors of training live there, the framework's
   code and host-side state do not.

Step times of several configurations are compared **interleaved** in one process per D (``--timing-dims``): one
step of each (method, decoder) in turn, so that a change of load on a shared machine hits all of them alike.

Writes ``benchmarks/results/<name>.{json,md,png}`` (``--name``, default ``training_memory``; or ``--output-dir``).
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
METHODS = ("keypoint", "ntxent", "ntxent_fullres")
DECODERS = ("none", "fpn")
MODEL_METHOD = {"keypoint": "keypoint", "ntxent": "ntxent", "ntxent_fullres": "ntxent"}
# does the training step build the full-resolution (B, D, H, W) descriptor image?
BUILDS_FULL_RES = {"keypoint": False, "ntxent": False, "ntxent_fullres": True}
LABELS = {"keypoint": "keypoint (the paper)",
          "ntxent": "NT-Xent, sampled at the correspondences (training/ntxent.py)",
          "ntxent_fullres": "NT-Xent on the full-resolution image (benchmark-only variant: upsample, then sample)"}
SHORT = {"keypoint": "keypoint", "ntxent": "NT-Xent sampled", "ntxent_fullres": "NT-Xent full-res"}
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


def build_model(method: str, dim: int, decoder: str, num_keypoints: int = 8, fpn_stride: int = 4,
                decoder_channels: int = 128):
    """The network a configuration trains, in ``train()`` mode."""
    from dense_descriptor_grasp.model import DenseDescriptorNet

    if method not in METHODS or decoder not in DECODERS:
        raise ValueError(f"method must be one of {METHODS} and decoder one of {DECODERS}, got {method!r}, {decoder!r}")
    kwargs = {"decoder": "fpn", "output_stride": fpn_stride, "decoder_channels": decoder_channels} if decoder == "fpn" else {}
    return DenseDescriptorNet(descriptor_dim=dim, num_keypoints=num_keypoints, method=MODEL_METHOD[method],
                              **kwargs).train()


def step_losses(model, batch: dict, cfg, method: str) -> dict:
    """The loss terms of one training step of ``method`` (``total`` is what is back-propagated).

    ``keypoint`` and ``ntxent``: ``training.objective.compute_losses``, as ``train_model``. ``ntxent_fullres``
    (benchmark only): the twin forward's features upsampled to the full ``(B, D, H, W)`` image (bilinear,
    ``align_corners=False``, as ``model.descriptors``), then ``ntxent_loss`` samples that image at the
    correspondences: the NT-Xent training step before issue 11, which also returned the full-resolution outputs
    (kept until the step ends; without that reference the image is freed earlier in the backward pass and the
    peak is about one full image, 1.2 GiB at D=512 and 640x480, lower).
    """
    import torch
    import torch.nn.functional as F

    from dense_descriptor_grasp.training.ntxent import ntxent_loss
    from dense_descriptor_grasp.training.objective import compute_losses

    if method != "ntxent_fullres":
        return compute_losses(model, batch, cfg)
    rgb_a, rgb_b = batch["rgb_a"], batch["rgb_b"]
    feats = model(torch.cat([rgb_a, rgb_b], dim=0))["features"]
    desc = F.interpolate(feats, size=tuple(rgb_a.shape[-2:]), mode="bilinear", align_corners=False)
    B = rgb_a.shape[0]
    out_a, out_b = {"descriptors": desc[:B]}, {"descriptors": desc[B:]}
    loss = ntxent_loss(out_a["descriptors"], out_b["descriptors"], batch["uv_a"], batch["uv_b"], batch["valid"],
                       cfg.ntxent_temperature)
    # the outputs stay referenced until the step ends, as compute_losses' "outputs" (and the pre-issue-11 step) keep
    # them: the full image is alive during the whole backward pass, not only until grid_sample's backward
    return {"ntxent": loss, "total": loss, "outputs": (out_a, out_b)}


def run_worker(method: str, dim: int, height: int, width: int, num_correspondences: int, steps: int,
               num_keypoints: int = 8, seed: int = 0, decoder: str = "none", fpn_stride: int = 4,
               decoder_channels: int = 128) -> dict:
    """Measure one configuration in this process (call it in a fresh process; see the module docstring)."""
    t0 = time.perf_counter()
    import torch

    from dense_descriptor_grasp.training.config import LossConfig

    import_mb = _maxrss_mb()
    torch.manual_seed(seed)
    model = build_model(method, dim, decoder, num_keypoints, fpn_stride, decoder_channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0e-4)
    batch = synthetic_pair_batch(height, width, num_correspondences, seed)
    cfg = LossConfig()
    baseline_mb = _maxrss_mb()
    baseline_rss_mb = _rss_mb()
    setup_s = time.perf_counter() - t0

    times, losses = [], []
    for _ in range(steps):
        t = time.perf_counter()
        terms = step_losses(model, batch, cfg, method)
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
        "decoder": decoder,
        "output_stride": int(model.output_stride),
        "decoder_channels": int(model.decoder_channels),
        "builds_full_res_image": BUILDS_FULL_RES[method],
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


def run_timing_worker(dim: int, height: int, width: int, num_correspondences: int, rounds: int, setups,
                      num_keypoints: int = 8, seed: int = 0, fpn_stride: int = 4, decoder_channels: int = 128) -> dict:
    """Step times of several ``(method, decoder)`` setups at one D, **interleaved** in one process (one step of each
    in turn), so that a change in the load of a shared machine hits all alike. One untimed warm-up round; medians."""
    import torch

    from dense_descriptor_grasp.training.config import LossConfig

    torch.manual_seed(seed)
    batch = synthetic_pair_batch(height, width, num_correspondences, seed)
    cfg = LossConfig()
    built = []
    for method, decoder in setups:
        model = build_model(method, dim, decoder, num_keypoints, fpn_stride, decoder_channels)
        built.append((method, decoder, model, torch.optim.Adam(model.parameters(), lr=1.0e-4)))
    times = [[] for _ in built]
    for r in range(rounds + 1):
        for i, (method, _, model, optimizer) in enumerate(built):
            t = time.perf_counter()
            terms = step_losses(model, batch, cfg, method)
            terms["total"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            del terms
            if r > 0:
                times[i].append(time.perf_counter() - t)
    return {"descriptor_dim": dim, "height": height, "width": width, "rounds": rounds,
            "setups": [{"method": m, "decoder": d, "step_s": round(statistics.median(ts), 3),
                        "times_s": [round(t, 3) for t in ts]} for (m, d, _, _), ts in zip(built, times)]}


# ----------------------------------------------------------------------------------------------- driver
def _common_args(args) -> list:
    return ["--height", str(args.height), "--width", str(args.width), "--correspondences", str(args.correspondences),
            "--steps", str(args.steps), "--num-keypoints", str(args.num_keypoints), "--fpn-stride", str(args.fpn_stride),
            "--decoder-channels", str(args.decoder_channels)]


def measure_in_subprocess(method: str, dim: int, args, decoder: str = "none", timing_setups=None) -> dict:
    """Run one configuration in a fresh interpreter; returns its result dict or ``{"error": ...}``.
    ``timing_setups``: the interleaved step-time worker of these ``(method, decoder)`` pairs at ``dim`` instead."""
    cmd = [sys.executable, "-m", "benchmarks.training_memory", "--dim", str(dim)] + _common_args(args)
    if timing_setups:
        cmd += ["--timing-worker", "--timing-rounds", str(args.timing_rounds),
                "--timing-setups", *[f"{m}:{d}" for m, d in timing_setups]]
    else:
        cmd += ["--worker", "--method", method, "--decoder", decoder]
    repo = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    if args.threads:
        cmd += ["--threads", str(args.threads)]
        env["OMP_NUM_THREADS"] = str(args.threads)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    err = {"method": method, "decoder": decoder, "descriptor_dim": dim}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=repo, env=env)
    except subprocess.TimeoutExpired:
        return {**err, "error": f"timed out after {args.timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {**err, "error": f"worker exit code {proc.returncode}: {' / '.join(tail)}"}


def upgrade_report(report: dict) -> dict:
    """A report written before issue 11 (no decoder; its ``ntxent`` upsampled to the full image before sampling)
    in the current form: ``decoder`` none, ``ntxent`` -> ``ntxent_fullres``, timing as ``setups``."""
    results = []
    for r in report.get("results", []):
        if "decoder" not in r:
            r = {**r, "decoder": "none", "output_stride": 32, "decoder_channels": 0,
                 "method": "ntxent_fullres" if r.get("method") == "ntxent" else r.get("method")}
            r["builds_full_res_image"] = BUILDS_FULL_RES.get(r["method"], False)
        results.append(r)
    timing = []
    for t in report.get("interleaved_timing", []):
        if "setups" not in t and "keypoint_step_s" in t:
            t = {k: v for k, v in t.items() if not k.startswith(("keypoint_", "ntxent_"))} | {"setups": [
                {"method": "keypoint", "decoder": "none", "step_s": t["keypoint_step_s"], "times_s": t.get("keypoint_times_s", [])},
                {"method": "ntxent_fullres", "decoder": "none", "step_s": t["ntxent_step_s"], "times_s": t.get("ntxent_times_s", [])}]}
        timing.append(t)
    s = dict(report.get("settings", {}))
    if "decoders" not in s:
        s["decoders"] = ["none"]
        s["methods"] = ["ntxent_fullres" if m == "ntxent" else m for m in s.get("methods", [])]
    return {**report, "results": results, "interleaved_timing": timing, "settings": s}


def _get(results, method, dim, key, decoder="none"):
    for r in results:
        if (r["method"] == method and r.get("decoder", "none") == decoder and r["descriptor_dim"] == dim
                and "error" not in r):
            return r[key]
    return None


def _train_mb(results, method, dim, decoder="none"):
    """peak - import footprint of one configuration (computed for reports written before ``train_mb`` existed)."""
    peak, imported = _get(results, method, dim, "peak_mb", decoder), _get(results, method, dim, "import_mb", decoder)
    return peak - imported if peak and imported else None


def _timing_step(timing, dim, method, decoder):
    for t in timing:
        if t.get("descriptor_dim") == dim and "error" not in t:
            for s in t.get("setups", []):
                if s["method"] == method and s["decoder"] == decoder:
                    return s["step_s"]
    return None


def evaluate_targets(results, timing=(), fpn_stride: int = 4) -> list:
    """The targets of issues 5 and 11 on the measured numbers: a list of ``{issue, target, value, limit, met}``
    (None when not measured). Issue 5 compares the keypoint method with the NT-Xent it measured, which built the
    full-resolution image (``ntxent_fullres``), both without decoder. The step-time target uses the interleaved
    timing at D=512 when there is one (robust to a shared machine)."""
    out = []

    def add(issue, name, value, limit, ok):
        out.append({"issue": issue, "target": name, "value": None if value is None else round(value, 3),
                    "limit": limit, "met": None if value is None else bool(ok(value))})

    def ratio(a, b):
        return a / b if a and b else None

    g = lambda m, d, k, dec="none": _get(results, m, d, k, dec)  # noqa: E731
    kp3, kp512, nx512 = g("keypoint", 3, "peak_mb"), g("keypoint", 512, "peak_mb"), g("ntxent_fullres", 512, "peak_mb")
    kps, nxs = g("keypoint", 512, "step_s"), g("ntxent_fullres", 512, "step_s")
    tk, tn = _timing_step(timing, 512, "keypoint", "none"), _timing_step(timing, 512, "ntxent_fullres", "none")
    interleaved = tk is not None and tn is not None
    if interleaved:
        kps, nxs = tk, tn
    add(5, "keypoint peak memory D=512 / D=3 <= 1.1 (decoder none)", ratio(kp512, kp3), 1.1, lambda v: v <= 1.1)
    add(5, "keypoint peak memory / NT-Xent full-res peak memory at D=512 <= 0.25 (decoder none)", ratio(kp512, nx512),
        0.25, lambda v: v <= 0.25)
    add(5, "NT-Xent full-res step time / keypoint step time at D=512 >= 4 (decoder none" +
        (", interleaved timing)" if interleaved else ")"), ratio(nxs, kps), 4.0, lambda v: v >= 4.0)
    add(5, "keypoint training memory / NT-Xent full-res training memory at D=512 <= 0.25 (decoder none; peak - import "
        "footprint: the tensors of training, as the paper's GPU figures count them)",
        ratio(_train_mb(results, "keypoint", 512), _train_mb(results, "ntxent_fullres", 512)), 0.25, lambda v: v <= 0.25)
    add(5, "(not an issue target) keypoint step cost / NT-Xent full-res step cost at D=512, decoder none",
        ratio(g("keypoint", 512, "step_cost_mb"), g("ntxent_fullres", 512, "step_cost_mb")), 0.25, lambda v: v <= 0.25)
    f3, f512 = g("keypoint", 3, "peak_mb", "fpn"), g("keypoint", 512, "peak_mb", "fpn")
    add(11, f"keypoint peak memory D=512 / D=3 <= 1.1 with the decoder (fpn, stride {fpn_stride})", ratio(f512, f3), 1.1,
        lambda v: v <= 1.1)
    add(11, f"(expected, not an issue target) NT-Xent sampled peak memory D=512 / D=3 <= 1.1 with the decoder "
        f"(fpn, stride {fpn_stride})", ratio(g("ntxent", 512, "peak_mb", "fpn"), g("ntxent", 3, "peak_mb", "fpn")),
        1.1, lambda v: v <= 1.1)
    add(11, f"(not an issue target) keypoint training memory D=512 / D=3 with the decoder (fpn, stride {fpn_stride}; "
        "peak - import footprint)", ratio(_train_mb(results, "keypoint", 512, "fpn"),
                                           _train_mb(results, "keypoint", 3, "fpn")), 1.1, lambda v: v <= 1.1)
    return out


def _configs(results):
    """(method, decoder) pairs present in ``results``, in METHODS x DECODERS order."""
    have = {(r["method"], r.get("decoder", "none")) for r in results}
    return [(m, d) for d in DECODERS for m in METHODS if (m, d) in have]


def write_outputs(report: dict, out_dir: Path, name: str = "training_memory") -> dict:
    from ._common import atomic_write_json, atomic_write_text, machine_line, markdown_table, save_figure

    out_dir = Path(out_dir)
    results = report["results"]
    dims = report["settings"]["dims"]
    s = report["settings"]
    stride = s.get("fpn_stride", 4)

    def dec_label(decoder):
        return "none (stride 32)" if decoder == "none" else f"fpn (stride {stride}, C={s.get('decoder_channels', 128)})"

    rows = []
    for method, decoder in _configs(results):
        for dim in dims:
            r = next((x for x in results if x["method"] == method and x.get("decoder", "none") == decoder
                      and x["descriptor_dim"] == dim), None)
            if r is None:
                continue
            head = [dec_label(decoder), SHORT[method], "**yes**" if BUILDS_FULL_RES[method] else "no", dim]
            if "error" in r:
                rows.append(head + ["error", "", "", "", ""])
            else:
                peaks = r.get("peak_mb_repeats") or []
                spread = f" ({min(peaks):.0f}-{max(peaks):.0f})" if len(peaks) > 1 else ""
                rows.append(head + [f"{r['peak_mb']:.0f}{spread}", f"{r['baseline_mb']:.0f}", f"{r['step_cost_mb']:.0f}",
                                    f"{_train_mb(results, method, dim, decoder):.0f}", f"{r['step_s']:.2f}"])
    header = ["decoder", "method", "builds the full-res D image", "D", "peak MiB", "baseline MiB", "step cost MiB",
              "training MiB", "step s"]
    flat = []
    for method, decoder in _configs(results):
        ds = [d for d in dims if _get(results, method, d, "peak_mb", decoder)]
        if len(ds) < 2:
            continue
        lo, hi = ds[0], ds[-1]
        p_lo, p_hi = _get(results, method, lo, "peak_mb", decoder), _get(results, method, hi, "peak_mb", decoder)
        t_lo, t_hi = _train_mb(results, method, lo, decoder), _train_mb(results, method, hi, decoder)
        flat.append([dec_label(decoder), SHORT[method], f"{lo} -> {hi}", f"{p_lo:.0f} -> {p_hi:.0f}", f"{p_hi / p_lo:.2f}",
                     f"{t_lo:.0f} -> {t_hi:.0f}", f"{t_hi / t_lo:.2f}" if t_lo and t_hi else ""])
    after = report.get("machine_after", {}).get("load_average_1_5_15")
    md = [f"# Training-step memory and time over D: keypoint method vs NT-Xent, without and with a decoder\n\n",
          f"Command: `{report['command']}`  \n",
          f"Machine: {machine_line(report['machine'])}; load average at end {after}  \n",
          f"Setting: {s['width']}x{s['height']}, batch 1 (twin forward of A and B), {s['correspondences']} correspondences, "
          f"{s['num_keypoints']} keypoints, {s['steps']} steps per configuration, each in a fresh subprocess"
          + (f" ({s['repeats']} times; the row is the run with the median peak, the range of the peaks in brackets)"
             if s.get("repeats", 1) > 1 else "") + "; "
          f"peak = RSS high-water mark (ru_maxrss) of the process, baseline = RSS after importing torch and building "
          f"model + Adam + batch, step cost = peak - baseline, training = peak - the import footprint (weights, Adam "
          f"state, batch, activations, gradients: what the paper's GPU figures count), step s = median of steps 2..{s['steps']} "
          f"(separate processes at different moments: indicative only; see the interleaved timing). "
          f"Memory of a bare `import torch` + package: {report.get('import_mb_median', 'n/a')} MiB.\n\n",
          "Methods: " + "; ".join(f"**{SHORT[m]}** = {LABELS[m]}" for m in METHODS) + ". Only the NT-Xent full-res "
          "rows build the full-resolution D-channel image in training (the keypoint method upsamples its N keypoint "
          "maps, not the D descriptors).\n\n",
          markdown_table(header, rows),
          "\n## Flat in D?\n\n",
          markdown_table(["decoder", "method", "D", "peak MiB", "peak ratio", "training MiB", "training ratio"], flat)]
    timing = [t for t in report.get("interleaved_timing", []) if "error" not in t]
    if timing:
        md.append("\n## Step time, interleaved in one process per D\n\n"
                  f"One process per D, one step of each configuration in turn for {s.get('timing_rounds')} timed "
                  "rounds after one warm-up round (medians), so that the other jobs on this shared machine slow all "
                  "of them alike.\n\n")
        trows = []
        for t in timing:
            kp = next((x["step_s"] for x in t["setups"] if x["method"] == "keypoint" and x["decoder"] == "none"), None)
            for x in t["setups"]:
                trows.append([t["descriptor_dim"], dec_label(x["decoder"]), SHORT[x["method"]], f"{x['step_s']:.2f}",
                              f"{x['step_s'] / kp:.2f}" if kp else ""])
        md.append(markdown_table(["D", "decoder", "method", "step s (median)", "/ keypoint without decoder"], trows))
    md.append("\n## Targets\n\n")
    md.append(markdown_table(["issue", "target", "measured", "met"],
                             [[t.get("issue", 5), t["target"], "n/a" if t["value"] is None else t["value"],
                               "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")] for t in report["targets"]]))
    errors = [r for r in results + report.get("interleaved_timing", []) if "error" in r]
    if errors:
        md.append("\nFailed configurations:\n\n" + "".join(
            f"- {r.get('method', 'timing')} {r.get('decoder', '')} D={r['descriptor_dim']}: {r['error']}\n" for r in errors))
    md.append("\nPaper, Table 1 (GPU memory, GB): NT-Xent DON " +
              ", ".join(f"D={d}: {v}" for d, v in PAPER_GB["ntxent"].items()) + "; the paper's method " +
              ", ".join(f"D={d}: {v}" for d, v in PAPER_GB["keypoint"].items()) + ".\n")
    files = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md", "png": out_dir / f"{name}.png"}
    atomic_write_text(files["md"], "".join(md))
    atomic_write_json(files["json"], report)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"keypoint": "tab:blue", "ntxent": "tab:green", "ntxent_fullres": "tab:orange"}
    for method, decoder in _configs(results):
        style = "o-" if decoder == "none" else "s--"
        ds = [d for d in dims if _get(results, method, d, "peak_mb", decoder)]
        label = f"{SHORT[method]}, decoder {decoder}"
        axes[0].plot(ds, [_get(results, method, d, "peak_mb", decoder) / 1024 for d in ds], style,
                     color=colors[method], label=label)
        axes[1].plot(ds, [_get(results, method, d, "step_s", decoder) for d in ds], style, color=colors[method],
                     alpha=0.6, label=label + ", separate processes")
    for t in timing:
        for x in t["setups"]:
            axes[1].plot([t["descriptor_dim"]], [x["step_s"]], "o" if x["decoder"] == "none" else "s",
                         color=colors[x["method"]], markersize=10, markeredgecolor="black")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.set_xlabel("descriptor dimension D")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("GiB (process RSS, peak)")
    axes[0].set_title(f"Training-step peak memory, {s['width']}x{s['height']}, batch 1, CPU", fontsize=10)
    axes[1].set_ylabel("seconds per step (median)")
    axes[1].set_title("Training-step time (big markers: interleaved)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, files["png"])
    plt.close(fig)
    return {k: str(v) for k, v in files.items()}


def _setup(text: str):
    m, _, d = text.partition(":")
    if m not in METHODS or d not in DECODERS:
        raise argparse.ArgumentTypeError(f"timing setup must be METHOD:DECODER with METHOD in {METHODS} and DECODER "
                                         f"in {DECODERS}, got {text!r}")
    return (m, d)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training_memory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"only D in {QUICK_DIMS} (smoke test)")
    p.add_argument("--dims", type=int, nargs="+", default=None, help=f"descriptor dimensions (default {DIMS})")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="keypoint, ntxent (sampled at the correspondences, as train_model), ntxent_fullres "
                        "(benchmark-only: upsampled to the full image first, issue 5's NT-Xent); default all")
    p.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=DECODERS,
                   help="none (the paper's stride-32 network) and/or fpn (default both)")
    p.add_argument("--fpn-stride", type=int, default=4, choices=(4, 8), help="output stride of the fpn decoder")
    p.add_argument("--decoder-channels", type=int, default=128, help="C of the fpn decoder")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--correspondences", type=int, default=128)
    p.add_argument("--num-keypoints", type=int, default=8)
    p.add_argument("--steps", type=int, default=4, help="training steps per configuration (first one not timed)")
    p.add_argument("--repeats", type=int, default=1,
                   help="fresh processes per configuration; the row is the run with the median peak (all peaks kept "
                        "in peak_mb_repeats: the high-water mark varies by a few tens of MiB from run to run)")
    p.add_argument("--timing-dims", type=int, nargs="*", default=None,
                   help="D values for the interleaved step-time comparison of every measured (method, decoder) "
                        "(default: 3 and 512 if measured; none with --quick)")
    p.add_argument("--timing-rounds", type=int, default=5, help="timed rounds of the interleaved comparison")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads in every worker (default: torch's default, one per core); on a "
                        "machine shared with other jobs 1 avoids OpenMP threads spinning against each other")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    p.add_argument("--name", default="training_memory", help="output file stem (default training_memory)")
    p.add_argument("--from-json", default=None, help="only re-render the .md and .png from an earlier .json report")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--timing-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--timing-setups", type=_setup, nargs="+", default=None, help=argparse.SUPPRESS)
    p.add_argument("--method", default=None, help=argparse.SUPPRESS)
    p.add_argument("--decoder", default="none", help=argparse.SUPPRESS)
    p.add_argument("--dim", type=int, default=None, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        raise SystemExit("--steps and --repeats must be >= 1")
    if (args.worker or args.timing_worker) and args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.worker:
        result = run_worker(args.method, args.dim, args.height, args.width, args.correspondences, args.steps,
                            args.num_keypoints, decoder=args.decoder, fpn_stride=args.fpn_stride,
                            decoder_channels=args.decoder_channels)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if args.timing_worker:
        result = run_timing_worker(args.dim, args.height, args.width, args.correspondences, args.timing_rounds,
                                   args.timing_setups, args.num_keypoints, fpn_stride=args.fpn_stride,
                                   decoder_channels=args.decoder_channels)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    from tqdm import tqdm

    from ._common import RESULTS_DIR, machine_description

    if args.from_json:
        report = upgrade_report(json.loads(Path(args.from_json).read_text()))
        report["targets"] = evaluate_targets(report["results"], report.get("interleaved_timing", []),
                                             report["settings"].get("fpn_stride", 4))
        files = write_outputs(report, Path(args.output_dir) if args.output_dir else Path(args.from_json).parent,
                              args.name)
        print("wrote", ", ".join(files.values()))
        return 0
    dims = list(args.dims or (QUICK_DIMS if args.quick else DIMS))
    out_dir = Path(args.output_dir) if args.output_dir else RESULTS_DIR
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = machine_description()
    configs = [(m, dec, d) for dec in args.decoders for d in dims for m in args.methods]
    results = []
    bar = tqdm(configs, desc="training_memory", unit="config")
    for method, decoder, dim in bar:
        bar.set_postfix_str(f"{method} {decoder} D={dim}")
        runs = [measure_in_subprocess(method, dim, args, decoder=decoder) for _ in range(args.repeats)]
        ok = sorted((x for x in runs if "error" not in x), key=lambda x: x["peak_mb"])
        r = runs[0] if not ok else dict(ok[(len(ok) - 1) // 2])
        if ok and args.repeats > 1:
            r["peak_mb_repeats"] = [x["peak_mb"] for x in runs if "error" not in x]
            r["train_mb_repeats"] = [x["train_mb"] for x in runs if "error" not in x]
            r["failed_repeats"] = len(runs) - len(ok)
        results.append(r)
        if "error" in r:
            tqdm.write(f"{method:14s} {decoder:4s} D={dim:3d}: ERROR {r['error']}")
        else:
            tqdm.write(f"{method:14s} {decoder:4s} D={dim:3d}: peak {r['peak_mb']:8.0f} MiB  baseline "
                       f"{r['baseline_mb']:6.0f} MiB  step {r['step_s']:.2f} s")
    if args.timing_dims is None:
        timing_dims = [] if args.quick else [d for d in (3, 512) if d in dims]
    else:
        timing_dims = list(args.timing_dims)
    setups = [(m, dec) for dec in args.decoders for m in args.methods]
    timing = []
    for dim in tqdm(timing_dims, desc="interleaved step timing", unit="D", disable=not timing_dims):
        t = measure_in_subprocess("timing", dim, args, timing_setups=setups)
        t.setdefault("descriptor_dim", dim)
        timing.append(t)
        if "error" in t:
            tqdm.write(f"interleaved timing D={dim}: ERROR {t['error']}")
        else:
            tqdm.write(f"interleaved timing D={dim}: " + ", ".join(
                f"{x['method']}/{x['decoder']} {x['step_s']:.2f} s" for x in t["setups"]))
    imports = [r["import_mb"] for r in results if "import_mb" in r]
    cmd = "python -m benchmarks.training_memory" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(argv if argv is not None else sys.argv[1:]))
    report = {
        "command": cmd,
        "machine": machine,
        "machine_after": {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"dims": dims, "methods": list(args.methods), "decoders": list(args.decoders),
                     "fpn_stride": args.fpn_stride, "decoder_channels": args.decoder_channels,
                     "height": args.height, "width": args.width,
                     "correspondences": args.correspondences, "num_keypoints": args.num_keypoints, "steps": args.steps,
                     "repeats": args.repeats,
                     "timing_dims": timing_dims, "timing_rounds": args.timing_rounds, "threads": args.threads},
        "import_mb_median": round(statistics.median(imports), 1) if imports else None,
        "results": results,
        "interleaved_timing": timing,
        "targets": evaluate_targets(results, timing, args.fpn_stride),
    }
    files = write_outputs(report, out_dir, args.name)
    for t in report["targets"]:
        print(f"target (issue {t['issue']}): {t['target']}: measured {t['value']} -> "
              f"{'n/a' if t['met'] is None else ('met' if t['met'] else 'NOT met')}")
    print("wrote", ", ".join(files.values()))
    return 0 if all("error" not in r for r in results + timing) else 1


if __name__ == "__main__":
    raise SystemExit(main())
