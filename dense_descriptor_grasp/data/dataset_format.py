"""The on-disk RGB-D dataset format (close to BOP): atomic writers and plain readers. See docs/DATA.md.

```
root/
  manifest.json            format, version, objects, count, seed, generator args, scenes, multiview_pairs
  rgb/000000.png           uint8 RGB (.jpg accepted for user captures)
  depth/000000.png         uint16, metres = value * depth_scale (camera JSON), 0 = no depth
  mask/000000.png          uint8, 0 = background, k > 0 = object instance with mask_value k
  camera/000000.json       K, depth_scale, width, height, T_world_camera, scene_id, target, objects (written last;
                           objects: [{name, mask_value, T_world_object, role: "target" | "distractor", scale}])
```
A view exists once its camera JSON exists (the generator writes it after the three images).
"""
from __future__ import annotations

import json
import os

import numpy as np

from dense_descriptor_grasp.atomic_io import TEMP_PREFIX
from dense_descriptor_grasp.atomic_io import atomic_write_bytes as _atomic_write_bytes
from dense_descriptor_grasp.atomic_io import atomic_write_json as _atomic_write_json
from dense_descriptor_grasp.atomic_io import dumps_json_rows as dumps_json  # noqa: F401 - part of this module's API

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "DEFAULT_DEPTH_SCALE", "atomic_write_bytes", "atomic_write_json", "dumps_json",
    "write_png", "encode_depth", "view_paths", "write_view", "view_complete", "remove_stale_temp_files",
    "read_json", "RGB_EXTENSIONS",
]

FORMAT_NAME = "dense_descriptor_grasp.rgbd"
FORMAT_VERSION = 1
DEFAULT_DEPTH_SCALE = 1e-4  # metres per depth unit: 0.1 mm steps, 6.5535 m maximum

RGB_EXTENSIONS = (".png", ".jpg", ".jpeg")
_TMP_PREFIX = TEMP_PREFIX


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file in the same folder, then ``os.replace`` it onto ``path``."""
    _atomic_write_bytes(path, data)


def atomic_write_json(path: str, obj) -> None:
    """Deterministic JSON (sorted keys, a matrix row per line: ``atomic_io.dumps_json_rows``), written atomically."""
    _atomic_write_json(path, obj, rows=True)


def read_json(path: str):
    """Parsed JSON; ``ValueError`` naming the file when it does not parse."""
    try:
        with open(path, "r") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_png(path: str, image: np.ndarray) -> None:
    """PNG of a uint8 RGB ``(H, W, 3)``, uint8 ``(H, W)`` or uint16 ``(H, W)`` image, written atomically."""
    import cv2

    img = np.ascontiguousarray(image[:, :, ::-1] if image.ndim == 3 else image)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    atomic_write_bytes(path, buf.tobytes())


def encode_depth(depth_m: np.ndarray, depth_scale: float = DEFAULT_DEPTH_SCALE) -> np.ndarray:
    """uint16 depth units from metres; 0, non-finite and out-of-range (> 65535 units) depths become 0."""
    d = np.asarray(depth_m, dtype=np.float64)
    units = np.round(np.where(np.isfinite(d), d, 0.0) / depth_scale)
    units[(units <= 0) | (units > 65535)] = 0
    return units.astype(np.uint16)


def view_paths(root: str, view_id: str, rgb_ext: str = ".png") -> dict:
    """Paths of one view's files: keys ``rgb``, ``depth``, ``mask``, ``camera``."""
    return {
        "rgb": os.path.join(root, "rgb", view_id + rgb_ext),
        "depth": os.path.join(root, "depth", view_id + ".png"),
        "mask": os.path.join(root, "mask", view_id + ".png"),
        "camera": os.path.join(root, "camera", view_id + ".json"),
    }


def view_complete(root: str, view_id: str) -> bool:
    """True when all four files of the view exist (the camera JSON is written last)."""
    return all(os.path.isfile(p) for p in view_paths(root, view_id).values())


def write_view(root: str, view_id: str, rgb: np.ndarray, depth_m: np.ndarray, mask: np.ndarray, camera: dict,
               depth_scale: float = DEFAULT_DEPTH_SCALE) -> None:
    """Write one view: rgb, depth, mask PNGs, then the camera JSON (so a view counts only when complete).

    ``camera`` must hold ``K`` (3x3 list); ``depth_scale``, ``width`` and ``height`` are filled in here.
    """
    h, w = depth_m.shape
    if rgb.shape[:2] != (h, w) or mask.shape != (h, w):
        raise ValueError(f"write_view {view_id}: rgb {rgb.shape}, depth {depth_m.shape}, mask {mask.shape} "
                         "differ in size")
    paths = view_paths(root, view_id)
    write_png(paths["rgb"], rgb.astype(np.uint8))
    write_png(paths["depth"], encode_depth(depth_m, depth_scale))
    write_png(paths["mask"], mask.astype(np.uint8))
    cam = dict(camera)
    cam.update(depth_scale=depth_scale, width=int(w), height=int(h))
    atomic_write_json(paths["camera"], cam)


def remove_stale_temp_files(root: str, extra_folders=()) -> int:
    """Delete temporary files an interrupted writer left in the dataset folders (and ``extra_folders`` below
    ``root``, e.g. a captured dataset's ``depth_raw``); returns how many."""
    n = 0
    for sub in ("", "rgb", "depth", "mask", "camera", *extra_folders):
        folder = os.path.join(root, sub)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith(_TMP_PREFIX):
                os.remove(os.path.join(folder, name))
                n += 1
    return n
