"""One checkpoint format for every tool: ``save_checkpoint`` / ``load_checkpoint`` / ``load_model`` / ``model_identity``.

A checkpoint is a single ``torch.save`` dict that ``torch.load(..., weights_only=True)`` accepts::

    {
      "format": "dense_descriptor_grasp.checkpoint",
      "format_version": 1,
      "model_config": {...},        # DenseDescriptorNet.config: method, descriptor_dim, num_keypoints, output_stride,
                                    # depth_init, backbone, image_mean, image_std  (JSON-safe)
      "model_state": state_dict,
      "model_identity": "3f1c...",  # model_identity(): sha256 of model_config + weights, first 16 hex digits
      "optimizer_state": dict | None,
      "scheduler_state": dict | None,
      "step": int,
      "config": dict,               # training config (JSON-safe), e.g. train input size, losses, dataset
      "metadata": dict,             # created (UTC ISO); from the trainer: git_commit, dataset path, last losses,
                                    # wall_seconds (this run), train_seconds (all runs of the folder together)
      "rng_state": dict | None,     # opaque here: torch / numpy / python RNG states for --resume
    }                               # (training/reproducibility.py captures and restores them)

Files are written atomically (temporary file in the same folder, then ``os.replace``).
"""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Optional

import torch

from dense_descriptor_grasp.atomic_io import atomic_write

from .network import DenseDescriptorNet

__all__ = [
    "CheckpointError",
    "FORMAT",
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "model_identity",
]

FORMAT = "dense_descriptor_grasp.checkpoint"
FORMAT_VERSION = 1
_MODEL_ARGS = ("descriptor_dim", "num_keypoints", "output_stride", "method", "depth_init", "decoder", "decoder_channels",
               "input", "foreground", "norm_statistics", "coarse_heads")


class CheckpointError(ValueError):
    """The file exists but is not a usable dense_descriptor_grasp checkpoint."""


def model_identity(model: DenseDescriptorNet) -> str:
    """Short identity of a model: sha256 over its JSON config and every state-dict tensor, first 16 hex digits.

    Two models give the same string exactly when they have the same architecture and bit-identical weights.
    Reference files store it so that a grasp node can refuse descriptors from a different model.
    """
    h = hashlib.sha256(json.dumps(model.config, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().to("cpu").contiguous()
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _json_safe(obj, where: str):
    """Check that ``obj`` survives a JSON round trip (no numpy scalars, Paths, Namespaces)."""
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_checkpoint: {where} must be JSON-safe (dicts, lists, str, int, float, bool, None): {exc}") from exc


def save_checkpoint(
    path,
    model: DenseDescriptorNet,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler=None,
    step: int = 0,
    config: Optional[dict] = None,
    metadata: Optional[dict] = None,
    rng_state: Optional[dict] = None,
    extra: Optional[dict] = None,
) -> Path:
    """Write one checkpoint file atomically; returns its path.

    Args:
        path: destination file (its folder is created).
        model: the network; its ``config`` and ``state_dict`` are stored.
        optimizer, scheduler: optional, stored as their ``state_dict`` for ``--resume``.
        step: number of optimisation steps done.
        config: JSON-safe training configuration (e.g. train input size, loss weights, dataset).
        metadata: JSON-safe extras; ``created`` (UTC) is added when absent.
        rng_state: stored as given (the trainer's ``training.reproducibility.capture_rng_state()``, for an exact
            ``--resume``).
        extra: more top-level entries (e.g. the trainer's ``trained_model_state`` when ``model`` is a weight
            average); they may not replace the entries above.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata or {})
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": _json_safe(model.config, "model.config"),
        "model_state": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
        "model_identity": model_identity(model),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "step": int(step),
        "config": _json_safe(config or {}, "config"),
        "metadata": _json_safe(meta, "metadata"),
        "rng_state": rng_state,
    }
    clash = set(extra or {}) & set(payload)
    if clash:
        raise ValueError(f"save_checkpoint: extra entries {sorted(clash)} would replace the checkpoint's own")
    payload.update(extra or {})
    atomic_write(path, lambda f: torch.save(payload, f), fsync=True)
    return path


def load_checkpoint(path, device="cpu") -> dict:
    """Read and validate a checkpoint dict (see the module docstring). Tensors are mapped to ``device``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: unreadable / truncated file, not a dense_descriptor_grasp checkpoint, or an unsupported
            ``format_version``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - random bytes raise anything from IndexError to UnpicklingError
        raise CheckpointError(f"{path} is not a checkpoint: {_unreadable_reason(path, exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a {FORMAT} file (missing 'format' key)")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format_version {version!r}; this code reads version {FORMAT_VERSION}")
    for key in ("model_config", "model_state", "step"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks the {key!r} entry")
    return ckpt


def _unreadable_reason(path: Path, exc: Exception) -> str:
    """One line saying why ``torch.load(weights_only=True)`` failed, without torch's advice to load the file with
    ``weights_only=False`` (that runs arbitrary code from the file; a real checkpoint never needs it)."""
    text = " ".join(str(exc).split())
    if path.stat().st_size == 0:
        return "the file is empty"
    if "weights_only" in text or "Weights only" in text or "WeightsUnpickler" in text:
        return ("not a torch file of this package (random or foreign bytes, or objects a checkpoint never holds: "
                "refused by the safe loader)")
    first = text.split(". ")[0].rstrip(".")
    return f"corrupt, truncated or not a torch file ({type(exc).__name__}: {first[:200]})" if first else \
        f"corrupt, truncated or not a torch file ({type(exc).__name__})"


def model_from_checkpoint(ckpt: dict, device="cpu", source: str = "checkpoint") -> DenseDescriptorNet:
    """Rebuild the network from a loaded checkpoint dict (weights loaded strictly, identity verified)."""
    cfg = ckpt["model_config"]
    try:
        kwargs = {k: cfg[k] for k in _MODEL_ARGS if k in cfg}
        model = DenseDescriptorNet(**kwargs, pretrained=False, weights_path=None)
        model.load_state_dict(ckpt["model_state"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: the stored model config / weights do not build a DenseDescriptorNet: {exc}") from exc
    stored = ckpt.get("model_identity")
    identity = model_identity(model)
    if stored is not None and stored != identity:
        raise CheckpointError(f"{source}: weights do not match the stored model identity {stored} (got {identity}); file corrupt?")
    model.identity = identity
    return model.to(device)


def load_model(path, device="cpu") -> DenseDescriptorNet:
    """The model stored at ``path``, rebuilt from the file alone, on ``device``, in ``eval()`` mode.

    The returned model has an ``identity`` attribute (:func:`model_identity`) and a ``checkpoint_info`` dict
    (step, config, metadata) for reports.
    """
    ckpt = load_checkpoint(path, device="cpu")
    model = model_from_checkpoint(ckpt, device=device, source=str(path))
    model.checkpoint_info = {
        "path": str(path),
        "step": int(ckpt["step"]),
        "config": ckpt.get("config", {}),
        "metadata": ckpt.get("metadata", {}),
    }
    return model.eval()
