"""``train_model``: train a DenseDescriptorNet on image pairs (KeypointNet task, or the NT-Xent baseline).

Usage::

    train_model --config config/train.yaml --dataset data/duck --out models/duck_keypoint --steps 2000
    train_model --method ntxent --descriptor-dim 16 --dataset data/duck --out models/duck_ntxent --max-minutes 30
    train_model --out models/duck_keypoint --resume            # continue from models/duck_keypoint/last.pt
    train_model --set losses.multiview=10.0 --set optim.lr=3.0e-4 ...

Writes into the run folder ``train.out``: ``last.pt`` (atomic, every ``checkpoint_every`` steps and at the end),
``history.json`` / ``history.csv`` (loss terms per step), ``loss_curve.png``, ``config.yaml`` (the resolved config)
and ``tensorboard/`` event files. Exit code 0 on success, 1 on a non-finite loss, 2 on a bad configuration.

The wall-clock budget ``train.max_minutes`` counts every run of the folder: a checkpoint records the training
seconds used so far (``metadata.train_seconds``), and a resumed run stops when the total reaches the budget
(``--resume --max-minutes 30`` after 10 minutes trains 20 more).

The shape of the torchvision references: :func:`main` parses, :func:`run_training` sets the run up
(:func:`start_run`: a fresh seeded model, or everything a checkpoint holds restored in one place), :func:`train_steps`
is the loop (the ``train_one_epoch`` of this repo: the data is endless) around :func:`train_step`. The data
wiring is ``training/data.py``, the history, loss curve and TensorBoard ``training/run_log.py``, seeding and RNG
state ``training/reproducibility.py``.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import torch
import yaml

from dense_descriptor_grasp.atomic_io import atomic_write_text
from dense_descriptor_grasp.model.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from dense_descriptor_grasp.model.network import DenseDescriptorNet

from .config import TrainConfig, apply_overrides, load_config
from .data import pair_batches
from .objective import compute_losses, move_batch, resolve_precision
from .reproducibility import capture_rng_state, git_commit, restore_rng_state, seed_everything
from .run_log import RunLog, read_history
from .threads import ThreadTuner, threads_arg

__all__ = [
    "get_args_parser",
    "config_from_args",
    "build_model",
    "build_optimizer",
    "CosineBudgetLR",
    "WeightAverage",
    "pair_batches",
    "TrainingRun",
    "start_run",
    "training_seconds",
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
    p.add_argument("--output-stride", type=int, choices=(2, 4, 8, 16, 32),
                   help="model.output_stride (decoder fpn: 2 | 4 | 8)")
    p.add_argument("--decoder", choices=("none", "fpn"), help="model.decoder")
    p.add_argument("--steps", type=int, help="train.steps (total; a resumed run continues up to it)")
    p.add_argument("--batch-size", type=int, help="train.batch_size")
    p.add_argument("--lr", type=float, help="optim.lr")
    p.add_argument("--device", help="train.device (cpu | cuda[:i])")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--out", help="train.out: run folder (models/NAME)")
    p.add_argument("--checkpoint-every", type=int, help="train.checkpoint_every")
    p.add_argument("--max-minutes", type=float,
                   help="train.max_minutes: wall-clock budget of the run folder (a resumed run counts the minutes of "
                        "the earlier runs, recorded in the checkpoint)")
    p.add_argument("--threads", dest="num_threads", type=threads_arg, metavar="N|auto",
                   help="train.num_threads: torch intra-op threads, or auto (one thread or all cores, whichever "
                        "measures faster, checked again at growing intervals)")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"],
                   help="train.precision: bf16 runs the network under bfloat16 autocast (losses in float32); auto: "
                        "bf16 where the CPU (AVX512 or newer) or GPU runs it natively, else fp32")
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
    "precision": "train.precision",
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
        input=m.input,
        foreground=m.foreground,
        norm_statistics=m.norm_statistics,
        coarse_heads=m.coarse_heads,
    )


class CosineBudgetLR:
    """``lr = optim.lr * (1 + cos(pi * progress)) / 2``: a cosine decay to 0 over the run's horizon.

    ``progress`` in [0, 1] is the share of the horizon used (:meth:`TrainingRun.progress`: training minutes of
    ``optim.schedule_minutes`` or ``train.max_minutes``, else steps of ``train.steps``); the loop sets it before
    every step. Its state (the last progress) is saved with the checkpoint like a torch scheduler's.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float):
        self.optimizer, self.base_lr, self.progress = optimizer, float(base_lr), 0.0
        self.set_progress(0.0)

    def set_progress(self, progress: float) -> float:
        self.progress = min(max(float(progress), 0.0), 1.0)
        lr = self.base_lr * 0.5 * (1.0 + math.cos(math.pi * self.progress))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step(self) -> None:
        """Nothing per step: the learning rate follows :meth:`set_progress`."""

    def state_dict(self) -> dict:
        return {"progress": self.progress, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        self.set_progress(state.get("progress", 0.0))


class WeightAverage:
    """An exponential moving average of a model's weights and buffers (``optim.ema``): after step ``t``,
    ``avg = d_t avg + (1 - d_t) weights`` with ``d_t = min(optim.ema, (1 + t) / (10 + t))`` (short memory early, so
    the random initialisation fades). ``model`` is a copy of the network holding the average; checkpoints save it as
    *the* model (what evaluation and the nodes load) and the trained weights beside it for ``--resume``.
    """

    def __init__(self, model: torch.nn.Module, decay: float, averaged: Optional[torch.nn.Module] = None):
        self.decay = float(decay)
        self.model = averaged if averaged is not None else copy.deepcopy(model)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        live = model.state_dict()
        for name, avg in self.model.state_dict().items():
            if avg.is_floating_point():
                avg.lerp_(live[name].detach(), 1.0 - d)
            else:
                avg.copy_(live[name])


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    """Adam + StepLR (the paper's choice; steps once per optimisation step) or Adam + :class:`CosineBudgetLR`.

    With ``optim.fused`` (default) Adam runs fused (one kernel over all parameters, the same update) where PyTorch
    has that kernel for the parameters' device (CPU, CUDA); on the 2-core CPU that is more steps in the same minutes
    (benchmarks/results/optimizer_fused_ab.txt). Its state dict is plain Adam's, so runs resume either way.
    """
    device = next(model.parameters()).device
    fused = bool(cfg.optim.fused) and device.type in ("cpu", "cuda")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                           **({"fused": True} if fused else {}))
    if cfg.optim.schedule == "cosine":
        return opt, CosineBudgetLR(opt, cfg.optim.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.optim.lr_step, gamma=cfg.optim.lr_gamma)
    return opt, sched


def train_step(model, batch: dict, optimizer, cfg: TrainConfig, step: int) -> tuple[dict, tuple]:
    """One optimisation step on one pair batch. Returns ``({term: float, "total", "grad_norm"}, outputs)``.

    Raises :class:`NonFiniteLossError` when a loss term is NaN/inf. A step whose gradients are non-finite (the loss
    being finite) is skipped and reported with ``grad_norm = nan``.
    """
    model.train()
    batch = move_batch(batch, next(model.parameters()).device)
    terms = compute_losses(model, batch, cfg.losses, cfg.train.precision)
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


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class TrainingRun:
    """Everything a run trains and saves: model, optimizer, scheduler, where it starts, the training time of the
    earlier runs of the folder, and the checkpoint file."""

    cfg: TrainConfig
    out: Path
    model: DenseDescriptorNet
    optimizer: torch.optim.Optimizer
    scheduler: object
    start_step: int = 0
    seconds_before: float = 0.0          # training seconds of earlier runs (the resumed checkpoint's train_seconds)
    history: list = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    threads: Optional[ThreadTuner] = None   # train.num_threads auto
    commit: Optional[str] = None
    average: Optional[WeightAverage] = None   # optim.ema > 0

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    def seconds(self) -> float:
        """Seconds of this run so far."""
        return time.monotonic() - self.started

    def deadline(self) -> Optional[float]:
        """``time.monotonic()`` at which ``train.max_minutes`` of the folder's training time is used up (or None)."""
        if not self.cfg.train.max_minutes:
            return None
        return self.started + 60.0 * self.cfg.train.max_minutes - self.seconds_before

    def progress(self, step: int) -> float:
        """Share of the run's horizon used at ``step`` (the cosine schedule's clock): training minutes of
        ``optim.schedule_minutes`` (or ``train.max_minutes``) counted over every run of the folder, else
        ``step / train.steps``."""
        minutes = self.cfg.optim.schedule_minutes or self.cfg.train.max_minutes
        if minutes:
            return (self.seconds_before + self.seconds()) / (60.0 * minutes)
        return step / max(self.cfg.train.steps, 1)

    def save(self, step: int, record: RunLog) -> Path:
        """``last.pt`` at ``step`` (with the training seconds of all runs so far) and the history files."""
        seconds = self.seconds()
        meta = {
            "dataset": self.cfg.data.dataset,
            "losses": dict(record.last_values),
            "train_input_size": list(record.input_size),
            "wall_seconds": round(seconds, 1),
            "train_seconds": round(self.seconds_before + seconds, 1),
            "git_commit": self.commit,
        }
        saved, extra = self.model, None
        if self.average is not None:   # the average is the model; the trained weights go beside it for --resume
            saved = self.average.model
            extra = {"trained_model_state": {k: v.detach().to("cpu") for k, v in self.model.state_dict().items()}}
            meta["weights"] = f"exponential moving average, decay {self.average.decay}"
        path = save_checkpoint(self.checkpoint_path, saved, self.optimizer, self.scheduler, step=step,
                               config={**self.cfg.to_dict(), "train_input_size": list(record.input_size)},
                               metadata=meta, rng_state=capture_rng_state(), extra=extra)
        record.write_history()
        return path


def training_seconds(ckpt: dict) -> float:
    """Training seconds a checkpoint's folder has used: ``metadata.train_seconds``; checkpoints from before it was
    recorded give their last run's ``wall_seconds``."""
    meta = ckpt.get("metadata") or {}
    return float(meta.get("train_seconds", meta.get("wall_seconds", 0.0)) or 0.0)


def start_run(cfg: TrainConfig, out: Path, device, resume: Optional[str] = None,
              log: Callable[[str], None] = print) -> TrainingRun:
    """A fresh run (seeded, new model) or, with ``resume``, everything the checkpoint holds restored in one place:
    weights, optimizer and scheduler state, step, RNG state, the history up to that step and the training time."""
    if resume is None:
        seed_everything(cfg.train.seed)
        model = build_model(cfg).to(device)
        optimizer, scheduler = build_optimizer(model, cfg)
        average = WeightAverage(model, cfg.optim.ema) if cfg.optim.ema > 0 else None
        return TrainingRun(cfg, out, model, optimizer, scheduler, commit=git_commit(), average=average)
    path = resume_path(resume, out)
    ckpt = load_checkpoint(path)
    stored_method = ckpt["model_config"].get("method")
    if stored_method != cfg.model.method:
        raise ValueError(f"--resume: {path} holds a {stored_method!r} model but the config says {cfg.model.method!r}")
    model = model_from_checkpoint(ckpt, source=str(path)).to(device)
    average = None
    if ckpt.get("trained_model_state") is not None:   # saved with optim.ema: the model is the average
        averaged = model
        model = copy.deepcopy(averaged)
        model.load_state_dict(ckpt["trained_model_state"], strict=True)
        model.train()
        if cfg.optim.ema > 0:
            average = WeightAverage(model, cfg.optim.ema, averaged=averaged)
    elif cfg.optim.ema > 0:
        average = WeightAverage(model, cfg.optim.ema)
    optimizer, scheduler = build_optimizer(model, cfg)
    if ckpt.get("optimizer_state") is not None:
        optimizer.load_state_dict(ckpt["optimizer_state"])
    if ckpt.get("scheduler_state") is not None:
        scheduler.load_state_dict(ckpt["scheduler_state"])
    if ckpt.get("rng_state") is not None:
        restore_rng_state(ckpt["rng_state"])
    step = int(ckpt["step"])
    run = TrainingRun(cfg, out, model, optimizer, scheduler, start_step=step, seconds_before=training_seconds(ckpt),
                      history=read_history(out, step), commit=git_commit(), average=average)
    log(f"train_model: resuming from {path} at step {step} ({run.seconds_before / 60.0:.1f} min of training so far)")
    return run


def train_steps(run: TrainingRun, batches: Iterator[dict], record: RunLog, progress: bool = True) -> tuple[int, str]:
    """Steps ``run.start_step + 1 .. train.steps`` until the folder's time budget is used up (the
    ``train_one_epoch`` of this repo: the data is endless); each step is recorded, and checkpointed every
    ``train.checkpoint_every`` steps.

    Returns ``(last_step, stop_reason)`` with ``stop_reason`` in ``{"steps", "time"}``.
    """
    from tqdm import tqdm

    cfg = run.cfg
    step, reason, deadline = run.start_step, "steps", run.deadline()
    bar = tqdm(total=cfg.train.steps, initial=step, desc=f"train {cfg.model.method}", disable=not progress,
               dynamic_ncols=True, leave=True)
    try:
        while step < cfg.train.steps:
            if deadline is not None and time.monotonic() >= deadline:
                reason = "time"
                break
            batch = next(batches)
            step += 1
            if isinstance(run.scheduler, CosineBudgetLR):
                run.scheduler.set_progress(run.progress(step - 1))
            if run.threads is not None:
                threads = run.threads.threads_for(step)
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                started = time.perf_counter()
            values, outputs = train_step(run.model, batch, run.optimizer, cfg, step)
            if run.threads is not None:
                run.threads.record(step, threads, time.perf_counter() - started)
                values["threads"] = threads
            run.scheduler.step()
            if run.average is not None:
                run.average.update(run.model, step)
            values["lr"] = run.optimizer.param_groups[0]["lr"]
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k != "lr"}, refresh=False)
            record.record(step, values, outputs, batch)
            if step % cfg.train.checkpoint_every == 0:
                run.save(step, record)
    finally:
        bar.close()
    return step, reason


def _run_folder(cfg: TrainConfig, resume: Optional[str], overwrite: bool) -> Path:
    out = Path(cfg.train.out)
    if resume is None and not overwrite and (out / CHECKPOINT_NAME).is_file():
        raise FileExistsError(
            f"train.out: {out / CHECKPOINT_NAME} exists (an earlier run); continue it with --resume, start afresh "
            f"with --overwrite (replaces it), or give another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _device(cfg: TrainConfig) -> torch.device:
    device = torch.device(cfg.train.device)
    if cfg.train.num_threads is not None and cfg.train.num_threads != "auto":
        torch.set_num_threads(cfg.train.num_threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: CUDA requested but not available; use --device cpu")
    return device


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
        resume: a checkpoint path, ``"auto"`` for ``<out>/last.pt``, or None for a fresh run. The run trains up to
            ``train.steps`` or until ``train.max_minutes`` of training time, counted over every run of the folder,
            is used up.
        overwrite: a fresh run (``resume`` None) into a folder that holds ``last.pt`` replaces it; otherwise such a
            folder raises ``FileExistsError`` before anything is written.
        batches: an iterable of pair batches to use instead of ``PairDataset`` (tests, custom data).
    """
    out = _run_folder(cfg, resume, overwrite)
    device = _device(cfg)
    if cfg.train.precision == "auto":
        cfg.train.precision = resolve_precision("auto", device)
        log(f"train_model: train.precision auto -> {cfg.train.precision} on {device}")
    run = start_run(cfg, out, device, resume, log)
    threads_before = torch.get_num_threads()
    if cfg.train.num_threads == "auto" and device.type == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        run.threads = ThreadTuner(high=cores)
        torch.set_num_threads(1)
        log(f"train_model: train.num_threads auto: 1 thread, {cores} tried at growing intervals"
            if run.threads.enabled else "train_model: train.num_threads auto: one core, 1 thread")
    batch_iter = iter(batches) if batches is not None else \
        pair_batches(cfg, seed=cfg.train.seed + run.start_step, progress=progress)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    record = RunLog(cfg, out, run.start_step, run.history)
    status, step = "ok", run.start_step
    try:
        step, reason = train_steps(run, batch_iter, record, progress)
    except NonFiniteLossError as exc:
        status = reason = "nan"
        step = record.last_step or run.start_step
        log(f"train_model: {exc}")
        log(f"train_model: last good checkpoint kept at {run.checkpoint_path} (not overwritten)")
    finally:
        record.close()
        if run.threads is not None:
            torch.set_num_threads(threads_before)   # auto changed them per step; the caller's setting comes back
    elapsed = run.seconds()
    if status == "ok":
        run.save(step, record)
    else:
        record.write_history()
    curve = record.plot()
    if reason == "time":
        log(f"train_model: wall-clock budget of {cfg.train.max_minutes} min reached at step {step}")
    summary = {
        "status": status,
        "stop_reason": reason,
        "step": step,
        "start_step": run.start_step,
        "steps_run": step - run.start_step,
        "seconds": round(elapsed, 2),
        "train_seconds": round(run.seconds_before + elapsed, 2),
        "seconds_per_step": round(elapsed / max(step - run.start_step, 1), 4),
        "checkpoint": str(run.checkpoint_path),
        "loss_curve": str(curve) if curve else None,
        "final": record.last_values,
    }
    if run.threads is not None:
        summary["steps_per_thread_count"] = dict(sorted(run.threads.steps_at.items()))
        log(f"train_model: steps per torch thread count (train.num_threads auto): {summary['steps_per_thread_count']}")
    log(f"train_model: {status} after step {step} ({summary['steps_run']} steps, {elapsed:.1f} s) -> "
        f"{run.checkpoint_path}")
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
