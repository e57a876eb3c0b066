"""`evaluate_model`: standard PCK@k of one or more checkpoints on held-out image pairs, a JSON report and PNGs.

```
evaluate_model --checkpoints models/keypoint.pt models/ntxent.pt --dataset data/duck --split val \
    --output-dir reports/eval --num-pairs 50 --num-correspondences 100 --seed 0
```

What it does:

- Data: the ``--split`` (default ``val``) of the dataset as the data loader defines it
  (``data.dataset.RGBDDataset(root, split="val", val_fraction=...)``): whole **scenes** (one object pose each, all
  of its views) are held out by a hash of the scene id, so neither the views nor the object poses of the evaluated
  images were seen by ``train_model`` (which trains on ``split="train"`` with the same ``val_fraction``).
  ``--val-fraction`` defaults to the value stored in the first checkpoint's training config (0.1 otherwise); the
  report records each model's training split and warns when a model was trained on all views.
- Pairs: **augmentation pairs** (``PairDataset(mode="augment")``: one view and a spatially augmented copy with
  exact correspondences) and, when the dataset has them, **true multi-view pairs** (``mode="multiview"``: two
  views of the same scene, correspondences through depth and camera poses). Pairs are drawn with a fixed seed
  (``--seed``: the pair indices, and ``PairDataset(seed=...)``'s per-item generator) and every model sees exactly
  the same pairs and correspondences. When the split has fewer views than ``--num-pairs``, augmentation pairs
  continue with further ``PairDataset`` epochs (new augmentations of the same held-out views); multi-view pairs are
  capped at the number of ordered view pairs of the split's scenes. An item whose pair cannot be made (``PairError``) is skipped and counted.
- Metric: :mod:`evaluation.pck` - for every valid correspondence, A's descriptor is matched against B's object mask
  (``--whole-image``: against every pixel of B); A's query pixel is the nearest pixel to ``uv_a``; PCK at 1, 3, 5, 10, 20 px, the area under PCK(k) for k = 1..100
  normalised to [0, 1], and the median pixel error, pooled over all correspondences of all pairs.
- ``evaluate_model --semantic --dataset DIR --model a.pt [--model b.pt ...] --out DIR``: the semantic-point
  evaluation on held-out cluttered scenes instead (named parts of the object, references from another scene,
  untrained and mask-centroid floors): :mod:`evaluation.semantic`, ``evaluate_model --semantic --help``.
- Output in ``--output-dir``: ``report.json`` (settings, per-model, per-pair-kind summaries and full PCK curves),
  ``pck_curves.png`` (one panel per pair kind, side by side, one curve per model), ``matches_<kind>.png``
  (the first ``--num-visual-pairs`` pairs: A's pixels joined to each model's best match in B, green when within
  ``--visual-threshold`` px of the truth, red otherwise). All files are written atomically.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from dense_descriptor_grasp.atomic_io import atomic_save_figure, atomic_write_json, json_safe

from .pck import AUC_MAX_K, PCK_THRESHOLDS, correspondence_pixel_errors, pck_curve, summarize_pixel_errors

__all__ = ["PAIR_KINDS", "evaluate_models", "plot_pck_curves", "plot_matches", "get_args_parser", "main"]

PAIR_KINDS = ("augment", "multiview")


# ----------------------------------------------------------------------------------------------- small helpers
def _model_names(paths: Sequence[str]) -> List[str]:
    """Unique display names: the file stem (``keypoint.pt`` -> ``keypoint``); when stems collide (``run_a/last.pt``,
    ``run_b/last.pt``) the parent folder name; remaining duplicates get ``_2``, ``_3``, ..."""
    stems = [Path(p).stem for p in paths]
    base = [Path(p).resolve().parent.name if stems.count(st) > 1 and Path(p).resolve().parent.name else st
            for p, st in zip(paths, stems)]
    names, seen = [], {}
    for b in base:
        seen[b] = seen.get(b, 0) + 1
        names.append(b if seen[b] == 1 else f"{b}_{seen[b]}")
    return names


# ----------------------------------------------------------------------------------------------- data
SPLITS = ("val", "train", "all")


def _load_split(dataset_root: str, split: str, val_fraction: float, image_size=None):
    """``RGBDDataset`` of ``split`` ("all" = every view)."""
    from dense_descriptor_grasp.data.dataset import RGBDDataset  # heavy import kept local

    return RGBDDataset(dataset_root, split=None if split == "all" else split, val_fraction=val_fraction,
                       image_size=image_size, validate=True)


def _make_pairs(dataset, mode: str, num_correspondences: int, seed: int):
    """``PairDataset`` of ``mode`` or ``(None, reason)`` when the dataset cannot make such pairs."""
    from dense_descriptor_grasp.data.pairs import PairDataset

    try:
        pairs = PairDataset(dataset, mode=mode, num_correspondences=num_correspondences, seed=seed)
    except ValueError as exc:
        return None, str(exc)
    if len(pairs) == 0:
        return None, f"no {mode} pairs in this split"
    return pairs, ""


def _get_pair(pairs, item):
    """One pair with a leading batch dim of 1, or None when the loader cannot make it (``PairError``).

    ``item`` is ``(epoch, index)``: ``PairDataset`` seeds item ``index`` of epoch ``epoch`` itself, so the pair is
    reproducible; a later epoch of an augmentation pair is a new random augmentation of the same view."""
    from dense_descriptor_grasp.data.pairs import PairError, collate_pairs

    epoch, index = item
    if hasattr(pairs, "set_epoch"):
        pairs.set_epoch(epoch)
    try:
        return collate_pairs([pairs[index]])
    except PairError:
        return None


def _pair_items(num_available: int, num_pairs: int, seed: int, kind: str) -> List[tuple]:
    """``(epoch, index)`` items to evaluate: ``num_pairs`` distinct pairs drawn with ``seed``. Augmentation pairs
    cycle through further epochs (new augmentations of the same held-out views) when the split has fewer views
    than ``num_pairs``; multi-view pairs are capped at the number of view pairs in the split."""
    rng = np.random.default_rng(seed)
    if kind != "augment" or num_pairs <= num_available:
        n = min(num_pairs, num_available)
        return [(0, int(i)) for i in sorted(rng.choice(num_available, size=n, replace=False))]
    items = []
    epoch = 0
    while len(items) < num_pairs:
        take = min(num_available, num_pairs - len(items))
        items += [(epoch, int(i)) for i in sorted(rng.choice(num_available, size=take, replace=False))]
        epoch += 1
    return items


# ----------------------------------------------------------------------------------------------- models
def _load_models(checkpoints: Sequence[str], device: str, names: Optional[Sequence[str]] = None) -> Dict[str, torch.nn.Module]:
    from dense_descriptor_grasp.model.checkpoint import load_model

    if not checkpoints:
        raise ValueError("checkpoints: give at least one checkpoint file")
    if names is not None and (len(names) != len(checkpoints) or len(set(names)) != len(names)):
        raise ValueError(f"names: give one unique name per checkpoint ({len(checkpoints)}), got {list(names)}")
    models = {}
    for name, path in zip(names or _model_names(checkpoints), checkpoints):
        models[name] = load_model(path, device=device)
    return models


def _training_data_config(model) -> dict:
    cfg = (getattr(model, "checkpoint_info", {}) or {}).get("config") or {}
    data = cfg.get("data") if isinstance(cfg, dict) else None
    return data if isinstance(data, dict) else {}


def _model_info(model, path: str) -> dict:
    cfg = dict(getattr(model, "config", {}))
    info = dict(getattr(model, "checkpoint_info", {}) or {})
    meta = info.get("metadata", {}) or {}
    data = _training_data_config(model)
    return {
        "path": str(path),
        "method": cfg.get("method"),
        "descriptor_dim": cfg.get("descriptor_dim"),
        "output_stride": cfg.get("output_stride"),
        "num_keypoints": cfg.get("num_keypoints"),
        "identity": getattr(model, "identity", None),
        "step": info.get("step"),
        "training_wall_seconds": meta.get("wall_seconds"),
        "trained_on_dataset": meta.get("dataset", data.get("dataset")),
        "trained_on_split": data.get("split", "unknown") if data else "unknown",
        "trained_val_fraction": data.get("val_fraction"),
        "train_input_size": meta.get("train_input_size"),
    }


# ----------------------------------------------------------------------------------------------- evaluation
def _to_image(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def _geometry(model, batch: dict, view: str, device) -> dict:
    """``depth`` and ``K`` of view ``a`` / ``b`` for a model that reads depth (input 'rgbd'), else nothing."""
    from dense_descriptor_grasp.model.inference import needs_depth

    if not needs_depth(model):
        return {}
    return {"depth": batch[f"depth_{view}"].to(device), "K": batch[f"K_{view}"].to(device)}


def _evaluate_kind(
    models: Dict[str, torch.nn.Module],
    pairs,
    indices: Sequence[int],
    whole_image: bool,
    device: str,
    num_visual_pairs: int,
    max_visual_matches: int,
    kind: str,
    progress: bool,
):
    from tqdm import tqdm

    errors = {name: [] for name in models}
    seconds = {name: 0.0 for name in models}
    images = 0
    visuals = []
    skipped = 0
    for n, item in enumerate(tqdm(indices, desc=f"evaluate {kind} pairs", unit="pair", disable=not progress)):
        batch = _get_pair(pairs, item)
        if batch is None:
            skipped += 1
            continue
        valid = batch["valid"][0].bool()
        if int(valid.sum()) == 0:
            skipped += 1
            continue
        mask_b = None if whole_image else batch["mask_b"][0].bool()
        if mask_b is not None and int(mask_b.sum()) == 0:
            skipped += 1
            continue
        rgb_a = batch["rgb_a"].to(device)
        rgb_b = batch["rgb_b"].to(device)
        uv_a = batch["uv_a"][0][valid]
        uv_b = batch["uv_b"][0][valid]
        visual = None
        if len(visuals) < num_visual_pairs:
            keep = torch.linspace(0, len(uv_a) - 1, min(max_visual_matches, len(uv_a))).round().long().unique()
            visual = {"index": f"{item[1]}" + (f" (epoch {item[0]})" if item[0] else ""), "rgb_a": _to_image(batch["rgb_a"][0]), "rgb_b": _to_image(batch["rgb_b"][0]),
                      "uv_a": uv_a[keep].numpy(), "uv_b": uv_b[keep].numpy(), "pred": {}, "keep": keep}
        for name, model in models.items():
            t0 = time.perf_counter()
            with torch.inference_mode():
                desc_a = model.descriptors(rgb_a, **_geometry(model, batch, "a", device))[0]
                desc_b = model.descriptors(rgb_b, **_geometry(model, batch, "b", device))[0]
            seconds[name] += time.perf_counter() - t0
            err = correspondence_pixel_errors(desc_a, desc_b, uv_a, uv_b, mask_b=mask_b)
            errors[name].append(err)
            if visual is not None:
                from .pck import best_match_pixels

                pred, _ = best_match_pixels(desc_a, desc_b, visual["uv_a"], mask_b=mask_b)
                visual["pred"][name] = pred.numpy()
        images += 2
        if visual is not None:
            del visual["keep"]
            visuals.append(visual)
    pooled = {name: (np.concatenate(e) if e else np.zeros(0)) for name, e in errors.items()}
    results = {}
    for name, err in pooled.items():
        summary = summarize_pixel_errors(err)
        summary["num_pairs"] = len(errors[name])
        summary["skipped_pairs"] = skipped
        summary["pck_curve"] = pck_curve(err).tolist()
        summary["descriptor_seconds_per_image"] = seconds[name] / images if images else None
        results[name] = summary
    return results, visuals


def evaluate_models(
    checkpoints: Sequence[str],
    dataset: str,
    output_dir: str,
    split: str = "val",
    num_pairs: int = 50,
    num_correspondences: int = 100,
    seed: int = 0,
    whole_image: bool = False,
    pair_kinds: Sequence[str] = PAIR_KINDS,
    device: str = "cpu",
    num_visual_pairs: int = 2,
    max_visual_matches: int = 25,
    visual_threshold: float = 10.0,
    progress: bool = True,
    val_fraction: Optional[float] = None,
    image_size: Optional[Sequence[int]] = None,
    names: Optional[Sequence[str]] = None,
) -> dict:
    """Evaluate every checkpoint on the same held-out pairs; write ``report.json`` and the PNGs; return the report.

    Args:
        checkpoints: checkpoint files (any method; ``model.checkpoint`` format).
        dataset: dataset root folder (``data.dataset`` format).
        output_dir: folder for ``report.json``, ``pck_curves.png``, ``matches_<kind>.png``.
        split: the loader's split: ``val`` (scenes held out from training, default), ``train`` or ``all``.
        val_fraction: the loader's share of held-out scenes; None = the first checkpoint's training value (or 0.1).
        image_size: ``(H, W)`` to resize views to (None = as stored).
        names: display names of the checkpoints (default: file stems, or folder names when stems collide).
        num_pairs: pairs per kind (fewer when the split has fewer).
        num_correspondences: ground-truth correspondences sampled per pair.
        seed: fixes the pair selection, augmentations and correspondences.
        whole_image: search B's whole image instead of its object mask.
        pair_kinds: subset of ``("augment", "multiview")``; kinds the dataset cannot make are reported as skipped.
    """
    for kind in pair_kinds:
        if kind not in PAIR_KINDS:
            raise ValueError(f"pair_kinds: unknown pair kind {kind!r}, expected some of {PAIR_KINDS}")
    if num_pairs < 1 or num_correspondences < 1:
        raise ValueError(f"num_pairs and num_correspondences must be >= 1, got {num_pairs} and {num_correspondences}")
    if not Path(dataset).exists():
        raise FileNotFoundError(f"dataset: no dataset folder at {dataset}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    output_dir = Path(output_dir)
    models = _load_models(checkpoints, device, names)
    infos = {name: _model_info(m, p) for (name, m), p in zip(models.items(), checkpoints)}
    warnings = []
    if val_fraction is None:
        stored = [i["trained_val_fraction"] for i in infos.values() if i["trained_val_fraction"] is not None]
        val_fraction = float(stored[0]) if stored else 0.1
    for name, info in infos.items():
        if info["trained_val_fraction"] is not None and abs(float(info["trained_val_fraction"]) - val_fraction) > 1e-12:
            warnings.append(f"{name} was trained with val_fraction={info['trained_val_fraction']}, evaluation uses "
                            f"{val_fraction}: the held-out scenes differ")
        if split != "train" and info["trained_on_split"] in (None, "val"):
            warnings.append(f"{name} was trained on split {info['trained_on_split']!r}: its training views overlap the "
                            f"evaluated {split!r} split")
    data = _load_split(dataset, split, val_fraction, image_size)
    if len(data) == 0:
        raise ValueError(f"dataset: split {split!r} of {dataset} has no views")

    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv else None,
        "settings": {
            "dataset": str(dataset),
            "split": split,
            "val_fraction": val_fraction,
            "image_size": list(image_size) if image_size is not None else "as stored",
            "num_views_in_split": len(data),
            "num_scenes_in_split": len(data.scenes()) if hasattr(data, "scenes") else None,
            "num_pairs": num_pairs,
            "num_correspondences": num_correspondences,
            "seed": seed,
            "search_region": "whole image" if whole_image else "object mask of B",
            "pck_thresholds_px": list(PCK_THRESHOLDS),
            "auc_k_range_px": [1, AUC_MAX_K],
            "device": device,
            "query_pixel": "nearest pixel to uv_a",
        },
        "models": infos,
        "warnings": warnings,
        "pair_kinds": {},
        "results": {name: {} for name in models},
    }
    visuals_by_kind = {}
    for kind in pair_kinds:
        pairs, reason = _make_pairs(data, kind, num_correspondences, seed)
        if pairs is None:
            report["pair_kinds"][kind] = {"evaluated": False, "reason": reason}
            continue
        indices = _pair_items(len(pairs), num_pairs, seed, kind)
        results, visuals = _evaluate_kind(models, pairs, indices, whole_image, device, num_visual_pairs,
                                          max_visual_matches, kind, progress)
        report["pair_kinds"][kind] = {"evaluated": True, "num_pairs_available": len(pairs),
                                     "pair_items_epoch_index": [list(i) for i in indices]}
        for name, summary in results.items():
            report["results"][name][kind] = summary
        visuals_by_kind[kind] = visuals

    output_dir.mkdir(parents=True, exist_ok=True)
    files = {"report": str(output_dir / "report.json")}
    evaluated = [k for k in pair_kinds if report["pair_kinds"][k]["evaluated"]]
    if evaluated:
        files["pck_curves"] = str(plot_pck_curves(report, output_dir / "pck_curves.png"))
        for kind in evaluated:
            if visuals_by_kind[kind]:
                files[f"matches_{kind}"] = str(plot_matches(visuals_by_kind[kind], list(models), output_dir / f"matches_{kind}.png",
                                                           threshold=visual_threshold, title=f"{kind} pairs"))
    report["files"] = files
    atomic_write_json(output_dir / "report.json", report, strict=True)
    return report


# ----------------------------------------------------------------------------------------------- plots
def plot_pck_curves(report: dict, path) -> Path:
    """PCK(k) for k = 1..100, one panel per evaluated pair kind side by side, one curve per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k, v in report["pair_kinds"].items() if v.get("evaluated")]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(5.2 * max(1, len(kinds)), 4.0), squeeze=False)
    ks = np.arange(1, AUC_MAX_K + 1)
    for ax, kind in zip(axes[0], kinds):
        for name, per_kind in report["results"].items():
            r = per_kind.get(kind)
            if not r:
                continue
            curve = np.array([np.nan if c is None else c for c in r["pck_curve"]], dtype=float)
            auc = r["auc"]
            label = f"{name} ({report['models'][name].get('method')}, D={report['models'][name].get('descriptor_dim')}) AUC={auc:.3f}"
            ax.plot(ks, curve, label=label)
        ax.set_title(f"PCK@k, {kind} pairs ({report['settings']['split']} split, {report['settings']['search_region']})", fontsize=9)
        ax.set_xlabel("k [px]")
        ax.set_ylabel("PCK@k")
        ax.set_xlim(1, AUC_MAX_K)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = atomic_save_figure(fig, Path(path))
    plt.close(fig)
    return out


def plot_matches(visuals: List[dict], model_names: Sequence[str], path, threshold: float = 10.0, title: str = "") -> Path:
    """Rows = models, columns = pairs; each cell shows A | B with lines from A's pixel to the model's best match in
    B (green: within ``threshold`` px of the true pixel, red: not) and the true pixels of B as white circles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(model_names), len(visuals)
    h, w = visuals[0]["rgb_a"].shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols * (2 * w / max(h, 1)) / 2.6, 2.6 * rows + 0.4), squeeze=False)
    for r, name in enumerate(model_names):
        for c, vis in enumerate(visuals):
            ax = axes[r][c]
            a, b = vis["rgb_a"], vis["rgb_b"]
            hh = max(a.shape[0], b.shape[0])
            canvas = np.zeros((hh, a.shape[1] + b.shape[1], 3), np.uint8)
            canvas[: a.shape[0], : a.shape[1]] = a
            canvas[: b.shape[0], a.shape[1]:] = b
            ax.imshow(canvas)
            off = a.shape[1]
            pred = vis["pred"][name]
            err = np.linalg.norm(pred - vis["uv_b"], axis=1)
            for (ua, va), (up, vp), e in zip(vis["uv_a"], pred, err):
                color = "lime" if e <= threshold else "red"
                ax.plot([ua, up + off], [va, vp], color=color, linewidth=0.7, alpha=0.8)
                ax.plot(ua, va, "o", color=color, markersize=2)
            ax.scatter(vis["uv_b"][:, 0] + off, vis["uv_b"][:, 1], s=10, facecolors="none", edgecolors="white", linewidths=0.6)
            ax.set_title(f"{name}, pair {vis['index']}: {np.mean(err <= threshold):.0%} within {threshold:g}px", fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(f"Best matches, {title} (A left, B right; white circles = true pixels in B)", fontsize=9)
    fig.tight_layout()
    out = atomic_save_figure(fig, Path(path))
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------------- CLI
def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate_model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", "-c", nargs="+", required=True, help="one or more checkpoint files (any method)")
    p.add_argument("--names", nargs="+", default=None, help="display names, one per checkpoint (default: file stems)")
    p.add_argument("--dataset", required=True, help="dataset root folder")
    p.add_argument("--split", default="val", choices=SPLITS,
                   help="dataset split (default: val = scenes held out from training by RGBDDataset's hash split)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of held-out scenes (default: the first checkpoint's training value, else 0.1)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="resize views to H W (default: as stored)")
    p.add_argument("--output-dir", default="reports/eval", help="folder for report.json and the PNGs")
    p.add_argument("--num-pairs", type=int, default=50, help="pairs per pair kind")
    p.add_argument("--num-correspondences", type=int, default=100, help="ground-truth correspondences per pair")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--whole-image", action="store_true", help="search the whole of image B, not only its object mask")
    p.add_argument("--pair-kinds", nargs="+", default=list(PAIR_KINDS), choices=PAIR_KINDS)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-visual-pairs", type=int, default=2, help="pairs drawn in matches_<kind>.png")
    p.add_argument("--visual-threshold", type=float, default=10.0, help="px; green/red threshold in the match plots")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's default; 1 is faster on a machine shared with other jobs)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--semantic", action="store_true",
                   help="run the semantic-point evaluation on held-out cluttered scenes instead "
                        "(its own options: evaluate_model --semantic --help)")
    return p


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _print_table(report: dict) -> None:
    head = f"{'model':24s} {'pairs':10s} " + " ".join(f"PCK@{k:<3d}" for k in PCK_THRESHOLDS) + "    AUC  median_px"
    print(head)
    for name, per_kind in report["results"].items():
        for kind, r in per_kind.items():
            pcks = " ".join(f"{_num(r['pck'][str(k)]):7.3f}" for k in PCK_THRESHOLDS)
            print(f"{name:24s} {kind:10s} {pcks} {_num(r['auc']):6.3f} {_num(r['median_error_px']):9.1f}")
    for w in report.get("warnings", []):
        print(f"warning: {w}")
    for kind, info in report["pair_kinds"].items():
        if not info.get("evaluated"):
            print(f"({kind} pairs not evaluated: {info.get('reason')})")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--semantic" in argv:
        from .semantic import main as semantic_main

        return semantic_main([a for a in argv if a != "--semantic"])
    args = get_args_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = evaluate_models(
            args.checkpoints, args.dataset, args.output_dir, split=args.split, num_pairs=args.num_pairs,
            num_correspondences=args.num_correspondences, seed=args.seed, whole_image=args.whole_image,
            pair_kinds=args.pair_kinds, device=args.device, num_visual_pairs=args.num_visual_pairs,
            visual_threshold=args.visual_threshold, progress=not args.no_progress,
            val_fraction=args.val_fraction, image_size=args.image_size, names=args.names,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"evaluate_model: error: {exc}", file=sys.stderr)
        return 2
    _print_table(json_safe(report))
    print(f"report: {report['files']['report']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
