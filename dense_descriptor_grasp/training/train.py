"""``train_model``: train a DenseDescriptorNet on image pairs (KeypointNet task, or the NT-Xent baseline).

Usage::

    train_model --config config/train.yaml --dataset data/duck --out models/duck_keypoint --steps 2000
    train_model --method ntxent --descriptor-dim 16 --dataset data/duck --out models/duck_ntxent --max-minutes 30
    train_model --out models/duck_keypoint --resume            # continue from models/duck_keypoint/last.pt
    train_model --set losses.multiview=10.0 --set optim.lr=3.0e-4 ...

Writes into the run folder ``train.out``: ``last.pt`` (atomic, every ``checkpoint_every`` steps and at the end),
``history.json`` / ``history.csv`` (loss terms per step), ``loss_curve.png``, ``config.yaml`` (the resolved config)
and ``tensorboard/`` event files. Exit code 0 on success, 1 on a non-finite loss, 2 on a bad configuration.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch
import yaml

from dense_descriptor_grasp.atomic_io import atomic_write, atomic_write_text

from dense_descriptor_grasp.model.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    model_from_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from dense_descriptor_grasp.model.network import DenseDescriptorNet

from .config import TrainConfig, apply_overrides, load_config
from .objective import LOSS_TERMS, compute_losses, move_batch

__all__ = [
    "get_args_parser",
    "config_from_args",
    "build_model",
    "build_optimizer",
    "pair_batches",
    "train_step",
    "train_steps",
    "run_training",
    "main",
    "NonFiniteLossError",
]

CHECKPOINT_NAME = "last.pt"


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; training stops (the last good checkpoint is kept)."""


# ---------------------------------------------------------------------------------------------- command line
def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train_model",
        description="Train dense object descriptors: the paper's KeypointNet task (--method keypoint) or the "
        "pixelwise NT-Xent Dense Object Nets baseline (--method ntxent).",
        add_help=add_help,
    )
    p.add_argument("--config", default=None, help="YAML config (default: config/train.yaml of the source tree)")
    p.add_argument("--preset", default=None,
                   help="a named recipe applied before --set and the flags (training/presets.py): paper, ntxent, "
                        "clutter, paper_stride32")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config entry, value parsed as YAML (repeatable), e.g. --set optim.lr=3.0e-4")
    p.add_argument("--dataset", help="dataset folder (data.dataset)")
    p.add_argument("--method", choices=("keypoint", "ntxent"), help="model.method")
    p.add_argument("--descriptor-dim", type=int, help="model.descriptor_dim (3..512)")
    p.add_argument("--num-keypoints", type=int, help="model.num_keypoints")
    p.add_argument("--output-stride", type=int, choices=(4, 8, 16, 32), help="model.output_stride (decoder fpn: 4 | 8)")
    p.add_argument("--decoder", choices=("none", "fpn"), help="model.decoder")
    p.add_argument("--steps", type=int, help="train.steps (total; a resumed run continues up to it)")
    p.add_argument("--batch-size", type=int, help="train.batch_size")
    p.add_argument("--lr", type=float, help="optim.lr")
    p.add_argument("--device", help="train.device (cpu | cuda[:i])")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--out", help="train.out: run folder (models/NAME)")
    p.add_argument("--checkpoint-every", type=int, help="train.checkpoint_every")
    p.add_argument("--max-minutes", type=float, help="train.max_minutes wall-clock budget")
    p.add_argument("--threads", dest="num_threads", type=int, help="train.num_threads (torch intra-op threads)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default: <out>/last.pt) with optimizer, scheduler, step and RNG state")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a run folder that already holds last.pt (its checkpoint, history and config "
                        "are replaced); without it such a folder is refused unless --resume")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


_FLAG_KEYS = {
    "dataset": "data.dataset",
    "method": "model.method",
    "descriptor_dim": "model.descriptor_dim",
    "num_keypoints": "model.num_keypoints",
    "output_stride": "model.output_stride",
    "decoder": "model.decoder",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "device": "train.device",
    "seed": "train.seed",
    "out": "train.out",
    "checkpoint_every": "train.checkpoint_every",
    "max_minutes": "train.max_minutes",
    "num_threads": "train.num_threads",
}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """``--config`` + ``--set`` overrides + explicit flags (flags win), validated.

    With ``--resume`` and no ``--config``, the base configuration is the one stored in the checkpoint, so
    ``train_model --out models/x --resume --steps 4000`` continues the same run with a longer budget.
    """
    overrides = []
    if getattr(args, "preset", None):
        from .presets import preset_overrides

        overrides += preset_overrides(args.preset)
    overrides += list(args.overrides or [])
    for attr, key in _FLAG_KEYS.items():
        value = getattr(args, attr, None)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if getattr(args, "resume", None) is not None and args.config is None:
        path = resume_path(args.resume, args.out or load_config(None, overrides).train.out)
        stored = dict(load_checkpoint(path)["config"])
        stored.pop("train_input_size", None)
        return TrainConfig.from_dict(apply_overrides(stored, overrides), source=f"{path} (stored config)")
    return load_config(args.config, overrides)


def resume_path(resume: str, out) -> Path:
    """``--resume`` value -> checkpoint path (``"auto"`` means ``<out>/last.pt``)."""
    return Path(out) / CHECKPOINT_NAME if resume == "auto" else Path(resume)


# ---------------------------------------------------------------------------------------------- building blocks
def build_model(cfg: TrainConfig) -> DenseDescriptorNet:
    m = cfg.model
    return DenseDescriptorNet(
        descriptor_dim=m.descriptor_dim,
        num_keypoints=m.num_keypoints if m.method == "keypoint" else 0,
        output_stride=m.output_stride,
        method=m.method,
        pretrained=m.pretrained,
        weights_path=m.weights_path,
        depth_init=m.depth_init,
        decoder=m.decoder,
        decoder_channels=m.decoder_channels,
    )


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    """Adam + StepLR (the paper's choice); the scheduler steps once per optimisation step."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.optim.lr_step, gamma=cfg.optim.lr_gamma)
    return opt, sched


class _SkipBadPairs(torch.utils.data.Dataset):
    """Wraps a ``PairDataset``: an item whose pair cannot be made (``PairError``: object warped out of view, too few
    correspondences) is replaced by the next items, deterministically; after 20 failures in a row it raises."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        from dense_descriptor_grasp.data.pairs import PairError

        last = None
        for k in range(20):
            try:
                return self.pairs[(index + k) % len(self.pairs)]
            except PairError as exc:
                last = exc
        raise ValueError(f"data: 20 consecutive items failed to make a pair, last error: {last}")


def pair_batches(cfg: TrainConfig, seed: int, progress: bool = False) -> Iterator[dict]:
    """Endless iterator of collated pair batches from ``data.pairs.PairDataset`` (new augmentations every epoch)."""
    if not cfg.data.dataset:
        raise ValueError("data.dataset: no dataset folder given (use --dataset PATH or set data.dataset in the config)")
    if not Path(cfg.data.dataset).exists():
        raise FileNotFoundError(f"data.dataset: no dataset at {cfg.data.dataset}")
    from dense_descriptor_grasp.data.augment import AugmentConfig
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.data.pairs import PairDataset, collate_pairs

    views = RGBDDataset(cfg.data.dataset, split=cfg.data.split, val_fraction=cfg.data.val_fraction,
                        image_size=cfg.data.image_size, validate=True, progress=progress)
    try:
        augment = AugmentConfig(**cfg.data.augment)
    except TypeError as exc:
        raise ValueError(f"data.augment: {exc}") from None
    pairs = PairDataset(views, mode=cfg.data.mode, num_correspondences=cfg.data.num_correspondences, seed=seed,
                        augment=augment, num_negatives=cfg.data.num_negatives,
                        augment_fraction=cfg.data.augment_fraction)
    if len(pairs) == 0:
        raise ValueError(f"data.dataset: {cfg.data.dataset} yields no training pairs")
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        _SkipBadPairs(pairs),
        batch_size=cfg.train.batch_size,
        shuffle=True,
        drop_last=len(pairs) >= cfg.train.batch_size,
        num_workers=cfg.data.num_workers,
        collate_fn=collate_pairs,
        generator=generator,
    )
    epoch = 0
    while True:
        pairs.set_epoch(epoch)  # workers are re-created per epoch (no persistent_workers) and see the new epoch
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError(f"data.dataset: {cfg.data.dataset} produced no batch of size {cfg.train.batch_size}")
        epoch += 1


def train_step(model, batch: dict, optimizer, cfg: TrainConfig, step: int) -> tuple[dict, tuple]:
    """One optimisation step on one pair batch. Returns ``({term: float, "total", "grad_norm"}, outputs)``.

    Raises :class:`NonFiniteLossError` when a loss term is NaN/inf. A step whose gradients are non-finite (the loss
    being finite) is skipped and reported with ``grad_norm = nan``.
    """
    model.train()
    batch = move_batch(batch, next(model.parameters()).device)
    terms = compute_losses(model, batch, cfg.losses)
    outputs = terms.pop("outputs")
    values = {k: float(v.detach()) for k, v in terms.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: " + ", ".join(f"{k}={values[k]}" for k in bad)
            + " - stopping; lower optim.lr or check the data (depth, masks, poses)"
        )
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if torch.isfinite(grad_norm):
        optimizer.step()
    values["grad_norm"] = float(grad_norm)
    return values, outputs


# ---------------------------------------------------------------------------------------------- logging helpers
def _write_history(out: Path, history: list[dict]) -> None:
    atomic_write_text(out / "history.json", json.dumps(history, indent=1))
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    atomic_write_text(out / "history.csv", table.getvalue())


def _plot_history(out: Path, history: list[dict], method: str) -> Optional[Path]:
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = ["total"] + list(LOSS_TERMS[method]) if method == "keypoint" else ["total"]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3.0), squeeze=False)
    steps = np.array([row["step"] for row in history])
    for ax, term in zip(axes[0], terms):
        y = np.array([row.get(term, np.nan) for row in history], dtype=float)
        ax.plot(steps, y, lw=0.6, alpha=0.5)
        if len(y) >= 10:
            k = max(len(y) // 50, 5)
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], smooth, lw=1.5)
        ax.set_title(term)
        ax.set_xlabel("step")
        if np.all(y[np.isfinite(y)] > 0) and np.isfinite(y).any():
            ax.set_yscale("log")
    fig.suptitle(f"{method} training loss ({out.name})")
    fig.tight_layout()
    path = out / "loss_curve.png"
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path


def _keypoint_overlay(rgb: torch.Tensor, uv: torch.Tensor, mask: Optional[torch.Tensor] = None) -> np.ndarray:
    """``(3, H, W)`` uint8 image with the keypoints ``uv (N, 2)`` drawn as coloured crosses (for TensorBoard)."""
    img = (rgb.detach().cpu().clamp(0, 1) * 255).to(torch.uint8).numpy().copy()
    if mask is not None:
        edge = mask.cpu().numpy().astype(bool)
        img[:, ~edge] = (img[:, ~edge] * 0.6).astype(np.uint8)
    H, W = img.shape[1:]
    colours = [(255, 0, 0), (0, 255, 0), (0, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 128, 0), (255, 255, 255)]
    r = max(2, min(H, W) // 40)
    for i, (u, v) in enumerate(uv.detach().cpu().numpy()):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        cu, cv = int(round(u)), int(round(v))
        c = np.array(colours[i % len(colours)], dtype=np.uint8)[:, None]
        img[:, max(cv - r, 0):min(cv + r + 1, H), min(max(cu, 0), W - 1)] = c
        img[:, min(max(cv, 0), H - 1), max(cu - r, 0):min(cu + r + 1, W)] = c
    return img


# ---------------------------------------------------------------------------------------------- the loop
def train_steps(
    model,
    optimizer,
    scheduler,
    batches: Iterator[dict],
    cfg: TrainConfig,
    start_step: int,
    on_step: Optional[Callable[[int, dict, tuple, dict], None]] = None,
    deadline: Optional[float] = None,
    progress: bool = True,
) -> tuple[int, str]:
    """Steps ``start_step + 1 .. cfg.train.steps`` (the ``train_one_epoch`` of this repo: data here is endless).

    Returns ``(last_step, stop_reason)`` with ``stop_reason`` in ``{"steps", "time"}``.
    ``on_step(step, values, outputs, batch)`` is called after each step (checkpoints, TensorBoard).
    """
    from tqdm import tqdm

    step = start_step
    reason = "steps"
    bar = tqdm(total=cfg.train.steps, initial=start_step, desc=f"train {cfg.model.method}", disable=not progress,
               dynamic_ncols=True, leave=True)
    try:
        while step < cfg.train.steps:
            if deadline is not None and time.monotonic() >= deadline:
                reason = "time"
                break
            batch = next(batches)
            step += 1
            values, outputs = train_step(model, batch, optimizer, cfg, step)
            scheduler.step()
            values["lr"] = optimizer.param_groups[0]["lr"]
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k not in ("lr",)}, refresh=False)
            if on_step is not None:
                on_step(step, values, outputs, batch)
    finally:
        bar.close()
    return step, reason


def run_training(
    cfg: TrainConfig,
    resume: Optional[str] = None,
    batches: Optional[Iterable[dict]] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
) -> dict:
    """Train according to ``cfg``; returns a summary dict (``step``, ``stop_reason``, ``checkpoint``, ``final``...).

    Args:
        resume: a checkpoint path, ``"auto"`` for ``<out>/last.pt``, or None for a fresh run.
        overwrite: a fresh run (``resume`` None) into a folder that holds ``last.pt`` replaces it; otherwise such a
            folder raises ``FileExistsError`` before anything is written.
        batches: an iterable of pair batches to use instead of ``PairDataset`` (tests, custom data).
    """
    out = Path(cfg.train.out)
    if resume is None and not overwrite and (out / CHECKPOINT_NAME).is_file():
        raise FileExistsError(
            f"train.out: {out / CHECKPOINT_NAME} exists (an earlier run); continue it with --resume, start afresh "
            f"with --overwrite (replaces it), or give another --out")
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.train.device)
    if cfg.train.num_threads is not None:
        torch.set_num_threads(cfg.train.num_threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: CUDA requested but not available; use --device cpu")

    history: list[dict] = []
    start_step = 0
    ckpt = None
    if resume is not None:
        path = resume_path(resume, out)
        ckpt = load_checkpoint(path)
        stored_method = ckpt["model_config"].get("method")
        if stored_method != cfg.model.method:
            raise ValueError(f"--resume: {path} holds a {stored_method!r} model but the config says {cfg.model.method!r}")
        model = model_from_checkpoint(ckpt, source=str(path)).to(device)
        start_step = int(ckpt["step"])
        if (out / "history.json").is_file():
            history = [row for row in json.loads((out / "history.json").read_text()) if row["step"] <= start_step]
        log(f"train_model: resuming from {path} at step {start_step}")
    else:
        torch.manual_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        model = build_model(cfg).to(device)
    optimizer, scheduler = build_optimizer(model, cfg)
    if ckpt is not None:
        if ckpt.get("optimizer_state") is not None:
            optimizer.load_state_dict(ckpt["optimizer_state"])
        if ckpt.get("scheduler_state") is not None:
            scheduler.load_state_dict(ckpt["scheduler_state"])
        if ckpt.get("rng_state") is not None:
            restore_rng_state(ckpt["rng_state"])

    if batches is None:
        batch_iter = pair_batches(cfg, seed=cfg.train.seed + start_step, progress=progress)
    else:
        batch_iter = iter(batches)

    atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    writer = None
    if cfg.train.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None)

    input_size: list[int] = []
    last_values: dict = {}
    t_start = time.monotonic()

    def checkpoint(step: int) -> Path:
        meta = {
            "dataset": cfg.data.dataset,
            "losses": {k: v for k, v in last_values.items()},
            "train_input_size": input_size,
            "wall_seconds": round(time.monotonic() - t_start, 1),
        }
        path = save_checkpoint(
            out / CHECKPOINT_NAME, model, optimizer, scheduler, step=step,
            config={**cfg.to_dict(), "train_input_size": input_size}, metadata=meta, rng_state=capture_rng_state(),
        )
        _write_history(out, history)
        return path

    def on_step(step: int, values: dict, outputs: tuple, batch: dict) -> None:
        last_values.clear()
        last_values.update(values)
        if not input_size:
            input_size.extend(int(s) for s in batch["rgb_a"].shape[-2:])
        history.append({"step": step, **values})
        if writer is not None and step % cfg.train.log_every == 0:
            for k, v in values.items():
                writer.add_scalar(f"loss/{k}" if k not in ("lr", "grad_norm") else f"train/{k}", v, step)
        if (writer is not None and cfg.train.image_every and step % cfg.train.image_every == 0
                and cfg.model.method == "keypoint"):
            out_a, out_b = outputs
            writer.add_image("keypoints/a", _keypoint_overlay(batch["rgb_a"][0], out_a["uv"][0], batch.get("mask_a", [None])[0]), step)
            writer.add_image("keypoints/b", _keypoint_overlay(batch["rgb_b"][0], out_b["uv"][0], batch.get("mask_b", [None])[0]), step)
        if step % cfg.train.checkpoint_every == 0:
            checkpoint(step)

    deadline = t_start + 60.0 * cfg.train.max_minutes if cfg.train.max_minutes else None
    step = start_step
    status = "ok"
    try:
        step, reason = train_steps(model, optimizer, scheduler, batch_iter, cfg, start_step, on_step, deadline, progress)
    except NonFiniteLossError as exc:
        status = "nan"
        reason = "nan"
        step = history[-1]["step"] if history else start_step
        log(f"train_model: {exc}")
        log(f"train_model: last good checkpoint kept at {out / CHECKPOINT_NAME} (not overwritten)")
    finally:
        if writer is not None:
            writer.close()
    elapsed = time.monotonic() - t_start
    ckpt_path = out / CHECKPOINT_NAME
    if status == "ok":
        ckpt_path = checkpoint(step)
    else:
        _write_history(out, [row for row in history])
    curve = _plot_history(out, history, cfg.model.method)
    if reason == "time":
        log(f"train_model: wall-clock budget of {cfg.train.max_minutes} min reached at step {step}")
    summary = {
        "status": status,
        "stop_reason": reason,
        "step": step,
        "start_step": start_step,
        "steps_run": step - start_step,
        "seconds": round(elapsed, 2),
        "seconds_per_step": round(elapsed / max(step - start_step, 1), 4),
        "checkpoint": str(ckpt_path),
        "loss_curve": str(curve) if curve else None,
        "final": last_values,
    }
    log(f"train_model: {status} after step {step} ({summary['steps_run']} steps, {elapsed:.1f} s) -> {ckpt_path}")
    return summary


def main(args=None) -> int:
    """Console entry point. ``args``: an ``argparse.Namespace``, a list of strings, or None (``sys.argv``)."""
    if not isinstance(args, argparse.Namespace):
        args = get_args_parser().parse_args(args)
    try:
        cfg = config_from_args(args)
    except (ValueError, FileNotFoundError) as exc:  # CheckpointError is a ValueError
        print(f"train_model: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_training(cfg, resume=args.resume, progress=not args.no_progress,
                               overwrite=bool(getattr(args, "overwrite", False)))
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"train_model: {exc}", file=sys.stderr)
        return 2
    return 0 if summary["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
