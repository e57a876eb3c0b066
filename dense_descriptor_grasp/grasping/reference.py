"""Reference file: the descriptors of named object parts, their pixels and 3D points in one reference view.

The format (two encodings, ``.npz`` and ``.json``; every field, its shape and meaning) is documented in
docs/DATA.md, "Reference files". ``load_reference`` refuses a file made with another model identity or another D
with a message that names both, so a grasp node never matches descriptors from different networks.

``interior_samples`` picks reference pixels spread over an object's mask (the demo's surface points, the grasp
benchmark's extra references and the node pipeline benchmark's reference all come from it).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dense_descriptor_grasp.atomic_io import atomic_write

FORMAT = "dense_descriptor_grasp/reference@1"


class ReferenceMismatchError(ValueError):
    """The reference file was made with another model or descriptor dimension."""


@dataclass
class Reference:
    model_identity: str
    descriptors: np.ndarray                 # (R, D)
    pixels: np.ndarray                      # (R, 2)
    points: np.ndarray                      # (R, 3), NaN rows where no depth
    names: list = field(default_factory=list)
    method: str = "keypoint"
    normalized: bool = True
    K: np.ndarray = field(default_factory=lambda: np.eye(3))
    image_size: tuple = (0, 0)
    T_ref_grasp: np.ndarray = field(default_factory=lambda: np.eye(4))
    grasp_index: int = 0
    source: str = ""

    def __post_init__(self):
        self.descriptors = np.asarray(self.descriptors, dtype=np.float32)
        if self.descriptors.ndim != 2 or len(self.descriptors) == 0:
            raise ValueError(f"reference descriptors must be (R, D) with R >= 1, got shape {self.descriptors.shape}")
        r = len(self.descriptors)
        self.pixels = np.asarray(self.pixels, dtype=np.float64).reshape(r, 2)
        self.points = np.asarray(self.points, dtype=np.float64).reshape(r, 3)
        if not self.names:
            self.names = [f"ref{i}" for i in range(r)]
        self.names = [str(n) for n in self.names]
        if len(self.names) != r:
            raise ValueError(f"{len(self.names)} reference names for {r} descriptors")
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.image_size = tuple(int(s) for s in self.image_size)
        self.T_ref_grasp = np.asarray(self.T_ref_grasp, dtype=np.float64).reshape(4, 4)
        self.grasp_index = int(self.grasp_index)
        if not 0 <= self.grasp_index < r:
            raise ValueError(f"grasp_index {self.grasp_index} outside 0..{r - 1}")
        if not np.isfinite(self.descriptors).all():
            raise ValueError("reference descriptors contain non-finite values")

    @property
    def descriptor_dim(self) -> int:
        return int(self.descriptors.shape[1])

    def __len__(self) -> int:
        return len(self.descriptors)

    def to_fields(self) -> dict:
        return {
            "format": FORMAT,
            "model_identity": self.model_identity,
            "descriptor_dim": self.descriptor_dim,
            "method": self.method,
            "normalized": bool(self.normalized),
            "names": list(self.names),
            "descriptors": self.descriptors,
            "pixels": self.pixels,
            "points": self.points,
            "K": self.K,
            "image_size": list(self.image_size),
            "T_ref_grasp": self.T_ref_grasp,
            "grasp_index": self.grasp_index,
            "source": self.source,
        }


def save_reference(path, reference: Reference) -> Path:
    """Write ``reference`` atomically as .npz or .json (by extension). Returns the path."""
    path = Path(path)
    fields = reference.to_fields()
    if path.suffix == ".json":
        data = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        # NaN is not JSON: store missing 3D points as null
        data["points"] = [[None if not np.isfinite(c) else c for c in row] for row in data["points"]]
        atomic_write(path, lambda f: f.write(json.dumps(data, indent=1).encode()))
    elif path.suffix == ".npz":
        arrays = {k: (np.asarray(v) if not isinstance(v, str) else np.array(v)) for k, v in fields.items()}
        arrays["names"] = np.array(fields["names"], dtype=str)
        atomic_write(path, lambda f: np.savez(f, **arrays))
    else:
        raise ValueError(f"reference file {path}: extension must be .npz or .json")
    return path


def _read_fields(path: Path) -> dict:
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("top level is not a JSON object")
        if isinstance(data.get("points"), list):
            data["points"] = [[np.nan if c is None else c for c in row] for row in data["points"]]
        return data
    if path.suffix == ".npz":
        with open(path, "rb") as f:
            head = f.read(4)
        if not head:
            raise ValueError("the file is empty")
        if head != b"PK\x03\x04":   # np.load would read other bytes as a .npy / pickle and advise loading unsafely
            raise ValueError("not an .npz archive (no zip header)")
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        for key in ("format", "model_identity", "method", "source"):
            if key in data:
                data[key] = str(data[key])
        for key in ("descriptor_dim", "grasp_index"):
            if key in data:
                data[key] = int(data[key])
        if "normalized" in data:
            data["normalized"] = bool(data["normalized"])
        data["names"] = [str(n) for n in data.get("names", [])]
        return data
    raise ValueError(f"reference file {path}: extension must be .npz or .json")


def load_reference(path, model_identity: str | None = None, descriptor_dim: int | None = None) -> Reference:
    """Read a reference file and check it belongs to the running model.

    Raises FileNotFoundError, ValueError (malformed file, naming the file and field) or
    ReferenceMismatchError (another model identity or D than the given ones).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference file {path} does not exist (make one with `make_reference`)")
    try:
        data = _read_fields(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: a truncated member
        raise ValueError(f"reference file {path} could not be read: {exc or type(exc).__name__}") from exc
    if data.get("format") != FORMAT:
        raise ValueError(f"reference file {path}: format {data.get('format')!r} is not {FORMAT!r}")
    missing = [k for k in ("model_identity", "descriptors", "pixels", "points") if k not in data]
    if missing:
        raise ValueError(f"reference file {path} lacks the fields {missing}")
    try:
        ref = Reference(
            model_identity=str(data["model_identity"]),
            descriptors=data["descriptors"], pixels=data["pixels"], points=data["points"],
            names=list(data.get("names", [])), method=str(data.get("method", "keypoint")),
            normalized=bool(data.get("normalized", True)), K=data.get("K", np.eye(3)),
            image_size=tuple(data.get("image_size", (0, 0))), T_ref_grasp=data.get("T_ref_grasp", np.eye(4)),
            grasp_index=int(data.get("grasp_index", 0)), source=str(data.get("source", "")),
        )
    except ValueError as exc:
        raise ValueError(f"reference file {path}: {exc}") from exc
    stored_d = int(data.get("descriptor_dim", ref.descriptor_dim))
    if stored_d != ref.descriptor_dim:
        raise ValueError(f"reference file {path}: descriptor_dim {stored_d} but descriptors have "
                         f"{ref.descriptor_dim} channels")
    if descriptor_dim is not None and ref.descriptor_dim != int(descriptor_dim):
        raise ReferenceMismatchError(
            f"reference file {path} holds D={ref.descriptor_dim} descriptors but the model produces "
            f"D={int(descriptor_dim)}; make a new reference with this model (`make_reference`)")
    if model_identity is not None and ref.model_identity != model_identity:
        raise ReferenceMismatchError(
            f"reference file {path} was made with model {ref.model_identity!r}, but the running model is "
            f"{model_identity!r}; make a new reference with this model (`make_reference`)")
    return ref


def interior_samples(mask: np.ndarray, count: int, margin: int = 3, depth: np.ndarray | None = None, avoid=(),
                     min_separation: float = 0.0) -> list:
    """Up to ``count`` pixels ``(u, v)`` (ints) spread over the interior of a mask by farthest-point sampling.

    The interior is ``mask > 0`` eroded by a ``(2 * margin + 1)`` square (and ``depth > 0`` where ``depth`` is
    given). With pixels to ``avoid`` (e.g. references already chosen), every pick is the interior pixel farthest
    from those and from the earlier picks; without, the first pick is the interior pixel nearest the interior's
    centroid and the rest follow by the same rule. Sampling stops after ``count`` picks, when the interior is used
    up, or when the farthest pixel left is closer than ``min_separation`` px to an earlier pick or avoided pixel.
    """
    import cv2

    if count <= 0:
        return []
    margin = int(margin)
    inner = np.asarray(mask) > 0
    if margin > 0:
        inner = cv2.erode(inner.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    if depth is not None:
        inner &= np.asarray(depth) > 0
    vs, us = np.nonzero(inner)
    if len(us) == 0:
        return []
    pts = np.stack([us, vs], axis=1).astype(np.float64)
    taken = np.asarray(list(avoid), dtype=np.float64).reshape(-1, 2)
    chosen = []
    if len(taken):
        dist = np.full(len(pts), np.inf)
        for q in taken:
            dist = np.minimum(dist, np.linalg.norm(pts - q, axis=1))
    else:
        first = int(np.argmin(np.linalg.norm(pts - pts.mean(0), axis=1)))
        chosen.append(first)
        dist = np.linalg.norm(pts - pts[first], axis=1)
    while len(chosen) < count:
        i = int(np.argmax(dist))
        if dist[i] <= 0 or dist[i] < min_separation:
            break
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[i], axis=1))
    return [(int(pts[i, 0]), int(pts[i, 1])) for i in chosen]
