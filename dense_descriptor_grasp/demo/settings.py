"""The demo's settings (every size and budget of one run; ``--quick`` shrinks them), its constants, step labels,
log line and two small file helpers the steps share."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dense_descriptor_grasp.atomic_io import atomic_write_bytes


OBJECT = "duck"
TRAIN_STATE = "demo_train.json"   # in the model folder: last.pt is the demo's, with this preset
EVAL_DIR = "clutter_eval"         # in the output folder: the semantic-point evaluation's report and picture
OLD_DATASET = "data/demo_duck"    # the dataset of the demo before clutter (single duck): no longer used
STEPS = ("dataset", "train", "evaluate", "reference", "pipeline", "pictures")
METHOD_ALIASES = {"keypoint": "paper", "ntxent": "ntxent"}   # deprecated --method -> --preset


def step_number(name: str) -> str:
    return f"{STEPS.index(name) + 1}/{len(STEPS)}"


def step_label(name: str) -> str:
    return f"{step_number(name)} {name}"


@dataclass
class DemoSettings:
    """Every size and budget of one demo run (``--quick`` shrinks them)."""

    root: Path = Path(".")
    dataset: str = "data/demo_duck_clutter"     # training set: duck + "train" distractors
    eval_dataset: str = "data/demo_duck_eval"   # held out: another seed, "eval" distractors
    model_dir: str = "models/demo"
    out: str = "outputs/demo"
    views: int = 600
    views_per_scene: int = 3
    distractors: str = "train"
    distractors_per_scene: tuple = (2, 4)
    eval_views: int = 120
    eval_views_per_scene: int = 2
    eval_distractors: str = "eval"
    eval_seed_offset: int = 1000                # eval seed = seed + this (other scenes than the training set's)
    width: int = 160
    height: int = 120
    preset: str = "clutter_rgbd"                # training/presets.py (the best measured: README)
    num_correspondences: int = 256              # data.num_correspondences unless the preset sets it
    train_minutes: float = 15.0
    max_steps: int | None = 100000   # the wall-clock budget ends training (None: the training config's train.steps)
    checkpoint_every: int = 25
    part: str = "head_top"
    surface_points: int = 4
    poses: int = 10
    camera_rate: float = 4.0         # frames per second of the sim camera
    pipeline_timeout: float = 0.0    # 0: 60 s + 30 s per pose
    seed: int = 0
    pose_seed: int = 7               # seed of the sim camera's object poses (other than the dataset's)
    device: str = "cpu"
    threads: int | str = "auto"      # torch intra-op threads for training; auto: one thread or all cores, whichever
    #                                  measures faster while it trains (train.num_threads auto, training/threads.py)
    precision: str = "auto"          # train.precision: bf16 where the CPU / GPU computes it natively, else fp32
    tensorboard: bool = True
    split: str | None = "train"
    quick: bool = False

    def path(self, rel: str) -> Path:
        return self.root / rel

    @property
    def checkpoint(self) -> Path:
        return self.path(self.model_dir) / "last.pt"

    @property
    def eval_seed(self) -> int:
        return self.seed + self.eval_seed_offset

    @property
    def eval_dir(self) -> Path:
        return self.path(self.out) / EVAL_DIR


def log(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    return atomic_write_bytes(path, png.tobytes())


def set_aside(path: Path) -> Path:
    """Rename ``path`` to the first free ``<path>.old``, ``<path>.old2``, ... and return the new name."""
    k = 1
    while True:
        kept = path.with_name(f"{path.name}.old{'' if k == 1 else k}")
        if not kept.exists():
            path.replace(kept)
            return kept
        k += 1
