"""What a training run writes besides its checkpoints: the loss history (``history.json`` / ``history.csv``), the
loss curve (``loss_curve.png``) and TensorBoard scalars and keypoint images (``tensorboard/``).

tensorboard is imported here only, and only when ``train.tensorboard`` is on.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dense_descriptor_grasp.atomic_io import atomic_save_figure, atomic_write_json, atomic_write_text

from .config import TrainConfig
from .objective import LOSS_TERMS

__all__ = ["RunLog", "read_history", "write_history", "plot_history", "keypoint_overlay"]


class RunLog:
    """The loss history of one run folder and its TensorBoard writer.

    ``history``: the rows of earlier runs up to the resumed step (:func:`read_history`); :meth:`record` appends one
    row per step, writes TensorBoard scalars every ``train.log_every`` steps and keypoint images every
    ``train.image_every`` steps (keypoint method), and remembers the last values and the training input size.
    """

    def __init__(self, cfg: TrainConfig, out: Path, start_step: int = 0, history: Optional[list] = None):
        self.cfg, self.out = cfg, Path(out)
        self.history: list[dict] = list(history or [])
        self.last_values: dict = {}
        self.input_size: list[int] = []
        self.writer = None
        if cfg.train.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.out / "tensorboard"),
                                        purge_step=start_step + 1 if start_step else None)

    @property
    def last_step(self) -> Optional[int]:
        return self.history[-1]["step"] if self.history else None

    def record(self, step: int, values: dict, outputs: tuple, batch: dict) -> None:
        train = self.cfg.train
        self.last_values = dict(values)
        if not self.input_size:
            self.input_size = [int(s) for s in batch["rgb_a"].shape[-2:]]
        self.history.append({"step": step, **values})
        if self.writer is None:
            return
        if step % train.log_every == 0:
            for k, v in values.items():
                self.writer.add_scalar(f"loss/{k}" if k not in ("lr", "grad_norm", "threads") else f"train/{k}", v,
                                       step)
        if train.image_every and step % train.image_every == 0 and self.cfg.model.method == "keypoint":
            for side, out in zip("ab", outputs):
                mask = batch.get(f"mask_{side}", [None])[0]
                self.writer.add_image(f"keypoints/{side}", keypoint_overlay(batch[f"rgb_{side}"][0], out["uv"][0], mask),
                                      step)

    def write_history(self) -> None:
        write_history(self.out, self.history)

    def plot(self) -> Optional[Path]:
        return plot_history(self.out, self.history, self.cfg.model.method)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_history(out: Path, upto_step: int) -> list[dict]:
    """The rows of ``<out>/history.json`` up to ``upto_step`` (a resumed run drops the steps after its checkpoint)."""
    path = Path(out) / "history.json"
    if not path.is_file():
        return []
    return [row for row in json.loads(path.read_text()) if row["step"] <= upto_step]


def write_history(out: Path, history: list[dict]) -> None:
    """``history.json`` and ``history.csv`` (one row per step, the step first)."""
    atomic_write_json(Path(out) / "history.json", history, indent=1)
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    atomic_write_text(Path(out) / "history.csv", table.getvalue())


def plot_history(out: Path, history: list[dict], method: str) -> Optional[Path]:
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
    path = atomic_save_figure(fig, out / "loss_curve.png", dpi=100, bbox_inches=None)
    plt.close(fig)
    return path



def keypoint_overlay(rgb: torch.Tensor, uv: torch.Tensor, mask: Optional[torch.Tensor] = None) -> np.ndarray:
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
