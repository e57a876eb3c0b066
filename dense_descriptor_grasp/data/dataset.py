"""``RGBDDataset``: a validating ``torch.utils.data.Dataset`` over the folder format of docs/DATA.md.

Reads generated datasets and a user's own captures in the same layout. The minimum per view is
``rgb/<id>.png|.jpg``, ``depth/<id>.png`` (uint16), ``mask/<id>.png`` (non-zero = object) and
``camera/<id>.json`` with ``K`` and ``depth_scale`` (metres per depth unit); ``T_world_camera`` defaults to
the identity and ``scene_id`` to the view id.

Target and distractors: when the camera JSON's ``objects`` entries carry a ``role`` (``"target"`` or
``"distractor"``), a sample's ``mask`` holds the pixels of the target instances only and ``objects_mask`` those of
every object; without roles (older datasets, user captures) every non-zero mask pixel is target and both agree.
"""
from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import torch

from .dataset_format import RGB_EXTENSIONS, read_json

__all__ = ["DatasetError", "RGBDDataset", "ViewRecord", "split_scenes", "read_view", "load_view_record", "target_pose"]


class DatasetError(ValueError):
    """A dataset file is missing or wrong; the message names the file and what was expected."""


class ViewRecord:
    """Paths and camera metadata of one view (what the loader knows without reading the images)."""

    __slots__ = ("view_id", "rgb", "depth", "mask", "camera", "K", "depth_scale", "T_world_camera", "scene_id",
                 "width", "height", "objects", "target_values")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def _scene_hash(scene_id: str) -> float:
    return int(hashlib.sha1(scene_id.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def split_scenes(scene_ids, val_fraction: float) -> set:
    """Deterministic held-out scenes: a scene is "val" when ``sha1(scene_id)`` (as a number in [0, 1)) is below
    ``val_fraction``. Views sharing a scene (one object pose) always land in the same split. When there are at
    least two scenes, the split never leaves "train" or "val" empty (lowest / highest hash moved over).
    """
    scenes = sorted(set(scene_ids))
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    val = {s for s in scenes if _scene_hash(s) < val_fraction}
    if len(scenes) >= 2 and val_fraction > 0:
        ranked = sorted(scenes, key=_scene_hash)
        if not val:
            val = {ranked[0]}
        if len(val) == len(scenes):
            val.discard(ranked[-1])
    return val


def _as_matrix(value, shape, path, key) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: '{key}' is not a numeric matrix ({exc})") from exc
    if m.shape != shape or not np.all(np.isfinite(m)):
        raise DatasetError(f"{path}: '{key}' must be a finite {shape[0]}x{shape[1]} matrix, got shape {m.shape}")
    return m


def load_view_record(root: str, view_id: str) -> ViewRecord:
    """Check that the view's files exist and its camera JSON is sane; return its :class:`ViewRecord`."""
    cam_path = os.path.join(root, "camera", view_id + ".json")
    rgb_path = None
    for ext in RGB_EXTENSIONS:
        cand = os.path.join(root, "rgb", view_id + ext)
        if os.path.isfile(cand):
            rgb_path = cand
            break
    if rgb_path is None:
        raise DatasetError(f"{os.path.join(root, 'rgb', view_id + '.png')}: missing file (RGB image of view "
                           f"{view_id}; .png or .jpg expected)")
    depth_path = os.path.join(root, "depth", view_id + ".png")
    mask_path = os.path.join(root, "mask", view_id + ".png")
    for path, what in ((depth_path, "uint16 depth PNG"), (mask_path, "mask PNG")):
        if not os.path.isfile(path):
            raise DatasetError(f"{path}: missing file ({what} of view {view_id})")
    cam = read_json(cam_path)
    if not isinstance(cam, dict):
        raise DatasetError(f"{cam_path}: expected a JSON object with K and depth_scale")
    for key in ("K", "depth_scale"):
        if key not in cam:
            raise DatasetError(f"{cam_path}: missing key '{key}' (every camera JSON needs K and depth_scale)")
    K = _as_matrix(cam["K"], (3, 3), cam_path, "K")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise DatasetError(f"{cam_path}: non-positive focal length fx={K[0, 0]}, fy={K[1, 1]} (K must be "
                           "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0)")
    depth_scale = cam["depth_scale"]
    if not isinstance(depth_scale, (int, float)) or not depth_scale > 0 or not math.isfinite(depth_scale):
        raise DatasetError(f"{cam_path}: depth_scale must be a positive number of metres per depth unit, "
                           f"got {depth_scale!r}")
    T = _as_matrix(cam.get("T_world_camera", np.eye(4)), (4, 4), cam_path, "T_world_camera")
    objects = cam.get("objects", [])
    return ViewRecord(view_id=view_id, rgb=rgb_path, depth=depth_path, mask=mask_path, camera=cam_path, K=K,
                      depth_scale=float(depth_scale), T_world_camera=T, scene_id=str(cam.get("scene_id", view_id)),
                      width=cam.get("width"), height=cam.get("height"), objects=objects,
                      target_values=_target_values(objects, cam_path))


def _target_values(objects, cam_path):
    """Mask values of the target instances, or None when no ``objects`` entry has a ``role`` (all non-zero pixels
    are target). An entry without ``role`` among entries with one counts as target."""
    if not isinstance(objects, list) or not any(isinstance(o, dict) and "role" in o for o in objects):
        return None
    values = []
    for o in objects:
        if not isinstance(o, dict):
            raise DatasetError(f"{cam_path}: every 'objects' entry must be a JSON object, got {o!r}")
        role = o.get("role", "target")
        if role not in ("target", "distractor"):
            raise DatasetError(f"{cam_path}: object role must be 'target' or 'distractor', got {role!r}")
        mv = o.get("mask_value")
        if not isinstance(mv, int) or isinstance(mv, bool) or mv <= 0:
            raise DatasetError(f"{cam_path}: an object with a role needs a positive integer 'mask_value', got {mv!r}")
        if role == "target":
            values.append(mv)
    if not values:
        raise DatasetError(f"{cam_path}: 'objects' has roles but no 'target'")
    return tuple(values)


def target_pose(rec: ViewRecord) -> np.ndarray:
    """``T_world_object (4, 4)`` of the view's target (the ``objects`` entry with role "target", or the only
    entry of a view without roles); all NaN when the view does not record it (e.g. a user capture)."""
    objects = rec.objects or []
    targets = [o for o in objects if isinstance(o, dict) and o.get("role") == "target"]
    if not targets and len(objects) == 1 and isinstance(objects[0], dict) and "role" not in objects[0]:
        targets = objects
    if len(targets) == 1 and "T_world_object" in targets[0]:
        try:
            T = np.asarray(targets[0]["T_world_object"], dtype=np.float64)
        except (TypeError, ValueError):
            T = None
        if T is not None and T.shape == (4, 4) and np.all(np.isfinite(T)):
            return T
    return np.full((4, 4), np.nan)


def _imread(path: str, flags) -> np.ndarray:
    import cv2

    img = cv2.imread(path, flags)
    if img is None:
        raise DatasetError(f"{path}: could not be read as an image")
    return img


def read_view(rec: ViewRecord, check: bool = True, with_objects: bool = False):
    """``(rgb (H, W, 3) uint8, depth (H, W) float32 metres, mask (H, W) bool)`` of a view; ``mask`` = target
    pixels. ``with_objects`` appends ``objects_mask (H, W) bool`` (any object: target or distractor).

    With ``check``: size mismatch between RGB / depth / mask (and the JSON's width / height), an empty (target)
    mask, depth that is invalid everywhere, or no valid depth inside the mask raise :class:`DatasetError`.
    """
    import cv2

    rgb = _imread(rec.rgb, cv2.IMREAD_COLOR)[:, :, ::-1]
    raw = _imread(rec.depth, cv2.IMREAD_UNCHANGED)
    mask_raw = _imread(rec.mask, cv2.IMREAD_UNCHANGED)
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise DatasetError(f"{rec.depth}: depth must be a single-channel 16-bit PNG, got dtype {raw.dtype} "
                           f"with shape {raw.shape}")
    if mask_raw.ndim == 3:
        mask_raw = mask_raw.max(axis=2)
    if check:
        sizes = {"rgb": rgb.shape[:2], "depth": raw.shape, "mask": mask_raw.shape}
        if len(set(sizes.values())) != 1:
            raise DatasetError(f"{rec.camera}: size mismatch between {rec.rgb}, {rec.depth} and {rec.mask} "
                               f"(H, W): rgb {sizes['rgb']}, depth {sizes['depth']}, mask {sizes['mask']}")
        if rec.width is not None and rec.height is not None and (rec.height, rec.width) != sizes["rgb"]:
            raise DatasetError(f"{rec.camera}: width x height {rec.width}x{rec.height} does not match the images' "
                               f"{sizes['rgb'][1]}x{sizes['rgb'][0]}")
    objects_mask = mask_raw > 0
    mask = objects_mask if rec.target_values is None else np.isin(mask_raw, rec.target_values)
    depth = raw.astype(np.float32) * np.float32(rec.depth_scale)
    if check:
        if not mask.any():
            what = "no non-zero pixel" if rec.target_values is None else \
                f"no pixel of the target mask values {list(rec.target_values)}"
            raise DatasetError(f"{rec.mask}: empty mask ({what}; the object must be visible)")
        if not (depth > 0).any():
            raise DatasetError(f"{rec.depth}: depth all invalid (every pixel is 0)")
        if not (depth[mask] > 0).any():
            raise DatasetError(f"{rec.depth}: no valid depth inside the mask {rec.mask}")
    if with_objects:
        return np.ascontiguousarray(rgb), depth, mask, objects_mask
    return np.ascontiguousarray(rgb), depth, mask


def _resize_view(rgb, depth, mask, K, size, objects_mask=None):
    """Resize to ``size = (H, W)``: RGB area / linear, depth and masks nearest, K scaled. Returns
    ``rgb, depth, mask, K`` (and ``objects_mask`` last when given)."""
    import cv2

    h, w = depth.shape
    H, W = size
    if (H, W) == (h, w):
        return (rgb, depth, mask, K) if objects_mask is None else (rgb, depth, mask, K, objects_mask)
    sx, sy = W / w, H / h
    K = K.copy()
    # pixel centres at integer coordinates: u' = (u + 0.5) * sx - 0.5
    K[0, 0] *= sx
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    rgb = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
    depth = cv2.resize(depth, (W, H), interpolation=cv2.INTER_NEAREST)
    mask = cv2.resize(mask.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0
    if objects_mask is None:
        return rgb, depth, mask, K
    objects_mask = cv2.resize(objects_mask.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0
    return rgb, depth, mask, K, objects_mask


class RGBDDataset(torch.utils.data.Dataset):
    """Views of a dataset folder as the sample dict of docs/ARCHITECTURE.md.

    Args:
        root: dataset folder (``rgb/``, ``depth/``, ``mask/``, ``camera/``; ``manifest.json`` optional).
        split: None (all views), "train" or "val"; see :func:`split_scenes`.
        val_fraction: share of scenes held out for "val".
        image_size: optional ``(H, W)`` to resize to (K scaled; depth and mask nearest).
        validate: read every view on open and raise :class:`DatasetError` on the first bad one.
    Sample: ``rgb (3, H, W) float32 [0, 1]``, ``depth (H, W) float32 m``, ``mask (H, W) bool`` (target pixels),
    ``objects_mask (H, W) bool`` (target and distractor pixels; equal to ``mask`` without roles),
    ``K (3, 3) float32``, ``T_world_camera (4, 4) float32``, ``view_id str``.
    """

    def __init__(self, root: str, split: str | None = None, val_fraction: float = 0.1, image_size=None,
                 validate: bool = True, progress: bool = False):
        if split not in (None, "train", "val"):
            raise ValueError(f"RGBDDataset: split must be None, 'train' or 'val', got {split!r}")
        self.root = root
        cam_dir = os.path.join(root, "camera")
        if not os.path.isdir(root):
            raise DatasetError(f"{root}: dataset folder does not exist")
        if not os.path.isdir(cam_dir):
            raise DatasetError(f"{cam_dir}: missing folder (one JSON per view with K and depth_scale)")
        ids = sorted(f[:-5] for f in os.listdir(cam_dir) if f.endswith(".json") and not f.startswith("."))
        if not ids:
            raise DatasetError(f"{cam_dir}: no camera JSON files, the dataset is empty")
        self.manifest = None
        manifest_path = os.path.join(root, "manifest.json")
        if os.path.isfile(manifest_path):
            self.manifest = read_json(manifest_path)
        records = [load_view_record(root, v) for v in ids]
        val_scenes = split_scenes([r.scene_id for r in records], val_fraction)
        if split == "train":
            records = [r for r in records if r.scene_id not in val_scenes]
        elif split == "val":
            records = [r for r in records if r.scene_id in val_scenes]
        if not records:
            raise DatasetError(f"{root}: split {split!r} is empty ({len(ids)} views, val_fraction={val_fraction})")
        self.records = records
        self.split = split
        self.image_size = tuple(image_size) if image_size is not None else None
        if validate:
            from tqdm import tqdm

            for rec in tqdm(records, desc=f"validate {root}", unit="view", disable=not progress):
                read_view(rec, check=True)
        self._index = {r.view_id: i for i, r in enumerate(records)}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def view_ids(self) -> list:
        return [r.view_id for r in self.records]

    def index_of(self, view_id: str) -> int:
        """Position of ``view_id`` in this dataset (``KeyError`` when it is not in the split)."""
        return self._index[view_id]

    def scenes(self) -> dict:
        """``{scene_id: [indices]}`` of the views in this split, sorted."""
        out: dict = {}
        for i, r in enumerate(self.records):
            out.setdefault(r.scene_id, []).append(i)
        return dict(sorted(out.items()))

    def load_numpy(self, index: int) -> dict:
        """The sample as numpy arrays: ``rgb (H, W, 3) uint8``, ``depth``, ``mask`` (target), ``objects_mask``,
        ``K`` (float64), ``T_world_camera``, ``view_id``."""
        rec = self.records[index]
        rgb, depth, mask, objects_mask = read_view(rec, check=False, with_objects=True)
        K = rec.K
        if self.image_size is not None:
            rgb, depth, mask, K, objects_mask = _resize_view(rgb, depth, mask, K, self.image_size, objects_mask)
        return {"rgb": rgb, "depth": depth, "mask": mask, "objects_mask": objects_mask, "K": K,
                "T_world_camera": rec.T_world_camera, "T_world_object": target_pose(rec), "view_id": rec.view_id}

    def __getitem__(self, index: int) -> dict:
        s = self.load_numpy(index)
        return {
            "rgb": torch.from_numpy(np.ascontiguousarray(s["rgb"].transpose(2, 0, 1))).float().div_(255.0),
            "depth": torch.from_numpy(s["depth"]),
            "mask": torch.from_numpy(s["mask"]),
            "objects_mask": torch.from_numpy(s["objects_mask"]),
            "K": torch.from_numpy(s["K"].astype(np.float32)),
            "T_world_camera": torch.from_numpy(s["T_world_camera"].astype(np.float32)),
            "view_id": s["view_id"],
        }
