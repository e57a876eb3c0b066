"""Training configuration: YAML -> nested dataclasses, validated in ``__post_init__``.

``load_config(path, overrides)`` reads ``config/train.yaml``-style files; ``overrides`` are ``"section.key=value"``
strings whose value is parsed as YAML (``--set optim.lr=3.0e-4``). Unknown sections or keys are errors that name
the file and the key. Write floats with a dot (``3.0e-4``): PyYAML reads ``3e-4`` as a string, which is rejected
here with a clear message.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

__all__ = [
    "ModelConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "apply_overrides",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "train.yaml"


SCHEDULES = ("step", "cosine")


def _number(name: str, value, lo=None, hi=None, integer=False, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (PyYAML reads '3e-4' as a string: write 3.0e-4)" if isinstance(value, str) else ""
        raise ValueError(f"{name} must be a number, got {value!r}{hint}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return int(value) if integer else float(value)


@dataclass
class ModelConfig:
    """Arguments of :class:`~dense_descriptor_grasp.model.network.DenseDescriptorNet`."""

    method: str = "keypoint"  # keypoint (this paper) | ntxent (Dense Object Nets baseline)
    descriptor_dim: int = 16  # D, 3..512
    num_keypoints: int = 8  # N (>= 3: the pose loss fits a rigid motion)
    output_stride: int = 32  # decoder none: 32 (paper) | 16 | 8; decoder fpn: 2 | 4 | 8
    decoder: str = "none"  # none (paper: projected trunk output) | fpn (feature pyramid, skip connections)
    decoder_channels: int = 128  # channels of the pyramid levels (decoder fpn)
    input: str = "rgb"  # rgb (paper) | rgbd (RGB + surface normals and relative depth of the depth image)
    pretrained: bool = False  # torchvision ImageNet weights (downloads once)
    weights_path: Optional[str] = None  # local ResNet-34 state dict instead of downloading
    depth_init: float = 0.5  # metres, initial output of the depth head
    foreground: bool = False  # a head that predicts the target's silhouette (trained by losses.foreground); the
    #                           inference path then searches only pixels it sees as the target
    norm_statistics: str = "running"  # what BatchNorm normalises with at inference: running (PyTorch's default, the
    #                                   averages of training) | image (each image's own statistics)
    coarse_heads: bool = False  # decoder fpn: D-channel projections of layer3 / layer4 alone, trained by
    #                             losses.coords_deep (deep supervision of the geometry term); unused at inference

    def __post_init__(self):
        if self.method not in ("keypoint", "ntxent"):
            raise ValueError(f"model.method must be 'keypoint' or 'ntxent', got {self.method!r}")
        self.descriptor_dim = _number("model.descriptor_dim", self.descriptor_dim, 3, 512, integer=True)
        self.num_keypoints = _number("model.num_keypoints", self.num_keypoints, 3 if self.method == "keypoint" else 0, integer=True)
        if self.decoder not in ("none", "fpn"):
            raise ValueError(f"model.decoder must be 'none' or 'fpn', got {self.decoder!r}")
        strides = (8, 16, 32) if self.decoder == "none" else (2, 4, 8)
        if self.output_stride not in strides:
            raise ValueError(f"model.output_stride must be one of {strides} with model.decoder {self.decoder!r}, "
                             f"got {self.output_stride!r}")
        self.decoder_channels = _number("model.decoder_channels", self.decoder_channels, 8, 512, integer=True)
        if self.input not in ("rgb", "rgbd"):
            raise ValueError(f"model.input must be 'rgb' or 'rgbd', got {self.input!r}")
        if not isinstance(self.pretrained, bool):
            raise ValueError(f"model.pretrained must be true or false, got {self.pretrained!r}")
        if self.weights_path is not None and not isinstance(self.weights_path, str):
            raise ValueError(f"model.weights_path must be a path string or null, got {self.weights_path!r}")
        self.depth_init = _number("model.depth_init", self.depth_init, 0, lo_open=True)
        if not isinstance(self.foreground, bool):
            raise ValueError(f"model.foreground must be true or false, got {self.foreground!r}")
        if self.norm_statistics not in ("running", "image"):
            raise ValueError(f"model.norm_statistics must be 'running' or 'image', got {self.norm_statistics!r}")
        if not isinstance(self.coarse_heads, bool):
            raise ValueError(f"model.coarse_heads must be true or false, got {self.coarse_heads!r}")
        if self.coarse_heads and self.decoder != "fpn":
            raise ValueError("model.coarse_heads needs model.decoder 'fpn' (the heads read the trunk stages the "
                             f"pyramid reads), got decoder {self.decoder!r}")


@dataclass
class DataConfig:
    """Where the pairs come from: ``data.dataset.RGBDDataset`` + ``data.pairs.PairDataset``."""

    dataset: Optional[str] = None  # dataset folder written by generate_dataset (required to train)
    mode: str = "augment"  # augment (paper: two virtual cameras of one view) | multiview (two rendered views) | mixed
    augment_fraction: float = 0.5  # mode mixed: share of augmentation pairs among the multi-view items
    cross_scene_fraction: float = 0.0  # modes multiview / mixed: share of multi-view pairs across two scenes
    split: Optional[str] = "train"  # train | val | null (all views); scenes held out by RGBDDataset's hash split
    val_fraction: float = 0.1  # share of scenes held out as "val" (evaluation uses the same number)
    image_size: Optional[list] = None  # [H, W] to resize views to (K scaled), null = as stored
    crop: Optional[list] = None  # [h, w]: train on windows of this size around the target, null = whole views
    num_correspondences: int = 128  # M correspondences per pair
    num_negatives: int = 0  # off-object pixels per view (background, other objects): NT-Xent negatives
    negative_margin_px: int = 2  # those negatives keep this many pixels away from the target's mask
    num_workers: int = 0  # DataLoader workers
    sensor_noise: float = 0.0  # chance per view of capture.noise's RGB-D sensor noise on what the network sees
    augment: dict = field(default_factory=dict)  # AugmentConfig fields (rotation_deg, translation, scale, ...)
    jitter: dict = field(default_factory=dict)  # JitterConfig fields (brightness, contrast, saturation, hue, ...)
    multiview_background: bool = False  # multi-view pairs also get data.augment's background replacement

    def __post_init__(self):
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise ValueError(f"data.dataset must be a path string, got {self.dataset!r}")
        if self.mode not in ("augment", "multiview", "mixed"):
            raise ValueError(f"data.mode must be 'augment', 'multiview' or 'mixed', got {self.mode!r}")
        self.augment_fraction = _number("data.augment_fraction", self.augment_fraction, 0, 1)
        self.cross_scene_fraction = _number("data.cross_scene_fraction", self.cross_scene_fraction, 0, 1)
        self.sensor_noise = _number("data.sensor_noise", self.sensor_noise, 0, 1)
        if self.split not in (None, "train", "val"):
            raise ValueError(f"data.split must be 'train', 'val' or null, got {self.split!r}")
        self.val_fraction = _number("data.val_fraction", self.val_fraction, 0, 0.99)
        if self.image_size is not None:
            if not (isinstance(self.image_size, (list, tuple)) and len(self.image_size) == 2):
                raise ValueError(f"data.image_size must be [H, W] or null, got {self.image_size!r}")
            self.image_size = [_number("data.image_size", v, 32, integer=True) for v in self.image_size]
        if self.crop is not None:
            if not (isinstance(self.crop, (list, tuple)) and len(self.crop) == 2):
                raise ValueError(f"data.crop must be [h, w] or null, got {self.crop!r}")
            self.crop = [_number("data.crop", v, 8, integer=True) for v in self.crop]
        self.num_correspondences = _number("data.num_correspondences", self.num_correspondences, 2, integer=True)
        self.num_negatives = _number("data.num_negatives", self.num_negatives, 0, integer=True)
        self.negative_margin_px = _number("data.negative_margin_px", self.negative_margin_px, 0, integer=True)
        self.num_workers = _number("data.num_workers", self.num_workers, 0, integer=True)
        if not isinstance(self.augment, dict):
            raise ValueError(f"data.augment must be a mapping of AugmentConfig fields, got {self.augment!r}")
        if not isinstance(self.multiview_background, bool):
            raise ValueError(f"data.multiview_background must be true or false, got {self.multiview_background!r}")
        if not isinstance(self.jitter, dict):
            raise ValueError(f"data.jitter must be a mapping of JitterConfig fields, got {self.jitter!r}")
        if "sensor_noise" in self.jitter:
            raise ValueError("data.jitter: set the sensor noise with data.sensor_noise, not data.jitter.sensor_noise")


@dataclass
class LossConfig:
    """Loss weights (paper: all 1 except variance 1e-3) and loss parameters."""

    silhouette: float = 1.0
    variance: float = 1.0e-3
    separation: float = 1.0
    multiview: float = 1.0
    pose: float = 1.0
    observed_depth: float = 0.0  # not in the paper (0 = paper); ties keypoint depth to the depth image
    ntxent: float = 0.0  # weight of an NT-Xent term added to the keypoint method (method ntxent: always 1)
    separation_margin: float = 0.02  # delta, metres
    length_scale: float = 1.0  # metres per unit of the separation and multi-view losses (1 = paper's metres)
    huber_delta: float = 1.0  # in length_scale units (PyTorch's default; the paper does not state it)
    ntxent_temperature: float = 0.1  # tau of the NT-Xent baseline
    ntxent_negatives: bool = True  # use the pairs' off-object pixels (data.num_negatives) as extra negatives
    hard_negatives: int = 0  # keep only the h most similar off-object negatives per anchor (0 = all)
    ntxent_exclude_px: float = 0.0  # correspondences nearer than this (px) to the positive are not negatives
    coords: float = 0.0  # method ntxent: weight of the geometry term (descriptors -> embedding of object points)
    coords_sigma: float = 0.02  # metres, length scale of that embedding
    coords_deep: float = 0.0  # method ntxent: weight of the geometry term on the coarse heads (model.coarse_heads)
    coords_deep_sigma: float = 0.04  # metres, the embedding's length scale for those stride-16 / 32 heads
    surface_balance: float = 0.0  # method ntxent: voxel edge (m) of the object; each correspondence weighs 1 / the
    #                               correspondences in its voxel, so each piece of the surface counts alike (0 = off)
    foreground: float = 1.0  # weight of the foreground head's loss (BCE against the target mask; model.foreground)

    def __post_init__(self):
        if not isinstance(self.ntxent_negatives, bool):
            raise ValueError(f"losses.ntxent_negatives must be true or false, got {self.ntxent_negatives!r}")
        self.hard_negatives = _number("losses.hard_negatives", self.hard_negatives, 0, integer=True)
        self.ntxent_exclude_px = _number("losses.ntxent_exclude_px", self.ntxent_exclude_px, 0)
        self.coords = _number("losses.coords", self.coords, 0)
        self.coords_sigma = _number("losses.coords_sigma", self.coords_sigma, 0, lo_open=True)
        self.coords_deep = _number("losses.coords_deep", self.coords_deep, 0)
        self.coords_deep_sigma = _number("losses.coords_deep_sigma", self.coords_deep_sigma, 0, lo_open=True)
        self.surface_balance = _number("losses.surface_balance", self.surface_balance, 0)
        self.foreground = _number("losses.foreground", self.foreground, 0)
        for name in ("silhouette", "variance", "separation", "multiview", "pose", "observed_depth", "ntxent"):
            setattr(self, name, _number(f"losses.{name}", getattr(self, name), 0))
        self.separation_margin = _number("losses.separation_margin", self.separation_margin, 0)
        self.huber_delta = _number("losses.huber_delta", self.huber_delta, 0, lo_open=True)
        self.length_scale = _number("losses.length_scale", self.length_scale, 0, lo_open=True)
        self.ntxent_temperature = _number("losses.ntxent_temperature", self.ntxent_temperature, 0, lo_open=True)

    def weights(self) -> dict:
        return {k: getattr(self, k) for k in ("silhouette", "variance", "separation", "multiview", "pose", "observed_depth", "ntxent")}


@dataclass
class OptimConfig:
    """Adam + StepLR (paper), or Adam + a cosine decay over the run's budget; optionally an average of the weights."""

    lr: float = 1.0e-4
    weight_decay: float = 0.0
    schedule: str = "step"  # step (paper: StepLR lr_step / lr_gamma) | cosine (optim.lr -> 0 over the budget)
    lr_step: int = 2000  # StepLR step_size, in optimisation steps
    lr_gamma: float = 0.5
    schedule_minutes: Optional[float] = None  # cosine: horizon in training minutes (null: train.max_minutes, or
    #                                           train.steps when there is no time budget)
    ema: float = 0.0  # decay of an exponential moving average of the weights, saved as the model (0 = off)
    grad_clip: Optional[float] = 10.0  # max global gradient norm (null: off); not in the paper, a safety net
    fused: bool = True  # PyTorch's fused Adam kernel where the device has one (CPU, CUDA): the same update, faster

    def __post_init__(self):
        self.lr = _number("optim.lr", self.lr, 0, lo_open=True)
        self.weight_decay = _number("optim.weight_decay", self.weight_decay, 0)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule: expected one of {list(SCHEDULES)}, got {self.schedule!r}")
        self.lr_step = _number("optim.lr_step", self.lr_step, 1, integer=True)
        self.lr_gamma = _number("optim.lr_gamma", self.lr_gamma, 0, 1, lo_open=True)
        if self.schedule_minutes is not None:
            self.schedule_minutes = _number("optim.schedule_minutes", self.schedule_minutes, 0, lo_open=True)
        self.ema = _number("optim.ema", self.ema, 0, 1)
        if self.ema >= 1.0:
            raise ValueError(f"optim.ema must be < 1 (a decay; 0 = off), got {self.ema!r}")
        if self.grad_clip is not None:
            self.grad_clip = _number("optim.grad_clip", self.grad_clip, 0, lo_open=True)
        if not isinstance(self.fused, bool):
            raise ValueError(f"optim.fused: expected true or false, got {self.fused!r}")


@dataclass
class RunConfig:
    """Length, output and logging of one run."""

    steps: int = 2000  # total optimisation steps (a resumed run continues up to this number); 0 = write the
    #                    untrained network as last.pt (a floor for evaluate_model and the grasp benchmark)
    batch_size: int = 1
    device: str = "cpu"
    seed: int = 0
    out: Optional[str] = None  # run folder (last.pt, history, loss curve, tensorboard/); null: models/<method>_d<D>
    checkpoint_every: int = 200
    log_every: int = 10  # TensorBoard scalars
    image_every: int = 200  # TensorBoard keypoint overlays (0: never)
    max_minutes: Optional[float] = None  # wall-clock budget; stops cleanly with a checkpoint
    tensorboard: bool = True
    num_threads: Optional[object] = None  # torch intra-op threads (null: torch's default); 1 is fastest on a busy
    #                                       CPU; auto: one thread or all cores, whichever measures faster (re-checked)
    precision: str = "fp32"  # fp32 | bf16 | auto: bf16 = the network's pass under bfloat16 autocast (losses in
    #                          float32); auto = bf16 where the CPU (AVX512+) or GPU runs it natively, else fp32

    def __post_init__(self):
        self.steps = _number("train.steps", self.steps, 0, integer=True)
        self.batch_size = _number("train.batch_size", self.batch_size, 1, integer=True)
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"train.device must be 'cpu' or 'cuda[:i]', got {self.device!r}")
        self.seed = _number("train.seed", self.seed, 0, integer=True)
        if self.out is not None and (not isinstance(self.out, str) or not self.out):
            raise ValueError(f"train.out must be a folder path, got {self.out!r}")
        self.checkpoint_every = _number("train.checkpoint_every", self.checkpoint_every, 1, integer=True)
        self.log_every = _number("train.log_every", self.log_every, 1, integer=True)
        self.image_every = _number("train.image_every", self.image_every, 0, integer=True)
        if self.max_minutes is not None:
            self.max_minutes = _number("train.max_minutes", self.max_minutes, 0, lo_open=True)
        if self.num_threads is not None and self.num_threads != "auto":
            if isinstance(self.num_threads, str):
                raise ValueError(f"train.num_threads must be an integer >= 1, 'auto' or null, got {self.num_threads!r}")
            self.num_threads = _number("train.num_threads", self.num_threads, 1, integer=True)
        if not isinstance(self.tensorboard, bool):
            raise ValueError(f"train.tensorboard must be true or false, got {self.tensorboard!r}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"train.precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}")


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "losses": LossConfig, "optim": OptimConfig, "train": RunConfig}


@dataclass
class TrainConfig:
    """The whole training configuration (one section per dataclass above)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"TrainConfig.{name} must be a {cls.__name__}")
        if self.model.foreground and self.losses.foreground <= 0:
            raise ValueError("model.foreground: the foreground head needs losses.foreground > 0 to be trained "
                             f"(got {self.losses.foreground})")
        if self.model.coarse_heads != (self.losses.coords_deep > 0) or \
                (self.model.coarse_heads and self.model.method != "ntxent"):
            raise ValueError("model.coarse_heads and losses.coords_deep go together (method ntxent): the heads are "
                             "trained only by that term and the term needs the heads; got model.coarse_heads="
                             f"{self.model.coarse_heads}, losses.coords_deep={self.losses.coords_deep}, "
                             f"model.method={self.model.method!r}")
        if self.train.out is None:
            self.train.out = f"models/{self.model.method}_d{self.model.descriptor_dim}"

    @classmethod
    def from_dict(cls, data: Optional[dict], source: str = "config") -> "TrainConfig":
        """Build from a nested mapping; unknown sections / keys raise ``ValueError`` naming ``source``."""
        data = data or {}
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping of sections {sorted(_SECTIONS)}, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {unknown}; expected {sorted(_SECTIONS)}")
        sections = {}
        for name, scls in _SECTIONS.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{source}: section '{name}' must be a mapping, got {values!r}")
            known = {f.name for f in dataclasses.fields(scls)}
            bad = sorted(set(values) - known)
            if bad:
                raise ValueError(f"{source}: unknown key(s) {[f'{name}.{k}' for k in bad]}; section '{name}' has {sorted(known)}")
            try:
                sections[name] = scls(**values)
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
        return cls(**sections)

    def to_dict(self) -> dict:
        """JSON / YAML-safe nested dict (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)


def apply_overrides(data: dict, overrides, source: str = "--set") -> dict:
    """Apply ``"section.key=value"`` strings (value parsed as YAML) to a nested dict; returns a new dict."""
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{source}: the config must be a mapping of sections {sorted(_SECTIONS)}, "
                         f"got a {type(data).__name__}")
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in (data or {}).items()}
    for item in overrides or ():
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"{source}: expected 'section.key=value', got {item!r}")
        key, raw = item.split("=", 1)
        section, name = key.strip().split(".", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else None
        except yaml.YAMLError as exc:
            raise ValueError(f"{source}: cannot parse the value of {key!r}: {exc}") from None
        sec = out.setdefault(section, {})
        if not isinstance(sec, dict):
            raise ValueError(f"{source}: section {section!r} is not a mapping")
        sec[name] = value
    return out


def _yaml_error_line(exc: Exception) -> str:
    """One line for a YAML parse error: 'line L, column C: problem' (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{' '.join(str(problem).split())}"


def load_config(path=None, overrides=()) -> TrainConfig:
    """Read a YAML config (default ``config/train.yaml`` of the source tree when present), apply overrides, validate."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--config: no config file at {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: {_yaml_error_line(exc)}") from None
        source = str(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"{source}: the top level must be a mapping of sections {sorted(_SECTIONS)}, "
                             f"got a {type(data).__name__}")
    data = apply_overrides(data, overrides, source="--set")
    return TrainConfig.from_dict(data, source=source)
