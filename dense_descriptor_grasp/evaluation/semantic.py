"""Semantic-point evaluation on held-out cluttered scenes: does the model find the named part of *my* object in a
scene it never saw?

```
evaluate_model --semantic --dataset data/duck_clutter_test --model models/duck_ntxent/last.pt \
    [--model b.pt ...] --out outputs/eval_clutter [--max-views 60] [--object duck] [--device cpu] [--seed 0]
```

or from Python (the demo and the time-to-quality benchmark call this in-process)::

    report = semantic_point_evaluation({"ntxent": model}, "data/duck_clutter_test", object_name="duck")

Protocol
--------

- **Data**: every view of a held-out cluttered dataset (rendered with another seed, and distractors, than any
  training data, e.g. ``generate_dataset --objects duck --distractors eval --seed 1000``: this module takes the
  whole folder, no split). The **target** of a view is the ``objects`` entry of its ``camera/<id>.json`` named
  ``object_name`` whose ``role`` is ``"target"`` (datasets without roles: the entry named ``object_name``); a view
  without one (or with two) is skipped and counted. The target mask is built here: raw mask PNG == the target's ``mask_value`` (so other objects are never
  "the object").
- **Parts**: the object's named parts (``objects.named_parts(name)``, the registry's; the duck: head_top, beak_tip,
  tail, left_side, right_side, chest; an object without named parts uses ``top``), points in the object (URDF
  link) frame, the frame of the dataset's ``T_world_object``. For a view, a part's **true 3-D point** is
  ``T_camera_world T_world_object p`` and its **true pixel** the projection of that point (continuous, not
  rounded). A part is **visible** when (1) the pixel is inside the image, (2) a pixel within 1 px (the 3x3
  neighbourhood of the rounded pixel) is on the target mask and (3) that target pixel's rendered depth agrees with
  the part's depth within ``max(5 mm, 2 %)``. Only visible parts are evaluated (self-occluded parts, parts behind
  a distractor and parts outside the image are skipped).
- **Reference from another scene**: the product's grasp node matches a reference made once from another scene.
  The evaluated scenes (views with at least one visible part) are sorted by ``scene_id``; scene ``i`` takes its
  reference from scene ``i + 1`` (cyclically): that scene's view with the most visible parts (the first on a tie).
  The reference descriptor of a part is the reference view's descriptor image at the part's true pixel there
  (``model.inference.descriptors_at``), at the nearest pixel that is on the target with agreeing depth (the rounded
  true pixel itself unless the part lies on the silhouette: a reference is never sampled off the object). A part is matched in a query view when it is visible in the
  query view and in its reference view (the others are counted as ``no_reference``).
- **Matching**: over the **whole** query image (no mask): the predicted pixel is the argmin over every pixel of the
  L2 distance between the query's descriptor image (``model.inference.descriptor_image``, computed once per view
  and method) and the reference descriptor.
- **Errors**: pixel error = distance between the predicted pixel and the true pixel. 3-D error (mm) = distance
  between the part's true 3-D point (camera frame) and the grasp node's point at the predicted pixel:
  ``grasping.depth_at_match.point_and_pixel_at_match`` with the grasp node's defaults (``GraspSettings``: 5 x 5
  window median of the valid depth in (0.05, 5] m, foreground snapping 8 px at 2 cm depth steps). A predicted pixel
  without depth itself takes the median of the valid depth in its window; when fewer than 30 % of the window's
  pixels have valid depth the grasp node rejects the match, and here it is a **depth miss**: 3-D error = infinity
  (it counts as a match beyond every mm threshold and in the median; ``depth_misses`` reports how many).
- **Methods** in one table: every given model; two floors, always computed (``include_floors``): ``untrained``,
  the untrained network of the first model's architecture with the weights ``train_model --steps 0`` writes for
  its training config and seed (:func:`untrained_twin`), and ``mask_centroid``, the part-blind answer of a detector
  without parts: the centroid of the target mask, snapped to the nearest target pixel with valid depth (the same
  pixel for every part); optionally ``perfect`` (``include_perfect``, a sanity check): descriptors = the target's
  object coordinates from the rendered depth (0 px on a scene whose parts fall on pixel centres).
- **Report** per method (``report["methods"][name]``): ``matches``, ``median_px``, ``pck_3`` / ``pck_5`` /
  ``pck_10`` (fraction within 3 / 5 / 10 px), ``median_mm`` (None when more than half are depth misses),
  ``within_10mm``, ``depth_misses``, ``per_part`` (``{part: {matches, median_px, median_mm}}``), ``interior``
  (the same flat metrics, and ``per_part_matches``, over the matches whose part lies at least ``INTERIOR_PX`` = 2 px
  inside the target's silhouette -- :func:`inside_distance` at the part's target pixel -- in the query and in the
  reference view: the parts a stride-4 descriptor sees without the background; each match records
  ``query_inside_px`` and ``reference_inside_px``), ``node_accepted`` (descriptor methods only: the same metrics
  over the matches the grasp node would accept with its default ``metric``, ``max_distance`` and ratio test --
  ``grasping.matching.match_references`` on the same descriptor image and reference -- and their ``share``; each
  match records ``node_accepts``, ``distance`` and ``ratio``, and ``distance_at_truth``: the same distance to the
  reference at the part's true pixel, so a part whose descriptor does not repeat across scenes shows as a large
  distance there; ``per_part`` then also has their medians), ``descriptor_seconds_per_view`` and ``info`` (checkpoint,
  identity, input size; for ``untrained`` its seed and source). Also: ``settings``, ``dataset`` (views, scenes, skipped views by reason), ``views`` (each query view
  with its reference view and scene, visible / matched parts), ``matches`` (every part match with each method's
  pixel, px and mm error), ``warnings``, ``timing`` (seconds, load average), ``table_markdown``, ``files``.

Output (``out_dir``; written atomically): ``semantic_report.json`` and ``semantic_matches.png`` (rows = a few query
views; first column the row's reference view with its reference pixels, then one column per method: true part =
green circle, prediction = red cross, a line between). The CLI prints the table as markdown.
"""
from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

__all__ = [
    "FLOOR_UNTRAINED",
    "FLOOR_CENTROID",
    "PERFECT",
    "PCK_PX",
    "WITHIN_MM",
    "REPORT_NAME",
    "PNG_NAME",
    "find_target",
    "part_truth",
    "mask_centroid_pixel",
    "inside_distance",
    "object_coordinate_descriptors",
    "best_match_pixels",
    "untrained_twin",
    "semantic_point_evaluation",
    "format_table",
    "plot_semantic_matches",
    "get_args_parser",
    "main",
]

FLOOR_UNTRAINED = "untrained"
FLOOR_CENTROID = "mask_centroid"
PERFECT = "perfect"
PCK_PX = (3, 5, 10)
WITHIN_MM = 10.0
INTERIOR_PX = 2.0   # the "interior" summary: the part at least this deep inside the silhouette in query and reference
MASK_TOLERANCE_PX = 1
SUPPORT_RADIUS_M = 0.01  # part_truth's "support": target pixels showing the surface this close to the part
REFERENCE_CHOICES = ("view", "part")  # one reference view per scene (most visible parts) | per part (most support)
DEPTH_TOLERANCE_M = 0.005
DEPTH_TOLERANCE_REL = 0.02
REPORT_NAME = "semantic_report.json"
PNG_NAME = "semantic_matches.png"
_BACKGROUND_COORDINATE = 1.0e3   # object-coordinate descriptors off the target: far from every part


# ----------------------------------------------------------------------------------------------- ground truth
def find_target(camera: dict, object_name: str):
    """The target entry of a camera JSON's ``objects`` list, or ``(None, reason)``.

    Datasets with roles (``generate_dataset`` writes ``"role": "target" | "distractor"``; every object drawn from
    ``--objects`` is a target, distractors never are): the single ``"target"`` entry named ``object_name``. Datasets
    without roles: the single entry named ``object_name``. Returns ``(entry, "")`` or ``(None, reason)`` with reason
    ``"no_target"`` (the object is not in the view, or only as a distractor), ``"other_target"`` (the view's
    targets are other objects) or ``"ambiguous_target"`` (two such entries).
    """
    objects = [o for o in (camera.get("objects") or []) if isinstance(o, dict)]
    if any("role" in o for o in objects):
        targets = [o for o in objects if o.get("role", "target") == "target"]
        named = [o for o in targets if o.get("name") == object_name]
        if not named:
            return None, "other_target" if targets else "no_target"
    else:
        named = [o for o in objects if o.get("name") == object_name]
        if not named:
            return None, "no_target"
    if len(named) > 1:
        return None, "ambiguous_target"
    return named[0], ""


def part_truth(parts: Dict[str, np.ndarray], K, T_world_camera, T_world_object, depth: np.ndarray,
               target_mask: np.ndarray) -> Dict[str, dict]:
    """True pixel, 3-D point (camera frame) and visibility of every part in one view.

    Returns ``{name: {"uv": (2,), "point_camera": (3,), "visible": bool, "reason": str}}``; ``reason`` is ``""``
    when visible, else ``"behind_camera"``, ``"outside_image"``, ``"off_target_mask"`` or ``"occluded"`` (no
    target pixel within 1 px whose depth agrees with the part's depth within ``max(5 mm, 2 %)``). A visible part
    also has ``"target_pixel"`` (2,): the nearest such target pixel to ``uv`` (the pixel a reference is sampled at),
    and ``"inside_px"``: how deep that pixel lies inside the target's silhouette (:func:`inside_distance`), and
    ``"support"``: how many target pixels with depth show the surface within ``SUPPORT_RADIUS_M`` of the part
    (how much of the part the view sees: many for a part facing the camera, few for a sliver on the outline).
    """
    from dense_descriptor_grasp.geometry.camera import backproject, project

    names = list(parts)
    P = np.stack([np.asarray(parts[n], dtype=np.float64) for n in names])
    T_cam_obj = np.linalg.inv(np.asarray(T_world_camera, np.float64)) @ np.asarray(T_world_object, np.float64)
    pts = P @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3]
    uv, z = project(pts, np.asarray(K, dtype=np.float64))
    H, W = depth.shape
    r = MASK_TOLERANCE_PX
    inside = points = None
    out = {}
    for i, name in enumerate(names):
        entry = {"uv": uv[i].astype(np.float64), "point_camera": pts[i], "visible": False, "reason": ""}
        if not z[i] > 0:
            entry["reason"] = "behind_camera"
        elif not (np.all(np.isfinite(uv[i])) and -0.5 <= uv[i][0] < W - 0.5 and -0.5 <= uv[i][1] < H - 0.5):
            entry["reason"] = "outside_image"
        else:
            c, row = int(round(float(uv[i][0]))), int(round(float(uv[i][1])))
            rows, cols = slice(max(row - r, 0), row + r + 1), slice(max(c - r, 0), c + r + 1)
            on = target_mask[rows, cols]
            if not on.any():
                entry["reason"] = "off_target_mask"
            else:
                d = depth[rows, cols]
                tol = max(DEPTH_TOLERANCE_M, DEPTH_TOLERANCE_REL * float(z[i]))
                ok = on & (d > 0) & (np.abs(d - z[i]) <= tol)
                if ok.any():
                    entry["visible"] = True
                    # the reference pixel: the nearest of these target pixels (the rounded pixel when it is one)
                    vv, uu = np.nonzero(ok)
                    vv, uu = vv + rows.start, uu + cols.start
                    k = int(np.argmin((uu - uv[i][0]) ** 2 + (vv - uv[i][1]) ** 2))
                    entry["target_pixel"] = np.array([float(uu[k]), float(vv[k])])
                    if inside is None:
                        inside = inside_distance(target_mask)
                    entry["inside_px"] = float(inside[vv[k], uu[k]])
                    if points is None:   # camera-frame points of the target pixels with depth, once per view
                        tv, tu = np.nonzero(target_mask & (depth > 0))
                        points = backproject(np.stack([tu, tv], 1).astype(np.float64),
                                             depth[tv, tu].astype(np.float64), np.asarray(K, dtype=np.float64))
                    entry["support"] = int(np.sum(np.linalg.norm(points - pts[i], axis=1) <= SUPPORT_RADIUS_M))
                else:
                    entry["reason"] = "occluded"
        out[name] = entry
    return out


def inside_distance(target_mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32: for a target pixel, the Euclidean distance in pixels to the nearest pixel off the target
    (1 on the silhouette's outermost ring; the image border counts as off the target); 0 off the target."""
    import cv2

    padded = np.pad(np.asarray(target_mask, dtype=np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def mask_centroid_pixel(target_mask: np.ndarray, depth: np.ndarray, min_depth: float = 0.0,
                        max_depth: float = float("inf")) -> Optional[np.ndarray]:
    """The part-blind answer: the centroid (mean column, mean row) of the target mask, snapped to the nearest target
    pixel with valid depth (the first in row-major order on a tie). None when no target pixel has valid depth."""
    from dense_descriptor_grasp.geometry.camera import valid_depth

    target_mask = np.asarray(target_mask, dtype=bool)
    vv, uu = np.nonzero(target_mask)
    if len(uu) == 0:
        return None
    cu, cv = uu.mean(), vv.mean()
    good = target_mask & valid_depth(depth, min_depth, max_depth)
    gv, gu = np.nonzero(good)
    if len(gu) == 0:
        return None
    k = int(np.argmin((gu - cu) ** 2 + (gv - cv) ** 2))
    return np.array([float(gu[k]), float(gv[k])])


def object_coordinate_descriptors(depth: np.ndarray, K, T_world_camera, T_world_object,
                                  target_mask: np.ndarray) -> np.ndarray:
    """``perfect`` descriptors: ``(3, H, W)`` float32 object-frame coordinates (metres) of every target pixel with
    depth (back-projected), a far constant elsewhere."""
    from dense_descriptor_grasp.geometry.camera import backproject

    H, W = depth.shape
    out = np.full((3, H, W), _BACKGROUND_COORDINATE, dtype=np.float32)
    good = np.asarray(target_mask, bool) & (depth > 0)
    vv, uu = np.nonzero(good)
    if len(uu):
        uv = np.stack([uu, vv], axis=1).astype(np.float64)
        cam = backproject(uv, depth[vv, uu].astype(np.float64), np.asarray(K, np.float64))
        T_obj_cam = np.linalg.inv(np.asarray(T_world_object, np.float64)) @ np.asarray(T_world_camera, np.float64)
        obj = cam @ T_obj_cam[:3, :3].T + T_obj_cam[:3, 3]
        out[:, vv, uu] = obj.T.astype(np.float32)
    return out


def best_match_pixels(desc: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``(R, 2)`` pixels ``(u, v)``: for each reference descriptor ``ref (R, D)`` the pixel of ``desc (D, H, W)``
    at the smallest L2 distance, over the whole image (the first in row-major order on a tie)."""
    desc = np.asarray(desc, dtype=np.float32)
    D, H, W = desc.shape
    ref = np.asarray(ref, dtype=np.float32).reshape(-1, D)
    flat = desc.reshape(D, H * W)
    # |d - r|^2 = |d|^2 - 2 r.d + |r|^2; the last term is constant per reference
    score = np.einsum("dp,dp->p", flat, flat)[None, :] - 2.0 * (ref @ flat)
    idx = np.argmin(score, axis=1)
    return np.stack([idx % W, idx // W], axis=1).astype(np.float64)


# ----------------------------------------------------------------------------------------------- models
_TWIN_CACHE: dict = {}


def _training_config(model) -> dict:
    cfg = (getattr(model, "checkpoint_info", None) or {}).get("config") or {}
    return cfg if isinstance(cfg, dict) else {}


def untrained_twin(model, seed: Optional[int] = None, device="cpu"):
    """The untrained network of ``model``'s architecture, as ``train_model --steps 0`` writes it.

    Built like ``training.train.run_training`` builds a fresh model: ``torch.manual_seed(seed)``, then
    ``DenseDescriptorNet(**args)`` with every constructor argument that ``model.config`` stores (so new options such
    as a decoder come along), on the CPU, then moved to ``device``. ``seed`` defaults to the ``train.seed`` of the
    checkpoint's training config. The global torch RNG is left as it was. A trunk that training started from a local
    ``weights_path`` is loaded from that file as ``build_model`` does (when the file exists); ``pretrained: true``
    (torchvision's ImageNet download) is not reproduced: the twin is then random, and the returned info says so.
    The twin always normalises with its (initial) running BatchNorm statistics, whatever ``model.norm_statistics``
    says: of the two untrained variants it is the stronger floor (on the demo's held-out set 24.3 px against 42.1 px
    for per-image statistics), so a model with ``norm_statistics="image"`` is not flattered by a weaker floor.

    Returns ``(twin in eval mode, info dict)``.
    """
    from dense_descriptor_grasp.model.checkpoint import model_identity
    from dense_descriptor_grasp.model.network import DenseDescriptorNet

    cfg = dict(model.config)
    cfg.pop("norm_statistics", None)      # the twin: running statistics (docstring)
    params = inspect.signature(DenseDescriptorNet.__init__).parameters
    kwargs = {k: v for k, v in cfg.items() if k in params and k not in ("self", "pretrained", "weights_path")}
    train_cfg = _training_config(model)
    model_cfg = train_cfg.get("model") if isinstance(train_cfg.get("model"), dict) else {}
    notes = []
    if seed is None:
        stored = (train_cfg.get("train") or {}).get("seed") if isinstance(train_cfg.get("train"), dict) else None
        if stored is None:
            seed, seed_source = 0, "default 0 (no train.seed stored with the model)"
            notes.append("the model carries no training config: seed 0 (train_model's default) was used")
        else:
            seed, seed_source = int(stored), "train.seed of the checkpoint's training config"
    else:
        seed, seed_source = int(seed), "given"
    weights_path = model_cfg.get("weights_path")
    if weights_path and not os.path.isfile(str(weights_path)):
        notes.append(f"training started from {weights_path}, which is not here: the twin's trunk is random")
        weights_path = None
    if model_cfg.get("pretrained") and not weights_path:
        notes.append("training started from ImageNet weights (model.pretrained): the twin is random-initialised, "
                     "unlike train_model --steps 0 of that config")
    key = (json.dumps(cfg, sort_keys=True), seed, str(weights_path), str(device))
    if key not in _TWIN_CACHE:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            twin = DenseDescriptorNet(**kwargs, pretrained=False, weights_path=weights_path or None)
        if twin.config != cfg:
            raise ValueError(f"untrained_twin: rebuilding from the stored config gave {twin.config}, expected {cfg}")
        twin = twin.to(device).eval()
        twin.identity = model_identity(twin)
        _TWIN_CACHE.clear()  # one twin kept: the demo re-evaluates the same architecture every few minutes
        _TWIN_CACHE[key] = twin
    twin = _TWIN_CACHE[key]
    info = {"seed": seed, "seed_source": seed_source, "identity": twin.identity, "constructor_args": kwargs,
            "weights_path": weights_path, "notes": notes}
    return twin, info


def _train_input_size(model) -> Optional[List[int]]:
    size = _training_config(model).get("train_input_size") or \
        ((getattr(model, "checkpoint_info", None) or {}).get("metadata") or {}).get("train_input_size")
    return [int(s) for s in size] if size else None


def _resolve_input_size(model, input_size):
    if input_size is None:
        return None
    if isinstance(input_size, str):
        if input_size != "train":
            raise ValueError(f"input_size: None, 'train' or (H, W), got {input_size!r}")
        return _train_input_size(model)
    return [int(s) for s in input_size]


# ----------------------------------------------------------------------------------------------- data
def _read_camera_json(path) -> dict:
    with open(path, "r") as f:
        return json.load(f)


def _read_view(rec, with_rgb: bool):
    """``(rgb or None, depth (H, W) float32 m, raw mask (H, W))`` of a view record."""
    import cv2

    from dense_descriptor_grasp.data.dataset import read_view

    if with_rgb:
        rgb, depth = read_view(rec, check=False)[:2]
    else:
        rgb = None
        raw = cv2.imread(rec.depth, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"{rec.depth}: could not be read as an image")
        depth = raw.astype(np.float32) * np.float32(rec.depth_scale)
    mask = cv2.imread(rec.mask, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"{rec.mask}: could not be read as an image")
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    return rgb, depth, mask


def _view_truth(rec, index: int, object_name: str, parts_obj: Dict[str, np.ndarray]):
    cam = _read_camera_json(rec.camera)
    entry, reason = find_target(cam, object_name)
    if entry is None:
        return None, reason
    _, depth, mask_raw = _read_view(rec, with_rgb=False)
    target = mask_raw == int(entry["mask_value"])
    T_wo = np.asarray(entry["T_world_object"], dtype=np.float64)
    truth = part_truth(parts_obj, rec.K, rec.T_world_camera, T_wo, depth, target)
    return {"index": index, "view_id": rec.view_id, "scene_id": rec.scene_id, "T_world_object": T_wo,
            "mask_value": int(entry["mask_value"]), "parts": truth,
            "visible": [n for n, t in truth.items() if t["visible"]]}, ""


# ----------------------------------------------------------------------------------------------- summaries
POSE_ROTATION_OK_DEG = 15.0   # an object pose this close in rotation carries a part 4 cm away within ~1 cm


def pose_accuracy(fit, reference: dict, view: dict) -> dict:
    """How far the 6-DoF path's object pose is from the truth, for one query view.

    ``fit``: :class:`~dense_descriptor_grasp.grasping.object_pose.ObjectPoseResult` (``T_live_ref``: reference
    camera -> query camera); ``reference``: ``{"T_object_camera": (4, 4), "points": (N, 3) reference-camera
    points}``; ``view``: the query (``T_world_camera``, ``T_world_object``). The true ``T_live_ref`` is
    ``T_camera_object(query) @ T_object_camera(reference)``. Returns ``{"found", "inliers", "rotation_error_deg",
    "point_error_mm"}``: the rotation angle of ``T_true^-1 T_fit`` and the median distance between the reference
    points carried by the fit and by the truth (None when no pose was found).
    """
    T_true = (np.linalg.inv(np.asarray(view["T_world_camera"], np.float64))
              @ np.asarray(view["T_world_object"], np.float64) @ reference["T_object_camera"])
    if not fit.ok:
        return {"found": False, "inliers": 0, "rotation_error_deg": None, "point_error_mm": None}
    T_fit = np.asarray(fit.T_live_ref, np.float64)
    R = T_true[:3, :3].T @ T_fit[:3, :3]
    angle = math.degrees(math.acos(float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))
    pts = np.asarray(reference["points"], np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    moved = (pts @ T_fit[:3, :3].T + T_fit[:3, 3]) - (pts @ T_true[:3, :3].T + T_true[:3, 3])
    err = 1000.0 * float(np.median(np.linalg.norm(moved, axis=1))) if len(pts) else None
    return {"found": True, "inliers": int(fit.n_inliers), "rotation_error_deg": angle, "point_error_mm": err}


def summarize_poses(records: Sequence[dict]) -> dict:
    """Summary of :func:`pose_accuracy` records: views, poses found, median inliers / rotation error / point error
    of the found ones, and the share of all views whose pose is within ``POSE_ROTATION_OK_DEG`` degrees."""
    found = [r for r in records if r["found"]]
    rot = [r["rotation_error_deg"] for r in found]
    pts = [r["point_error_mm"] for r in found if r["point_error_mm"] is not None]
    return {"views": len(records), "found": len(found),
            "median_inliers": float(np.median([r["inliers"] for r in found])) if found else None,
            "median_rotation_error_deg": float(np.median(rot)) if rot else None,
            "median_point_error_mm": float(np.median(pts)) if pts else None,
            "within_rotation_ok": (sum(a <= POSE_ROTATION_OK_DEG for a in rot) / len(records)) if records else None,
            "rotation_ok_deg": POSE_ROTATION_OK_DEG}


def _summary(px: Sequence[float], mm: Sequence[float]) -> dict:
    """Flat metrics of pooled errors: matches, median_px, pck_3 / pck_5 / pck_10, median_mm, within_10mm,
    depth_misses (None where there are no matches; median_mm None when more than half are depth misses)."""
    px = np.asarray(px, dtype=np.float64)
    mm = np.asarray(mm, dtype=np.float64)
    n = int(len(px))
    med_mm = float(np.median(mm)) if n else None
    out = {"matches": n, "median_px": float(np.median(px)) if n else None}
    out.update({f"pck_{k}": (float(np.mean(px <= k)) if n else None) for k in PCK_PX})
    out.update({
        "median_mm": med_mm if med_mm is not None and math.isfinite(med_mm) else None,
        "within_10mm": float(np.mean(mm <= WITHIN_MM)) if n else None,
        "depth_misses": int(np.sum(~np.isfinite(mm))),
    })
    return out


def _fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def format_table(report: dict) -> str:
    """The report's methods as markdown: one row per method, then per-part medians (px / mm)."""
    rows = ["| method | matches | median px | PCK@3 | PCK@5 | PCK@10 | median mm | within 10 mm | depth misses |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in report["methods"].items():
        rows.append(f"| {name} | {r['matches']} | {_fmt(r['median_px'], '.1f')} | "
                    + " | ".join(_fmt(r[f"pck_{k}"], ".3f") for k in PCK_PX)
                    + f" | {_fmt(r['median_mm'], '.1f')} | {_fmt(r['within_10mm'], '.3f')} | {r['depth_misses']} |")
    first = next(iter(report["methods"].values()), None)
    if first is not None and "interior" in first:
        rows += ["", f"Matches whose part lies at least {INTERIOR_PX:g} px inside the target's silhouette in the query "
                 f"and in the reference view ({first['interior']['matches']} of {first['matches']}: "
                 + ", ".join(f"{p} {c}" for p, c in first["interior"].get("per_part_matches", {}).items() if c)
                 + "; the others are parts on or next to the outline):", "",
                 "| method | median px | PCK@3 | median mm | within 10 mm |", "|---|---:|---:|---:|---:|"]
        for name, r in report["methods"].items():
            q = r["interior"]
            rows.append(f"| {name} | {_fmt(q['median_px'], '.1f')} | {_fmt(q['pck_3'], '.3f')} | "
                        f"{_fmt(q['median_mm'], '.1f')} | {_fmt(q['within_10mm'], '.3f')} |")
    accepted = {name: r["node_accepted"] for name, r in report["methods"].items() if r.get("node_accepted")}
    if accepted:
        rows += ["", "Matches the grasp node would accept (its defaults: metric, max_distance, the ratio test "
                 "outside exclusion_radius); it publishes no grasp for the others:", "",
                 "| method | accepted | median px | PCK@3 | median mm | within 10 mm |", "|---|---:|---:|---:|---:|---:|"]
        for name, q in accepted.items():
            rows.append(f"| {name} | {q['matches']} ({_fmt(q['share'], '.2f')}) | {_fmt(q['median_px'], '.1f')} | "
                        f"{_fmt(q['pck_3'], '.3f')} | {_fmt(q['median_mm'], '.1f')} | {_fmt(q['within_10mm'], '.3f')} |")
    parts = list(report["settings"]["parts"])
    rows += ["", "Per part, median px / median mm (matches):", "",
             "| method | " + " | ".join(parts) + " |", "|---|" + "---:|" * len(parts)]
    for name, r in report["methods"].items():
        cells = []
        for p in parts:
            s = r["per_part"].get(p)
            cells.append("-" if not s or not s["matches"] else
                         f"{_fmt(s['median_px'], '.1f')} / {_fmt(s['median_mm'], '.1f')} ({s['matches']})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    dist_rows = [(name, r) for name, r in report["methods"].items()
                 if any("median_distance" in (r["per_part"].get(p) or {}) for p in parts)]
    if dist_rows:
        rows += ["", "Per part, the grasp node's descriptor distance to the reference (median): at the match / at the "
                 "part's true pixel (large there: the part's descriptor does not repeat in other scenes):", "",
                 "| method | " + " | ".join(parts) + " |", "|---|" + "---:|" * len(parts)]
        for name, r in dist_rows:
            cells = []
            for p in parts:
                s = r["per_part"].get(p) or {}
                cells.append(f"{_fmt(s['median_distance'], '.2f')} / {_fmt(s['median_distance_at_truth'], '.2f')}"
                             if "median_distance" in s else "-")
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    poses = {name: r["pose"] for name, r in report["methods"].items() if r.get("pose")}
    if poses:
        ok_deg = next(iter(poses.values()))["rotation_ok_deg"]
        rows += ["", "The 6-DoF path's object pose against the true one (reference camera -> query camera), per query "
                 "view:", "", f"| method | poses found | median inliers | median rotation error (deg) | median point error "
                 f"(mm) | within {ok_deg:g} deg (share of views) |", "|---|---:|---:|---:|---:|---:|"]
        for name, q in poses.items():
            rows.append(f"| {name} | {q['found']} of {q['views']} | {_fmt(q['median_inliers'], '.0f')} | "
                        f"{_fmt(q['median_rotation_error_deg'], '.1f')} | "
                        f"{_fmt(q['median_point_error_mm'], '.1f')} | {_fmt(q['within_rotation_ok'], '.2f')} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------------- plot
def plot_semantic_matches(visuals: List[dict], methods: Sequence[str], path) -> Path:
    """Grid: rows = query views; column 0 = the row's reference view (reference pixels as green circles, labelled),
    then one column per method on the query view: true part = green circle, prediction = red cross, line between."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dense_descriptor_grasp.atomic_io import atomic_save_figure

    rows, cols = len(visuals), 1 + len(methods)
    h, w = visuals[0]["rgb"].shape[:2]
    cell_w = 2.6
    fig, axes = plt.subplots(rows, cols, figsize=(cell_w * cols, cell_w * h / w * rows + 0.5 * rows + 0.3),
                             squeeze=False)
    for r, vis in enumerate(visuals):
        ax = axes[r][0]
        ax.imshow(vis["ref_rgb"])
        for part, uv in vis["ref_uv"].items():
            ax.plot(uv[0], uv[1], "o", markersize=6, markerfacecolor="none", markeredgecolor="lime", markeredgewidth=1.2)
            ax.annotate(part, (uv[0], uv[1]), xytext=(3, -3), textcoords="offset points", color="yellow", fontsize=5)
        ax.set_title(f"reference {vis['ref_view_id']}\n(scene {vis['ref_scene_id']})", fontsize=7)
        ax.axis("off")
        for c, name in enumerate(methods, start=1):
            ax = axes[r][c]
            ax.imshow(vis["rgb"])
            errs = []
            for part, uv in vis["true_uv"].items():
                pred = vis["pred"][name].get(part)
                if pred is None:
                    continue
                errs.append(float(np.hypot(*(pred - uv))))
                ax.plot([uv[0], pred[0]], [uv[1], pred[1]], color="white", linewidth=0.7, alpha=0.8)
                ax.plot(uv[0], uv[1], "o", markersize=6, markerfacecolor="none", markeredgecolor="lime",
                        markeredgewidth=1.2)
                ax.plot(pred[0], pred[1], "x", color="red", markersize=6, markeredgewidth=1.5)
            med = f"{np.median(errs):.1f} px" if errs else "n/a"
            ax.set_title(f"{name}\n{vis['view_id']}: median {med}", fontsize=7)
            ax.axis("off")
    fig.suptitle("Named parts in held-out cluttered views: true = green circle, prediction = red cross", fontsize=8)
    fig.tight_layout()
    out = atomic_save_figure(fig, Path(path))
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------------- evaluation
Method = Union[torch.nn.Module, str, os.PathLike, Callable[[dict], np.ndarray]]


def semantic_point_evaluation(
    models: Dict[str, Method],
    dataset_root,
    object_name: str = "duck",
    max_views: Optional[int] = None,
    device: str = "cpu",
    include_floors: bool = True,
    *,
    seed: int = 0,
    input_size=None,
    out_dir=None,
    include_perfect: bool = False,
    parts: Optional[Dict[str, Sequence[float]]] = None,
    num_visual_views: int = 3,
    progress: bool = False,
    object_pose_references: int = 0,
    sensor_noise: bool = False,
    reference_views: int = 1,
    foreground_threshold: Optional[float] = None,
    reference_choice: str = "view",
) -> dict:
    """Semantic-point evaluation (protocol: module docstring); returns the report dict.

    Args:
        models: display name -> a ``DenseDescriptorNet``, a checkpoint path, or a callable ``f(view) -> (D, H, W)``
            descriptor image (``view``: dict with ``rgb``, ``depth``, ``K``, ``T_world_camera``, ``T_world_object``,
            ``target_mask``, ``view_id``, ``scene_id``). May be empty when ``include_floors`` or ``include_perfect``.
        dataset_root: dataset folder (docs/DATA.md); every view is used.
        object_name: the target object (its named parts are evaluated).
        max_views: evaluate at most this many views (>= 2): whole scenes in an order drawn with ``seed``, the last
            one cut. None = every view.
        device: torch device of the networks.
        include_floors: add ``untrained`` (the first network's untrained twin, :func:`untrained_twin`) and
            ``mask_centroid``.
        seed: draws the scenes kept by ``max_views``.
        input_size: what the networks see: None = the image as stored (the descriptor node's default), ``"train"``
            = each network's training input size (from its checkpoint), or ``(H, W)``.
        out_dir: when given, ``semantic_report.json`` and ``semantic_matches.png`` are written there.
        include_perfect: add the ``perfect`` sanity method (object-coordinate descriptors).
        parts: name -> (3,) object-frame points instead of the object's named parts.
        num_visual_views: query views drawn in the PNG.
        progress: tqdm bar over the views.
        object_pose_references: when > 0, every descriptor method also gets a row ``"<name> + object pose"``: the
            grasp node's 6-DoF path. The reference view holds the visible named parts plus this many surface
            points (``grasping.reference.interior_samples`` on the target mask), each with its descriptor and its
            back-projected 3-D point; in the query every one is matched over the whole image, back-projected with
            the grasp node's robust depth, and ``grasping.object_pose.ransac_object_pose`` (the node's settings:
            ``GraspSettings`` inlier threshold, iterations, minimum inliers) fits the object pose; a part's
            prediction is then its reference point carried by that pose (pixel = its projection). When the pose
            fails, the part falls back to its own match (as the node falls back to the single-point grasp).
        reference_views: K >= 1. K = 1 (default) is the protocol above. K > 1: a part's reference descriptor is the
            mean of its descriptors in the reference views of the next K scenes (each scene's view with the most
            visible parts) that see it, a reference made from several views. The matched parts stay those of the
            first reference view, so the matches are the same as with K = 1 (the object-pose rows keep the first
            view's references).
        reference_choice: which view of a reference scene a part's reference comes from. ``"view"`` (the protocol
            above): the scene's view with the most visible parts, for every part. ``"part"``: per part, the scene's
            view that sees most of the part (``part_truth``'s ``support``: target pixels showing the surface within
            ``SUPPORT_RADIUS_M`` of it), as a user picks a view where the part is clearly seen rather than a sliver
            of it on the outline. Queries are the same either way (every view where the part is visible).
        foreground_threshold: the live search's gate for networks with the foreground head
            (``model.inference.gate_descriptors``): in the query views, pixels the network sees as not the target
            (probability below this) are not searched; references are sampled ungated, as ``make_reference`` does.
            None = ``model.inference.FOREGROUND_THRESHOLD`` (the descriptor node's default); 0 = off. The untrained
            floor is never gated (an untrained head's probabilities are noise). Networks without the head and
            callables are not affected.
        sensor_noise: the views the methods see carry the RGB-D sensor noise model of ``capture.noise``
            (``apply_rgbd_noise`` with its defaults, a RealSense-D435-like camera; seeded per view with ``seed``):
            descriptors, references and the depth at the predicted pixel all come from the noisy images, as on a
            real camera. What is visible and where the parts truly are still come from the clean render.
    """
    from tqdm import tqdm

    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.grasping.depth_at_match import point_and_pixel_at_match
    from dense_descriptor_grasp.geometry.camera import backproject, project
    from dense_descriptor_grasp.grasping.grasp_estimate import GraspSettings
    from dense_descriptor_grasp.grasping.matching import match_references
    from dense_descriptor_grasp.grasping.object_pose import ransac_object_pose
    from dense_descriptor_grasp.grasping.reference import interior_samples
    from dense_descriptor_grasp.model.checkpoint import load_model
    from dense_descriptor_grasp.model.inference import (FOREGROUND_THRESHOLD, descriptor_image, descriptors_at,
                                                        gate_descriptors)

    from dense_descriptor_grasp.atomic_io import atomic_write_json

    from .evaluate import _model_info

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if int(reference_views) < 1:
        raise ValueError(f"reference_views must be >= 1, got {reference_views}")
    if reference_choice not in REFERENCE_CHOICES:
        raise ValueError(f"reference_choice must be one of {REFERENCE_CHOICES}, got {reference_choice!r}")
    if max_views is not None and int(max_views) < 2:
        raise ValueError(f"max_views must be >= 2 (a query and a reference from another scene), got {max_views}")
    if not Path(dataset_root).is_dir():
        raise FileNotFoundError(f"dataset: no dataset folder at {dataset_root}")
    reserved = {FLOOR_UNTRAINED, FLOOR_CENTROID, PERFECT}
    clash = reserved & set(models)
    if clash:
        raise ValueError(f"models: the names {sorted(clash)} are reserved for the floors / sanity rows")
    from dense_descriptor_grasp.objects import named_parts

    parts_obj = ({str(k): np.asarray(v, dtype=np.float64).reshape(3) for k, v in parts.items()}
                 if parts is not None else named_parts(object_name))
    gs = GraspSettings()
    gate = FOREGROUND_THRESHOLD if foreground_threshold is None else float(foreground_threshold)
    if not 0.0 <= gate < 1.0:
        raise ValueError(f"foreground_threshold must be in [0, 1), got {foreground_threshold}")

    # --- methods: name -> (kind, descriptor function or None, info)
    methods: Dict[str, dict] = {}
    first_net = None
    for name, m in models.items():
        info: dict = {}
        if isinstance(m, (str, os.PathLike)):
            path = str(m)
            m = load_model(path, device=device)
            info = _model_info(m, path)
        elif isinstance(m, torch.nn.Module):
            info = _model_info(m, (getattr(m, "checkpoint_info", None) or {}).get("path", "(in memory)"))
        if isinstance(m, torch.nn.Module):
            size = _resolve_input_size(m, input_size)
            info.update({"kind": "model", "input_size": size or "as stored",
                         "train_input_size": _train_input_size(m)})
            info["foreground_gate"] = gate if getattr(m, "foreground_logits", None) is not None and gate else None
            methods[name] = {"kind": "model", "fn": _net_fn(m, size, device, descriptor_image), "info": info,
                             "gate": gate}
            first_net = first_net or (name, m, size)
        elif callable(m):
            methods[name] = {"kind": "callable", "fn": m, "info": {"kind": "callable", "repr": repr(m)[:200]}}
        else:
            raise TypeError(f"models[{name!r}]: expected a DenseDescriptorNet, a checkpoint path or a callable")
    warnings = []
    if include_perfect:
        methods[PERFECT] = {"kind": "perfect", "info": {"kind": "perfect (object coordinates of the target)"},
                            "fn": lambda v: object_coordinate_descriptors(v["depth"], v["K"], v["T_world_camera"],
                                                                          v["T_world_object"], v["target_mask"])}
    if include_floors:
        if first_net is None:
            warnings.append("no network given: the untrained floor is not computed")
        else:
            src_name, src, size = first_net
            twin, tinfo = untrained_twin(src, device=device)
            tinfo.update({"kind": "floor: untrained twin", "of": src_name, "input_size": size or "as stored",
                          "method": twin.config.get("method"), "descriptor_dim": twin.config.get("descriptor_dim")})
            warnings += [f"untrained: {n}" for n in tinfo["notes"]]
            tinfo["foreground_gate"] = None
            methods[FLOOR_UNTRAINED] = {"kind": "floor", "fn": _net_fn(twin, size, device, descriptor_image),
                                        "info": tinfo, "gate": 0.0}
        methods[FLOOR_CENTROID] = {"kind": "centroid", "fn": None,
                                   "info": {"kind": "floor: target-mask centroid, snapped to the nearest target "
                                                    "pixel with valid depth (part-blind)"}}
    if not methods:
        raise ValueError("semantic_point_evaluation: nothing to evaluate (no models, floors off)")
    desc_methods = [n for n, m in methods.items() if m["fn"] is not None]
    pose_rows = {}          # "<name> + object pose" -> name
    if int(object_pose_references) > 0:
        for n in desc_methods:
            row = f"{n} + object pose"
            pose_rows[row] = n
            methods[row] = {"kind": "object_pose", "fn": None,
                            "info": {"kind": f"{n}'s descriptors through the grasp node's 6-DoF object pose",
                                     "surface_references": int(object_pose_references)}}

    # --- pass 1: ground truth of the selected views (depth + mask only)
    data = RGBDDataset(str(dataset_root), split=None, validate=False)
    by_scene: Dict[str, List[int]] = {}
    for i, rec in enumerate(data.records):
        by_scene.setdefault(rec.scene_id, []).append(i)
    scene_order = sorted(by_scene)
    if max_views is not None:
        scene_order = [scene_order[i] for i in np.random.default_rng(seed).permutation(len(scene_order))]
    skipped = {"no_target": 0, "other_target": 0, "ambiguous_target": 0, "no_visible_part": 0}
    truths: Dict[int, dict] = {}
    selected_scenes: List[str] = []
    for scene in scene_order:
        if max_views is not None and len(truths) >= max_views and len(selected_scenes) >= 2:
            break
        got = []
        for i in by_scene[scene]:
            t, reason = _view_truth(data.records[i], i, object_name, parts_obj)
            if t is None:
                skipped[reason] += 1
            elif not t["visible"]:
                skipped["no_visible_part"] += 1
            else:
                got.append(t)
        if got:
            if max_views is not None and len(selected_scenes) >= 1:
                got = got[:max(1, max_views - len(truths))]
            selected_scenes.append(scene)
            truths.update({t["index"]: t for t in got})
    if len(selected_scenes) < 2:
        raise ValueError(f"{dataset_root}: {len(selected_scenes)} scene(s) with a visible part of {object_name!r}; "
                         "the reference must come from another scene, so at least two are needed")
    selected_scenes.sort()
    scene_views = {s: sorted(i for i, t in truths.items() if t["scene_id"] == s) for s in selected_scenes}
    best_view = {s: max(scene_views[s], key=lambda i: (len(truths[i]["visible"]), -i)) for s in selected_scenes}
    n_scenes = len(selected_scenes)
    next_scenes = {s: [selected_scenes[(k + j) % n_scenes]    # the next K scenes, never this one
                       for j in range(1, min(int(reference_views), n_scenes - 1) + 1)]
                   for k, s in enumerate(selected_scenes)}

    def part_view(scene, p):
        """The view of ``scene`` a reference of part ``p`` comes from (None: the scene does not see it)."""
        if reference_choice == "view":
            return best_view[scene] if p in truths[best_view[scene]]["visible"] else None
        seen = [i for i in scene_views[scene] if p in truths[i]["visible"]]
        return max(seen, key=lambda i: (truths[i]["parts"][p]["support"], -i)) if seen else None

    queries = [i for s in selected_scenes for i in scene_views[s]]
    view_rows = []
    for i in queries:
        t = truths[i]
        scenes = next_scenes[t["scene_id"]]
        t["refs"] = [best_view[sc] for sc in scenes]
        r = t["ref"] = t["refs"][0]   # the object-pose rows' and the picture's reference view
        t["part_refs"] = {}           # part -> its reference views (the first scene's first; K > 1: the others')
        for p in t["visible"]:
            first = part_view(scenes[0], p)
            if first is not None:
                t["part_refs"][p] = [first] + [v for v in (part_view(sc, p) for sc in scenes[1:]) if v is not None]
        t["matched_parts"] = [p for p in t["visible"] if p in t["part_refs"]]
        view_rows.append({"view_id": t["view_id"], "scene_id": t["scene_id"],
                          "reference_view_id": truths[r]["view_id"], "reference_scene_id": truths[r]["scene_id"],
                          "part_reference_view_ids": {p: truths[v[0]]["view_id"] for p, v in t["part_refs"].items()},
                          "visible_parts": t["visible"], "matched_parts": t["matched_parts"],
                          "no_reference": [p for p in t["visible"] if p not in t["matched_parts"]]})
    with_matches = [i for i in queries if truths[i]["matched_parts"]]
    if num_visual_views > 0 and with_matches:
        pick = np.unique(np.linspace(0, len(with_matches) - 1, min(num_visual_views, len(with_matches))).round())
        visual_ids = [with_matches[int(k)] for k in pick]
    else:
        visual_ids = []
    visual_refs = {truths[i]["ref"] for i in visual_ids}
    t_truth = time.perf_counter() - t_start

    # --- pass 2: descriptor images, once per view and method. Scenes in reverse order: a scene's reference view
    # (in the next scene) is then already done, except for the last scene's (in the first), kept once.
    order = [i for s in reversed(selected_scenes) for i in scene_views[s]]
    ref_views = {v for i in queries for v in truths[i]["refs"]} | \
        {v for i in queries for refs in truths[i]["part_refs"].values() for v in refs}
    ref_desc: Dict[int, Dict[str, np.ndarray]] = {}
    early: Dict[int, dict] = {}
    ref_rgb: Dict[int, np.ndarray] = {}
    seconds = {n: 0.0 for n in desc_methods}
    n_images = 0

    def load(i):
        rec = data.records[i]
        rgb, depth, mask_raw = _read_view(rec, with_rgb=True)
        if sensor_noise:
            from dense_descriptor_grasp.capture.noise import NoiseConfig, apply_rgbd_noise

            rgb, depth = apply_rgbd_noise(rgb, depth, np.random.default_rng([int(seed), int(i)]), NoiseConfig(),
                                          K=np.asarray(rec.K, np.float64))
        t = truths[i]
        return {"rgb": rgb, "depth": depth, "K": rec.K, "T_world_camera": rec.T_world_camera,
                "T_world_object": t["T_world_object"], "target_mask": mask_raw == t["mask_value"],
                "view_id": t["view_id"], "scene_id": t["scene_id"]}

    def compute(view):
        """method -> ungated descriptor image; the gated one of a foreground network under "<name>/gated"."""
        nonlocal n_images
        out = {}
        for n in desc_methods:
            t0 = time.perf_counter()
            d = methods[n]["fn"](view)
            fg = None
            if isinstance(d, tuple):      # a network: (descriptors, foreground or None)
                d, fg = d
            d = np.asarray(d, dtype=np.float32)
            if fg is not None and methods[n].get("gate"):
                out[n + "/gated"] = gate_descriptors(d.copy(), fg, methods[n]["gate"])
            seconds[n] += time.perf_counter() - t0
            if d.ndim != 3 or d.shape[1:] != view["depth"].shape:
                raise ValueError(f"{n}: descriptor image of {view['view_id']} has shape {d.shape}, expected "
                                 f"(D, {view['depth'].shape[0]}, {view['depth'].shape[1]})")
            out[n] = d
        n_images += 1
        return out

    ref_pose: Dict[int, dict] = {}

    def remember_reference(i, view, images):
        t = truths[i]
        names = t["visible"]
        uv = np.stack([t["parts"][p]["target_pixel"] for p in names])
        ref_desc[i] = {n: dict(zip(names, descriptors_at(images[n], uv))) for n in desc_methods}
        if i in visual_refs:
            ref_rgb[i] = view["rgb"]
        if pose_rows:
            extra = interior_samples(view["target_mask"], int(object_pose_references), margin=2,
                                     depth=view["depth"], avoid=[tuple(x) for x in uv])
            allpix = np.concatenate([uv, np.asarray(extra, dtype=np.float64).reshape(-1, 2)])
            ij = allpix.round().astype(int)
            z = view["depth"][ij[:, 1], ij[:, 0]].astype(np.float64)
            pts = backproject(allpix, z, np.asarray(view["K"], np.float64))
            pts[~(z > 0)] = np.nan
            ref_pose[i] = {"points": pts, "part_points": dict(zip(names, pts[:len(names)])),
                           "T_object_camera": (np.linalg.inv(np.asarray(view["T_world_object"], np.float64))
                                               @ np.asarray(view["T_world_camera"], np.float64)),
                           "descriptors": {n: descriptors_at(images[n], allpix) for n in desc_methods}}

    per: Dict[str, dict] = {n: {"px": [], "mm": [], "part": [], "interior": [], "accepted": [], "dist": [],
                                "dist_truth": [], "pose": []} for n in methods}
    matches = []
    visuals = []
    for i in tqdm(order, desc="semantic eval", unit="view", disable=not progress):
        t = truths[i]
        r = t["ref"]
        if not t["matched_parts"] and i not in ref_views:
            continue                      # nothing to match here and no one's reference: no descriptor image
        for rr in sorted(set(t["refs"]).union(*t["part_refs"].values())):
            if rr not in ref_desc:
                rview = load(rr)
                rimages = compute(rview)
                remember_reference(rr, rview, rimages)
                early[rr] = (rview, rimages)
        view, images = early.pop(i) if i in early else (None, None)
        if view is None:
            view = load(i)
            images = compute(view)
        if i in ref_views and i not in ref_desc:
            remember_reference(i, view, images)
        names = t["matched_parts"]
        if not names:
            continue
        true_uv = np.stack([t["parts"][p]["uv"] for p in names])
        true_pt = np.stack([t["parts"][p]["point_camera"] for p in names])
        preds = {}
        verdicts = {}
        for n in methods:
            if n in pose_rows:
                continue
            if methods[n]["fn"] is None:
                c = mask_centroid_pixel(view["target_mask"], view["depth"], gs.min_depth, gs.max_depth)
                preds[n] = np.repeat((c if c is not None else np.array([np.nan, np.nan]))[None], len(names), 0)
            else:
                # the mean over the reference views that see the part (K = 1: the reference view's descriptor);
                # query descriptors are unit vectors, so the L2 argmin does not depend on the mean's length
                ref = np.stack([np.mean([ref_desc[rr][n][p] for rr in t["part_refs"][p]], axis=0) for p in names])
                live = images.get(n + "/gated", images[n])  # the live search: gated by the model's foreground
                preds[n] = best_match_pixels(live, ref)
                # would the grasp node accept this match? (its metric, max_distance and ratio test, defaults)
                node = match_references(live, ref, gs.metric, None, gs.max_distance, gs.max_ratio,
                                        gs.exclusion_radius, "none", view["depth"], view["K"],
                                        gs.exclusion_radius_m)[0]
                # the same distance at the part's own pixel: does the part's descriptor repeat in this scene?
                at_truth = descriptors_at(live, np.stack([t["parts"][p]["target_pixel"] for p in names]))
                rn = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
                qn = at_truth / np.maximum(np.linalg.norm(at_truth, axis=1, keepdims=True), 1e-12)
                truth_d = (1.0 - np.sum(rn * qn, axis=1) if gs.metric == "cosine"
                           else np.linalg.norm(at_truth - ref, axis=1))
                verdicts[n] = [(bool(m.confident), float(m.distance), float(m.ratio), float(dt))
                               for m, dt in zip(node, truth_d)]
        pref = {p: truths[t["part_refs"][p][0]] for p in names}   # each part's (first) reference view
        rows = [{"view_id": t["view_id"], "scene_id": t["scene_id"], "reference_view_id": pref[p]["view_id"],
                 "part": p, "true_uv": true_uv[k], "true_point_camera": true_pt[k],
                 "reference_uv": pref[p]["parts"][p]["target_pixel"],
                 "query_inside_px": t["parts"][p]["inside_px"],
                 "reference_inside_px": pref[p]["parts"][p]["inside_px"],
                 "query_support": t["parts"][p]["support"], "reference_support": pref[p]["parts"][p]["support"],
                 "methods": {}}
                for k, p in enumerate(names)]
        interior = [min(row["query_inside_px"], row["reference_inside_px"]) >= INTERIOR_PX for row in rows]
        points = {}  # the grasp node's 3-D point per predicted pixel (methods often agree: computed once)

        def node_point(uv):
            key = (float(uv[0]), float(uv[1]))
            if key not in points:
                points[key] = point_and_pixel_at_match(
                    view["depth"], view["K"], uv, gs.depth_window, gs.min_depth, gs.max_depth,
                    snap_radius=gs.foreground_snap_px, discontinuity=gs.depth_discontinuity)[0]
            return points[key]

        pose_points = {}
        for row, n in pose_rows.items():
            rp = ref_pose[r]
            live_uv = best_match_pixels(images.get(n + "/gated", images[n]), rp["descriptors"][n])
            live = np.full((len(live_uv), 3), np.nan)
            for k, q in enumerate(live_uv):
                pt = node_point(q)
                if pt is not None:
                    live[k] = pt
            fit = ransac_object_pose(rp["points"], live, None, gs.inlier_threshold, gs.ransac_iterations,
                                     min(gs.min_inliers, len(live)))
            per[row]["pose"].append(pose_accuracy(fit, rp, view))
            if fit.ok:
                # a part whose reference view is another (reference_choice "part") keeps its own match (NaN)
                carried = np.stack([rp["part_points"].get(p, np.full(3, np.nan)) for p in names])
                carried = carried @ fit.T_live_ref[:3, :3].T + fit.T_live_ref[:3, 3]
                uvp, zp = project(carried, np.asarray(view["K"], np.float64))
                good = np.isfinite(carried).all(1) & (np.asarray(zp) > 0)
                preds[row] = np.where(good[:, None], np.asarray(uvp, np.float64), preds[n])
                pose_points[row] = {k: carried[k] for k in range(len(names)) if good[k]}
            else:
                preds[row] = preds[n].copy()
                pose_points[row] = {}
        for n, pred in preds.items():
            for k, p in enumerate(names):
                px = float(np.hypot(*(pred[k] - true_uv[k]))) if np.all(np.isfinite(pred[k])) else math.inf
                mm = math.inf
                if n in pose_points and k in pose_points[n]:
                    mm = 1000.0 * float(np.linalg.norm(pose_points[n][k] - true_pt[k]))
                elif np.all(np.isfinite(pred[k])):
                    pt = node_point(pred[k])
                    if pt is not None:
                        mm = 1000.0 * float(np.linalg.norm(pt - true_pt[k]))
                per[n]["px"].append(px)
                per[n]["mm"].append(mm)
                per[n]["part"].append(p)
                per[n]["interior"].append(interior[k])
                rows[k]["methods"][n] = {"uv": pred[k], "px_error": px, "mm_error": mm}
                if n in verdicts:
                    ok, dist, ratio, dist_truth = verdicts[n][k]
                    per[n]["accepted"].append(ok)
                    per[n]["dist"].append(dist)
                    per[n]["dist_truth"].append(dist_truth)
                    rows[k]["methods"][n].update({"node_accepts": ok, "distance": dist, "ratio": ratio,
                                                  "distance_at_truth": dist_truth})
        matches += rows
        if i in visual_ids:
            visuals.append({"view_id": t["view_id"], "rgb": view["rgb"], "ref_view_id": truths[r]["view_id"],
                            "ref_scene_id": truths[r]["scene_id"], "ref_rgb": ref_rgb.get(r),
                            "ref_uv": {p: truths[r]["parts"][p]["target_pixel"] for p in names
                                       if t["part_refs"][p][0] == r},
                            "true_uv": dict(zip(names, true_uv)),
                            "pred": {n: dict(zip(names, preds[n])) for n in methods}, "order": visual_ids.index(i)})

    results = {}
    for n, v in per.items():
        s = _summary(v["px"], v["mm"])
        part_arr = np.asarray(v["part"], dtype=object).reshape(-1)
        s["per_part"] = {}
        for p in parts_obj:
            sel = part_arr == p
            ps = _summary(np.asarray(v["px"], dtype=np.float64)[sel], np.asarray(v["mm"], dtype=np.float64)[sel])
            s["per_part"][p] = {k: ps[k] for k in ("matches", "median_px", "median_mm")}
            if v["dist"] and len(v["dist"]) == len(v["px"]) and sel.any():
                # the grasp node's distance to the reference at the match and at the part's true pixel
                s["per_part"][p]["median_distance"] = float(np.median(np.asarray(v["dist"])[sel]))
                s["per_part"][p]["median_distance_at_truth"] = float(np.median(np.asarray(v["dist_truth"])[sel]))
        inner = np.asarray(v["interior"], dtype=bool)
        s["interior"] = _summary(np.asarray(v["px"], dtype=np.float64)[inner],
                                 np.asarray(v["mm"], dtype=np.float64)[inner])
        s["interior"]["per_part_matches"] = {p: int(np.sum(inner & (part_arr == p))) for p in parts_obj}
        if v["accepted"] and len(v["accepted"]) == len(v["px"]):  # descriptor methods (not the centroid, the poses)
            ok = np.asarray(v["accepted"], dtype=bool)
            s["node_accepted"] = _summary(np.asarray(v["px"], dtype=np.float64)[ok],
                                          np.asarray(v["mm"], dtype=np.float64)[ok])
            s["node_accepted"]["share"] = float(np.mean(ok))
        if v["pose"]:
            s["pose"] = summarize_poses(v["pose"])
        s["descriptor_seconds_per_view"] = (seconds[n] / n_images) if n in seconds and n_images else None
        s["info"] = methods[n]["info"]
        results[n] = s
    elapsed = time.perf_counter() - t_start
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv else None,
        "protocol": ("held-out cluttered views; named parts visible in the query (inside the image, on the target "
                     "mask within 1 px, depth within max(5 mm, 2%)); reference descriptors from the best view of the "
                     "next scene at the parts' true pixels; whole-image L2 argmin; 3-D error via the grasp node's "
                     "robust depth (5x5 median, foreground snap), no depth = miss (inf)"),
        "settings": {
            "dataset": str(dataset_root),
            "object": object_name,
            "parts": {p: parts_obj[p].tolist() for p in parts_obj},
            "max_views": max_views,
            "reference_views": int(reference_views),
            "reference_choice": reference_choice,
            "seed": seed,
            "device": str(device),
            "input_size": input_size if input_size is None or isinstance(input_size, str) else list(input_size),
            "pck_px": list(PCK_PX),
            "within_mm": WITHIN_MM,
            "visibility": {"mask_tolerance_px": MASK_TOLERANCE_PX, "depth_tolerance_m": DEPTH_TOLERANCE_M,
                           "depth_tolerance_relative": DEPTH_TOLERANCE_REL},
            "depth_at_prediction": {"window": gs.depth_window, "min_depth": gs.min_depth, "max_depth": gs.max_depth,
                                    "min_valid_fraction": 0.3, "foreground_snap_px": gs.foreground_snap_px,
                                    "depth_discontinuity": gs.depth_discontinuity,
                                    "no_depth": "miss: 3-D error = inf (null in JSON per match)"},
            "search_region": "whole image",
            "foreground_gate": gate or None,
            "sensor_noise": ("capture.noise.apply_rgbd_noise, NoiseConfig() defaults" if sensor_noise else None),
        },
        "dataset": {
            "num_views": len(data),
            "num_scenes": len(by_scene),
            "skipped_views": skipped,
            "num_views_evaluated": len(queries),
            "num_scenes_evaluated": len(selected_scenes),
            "num_views_with_matches": len(with_matches),
        },
        "methods": results,
        "views": view_rows,
        "matches": matches,
        "warnings": warnings,
        "timing": {"seconds_total": elapsed, "seconds_ground_truth": t_truth, "descriptor_images": n_images,
                   "descriptor_seconds": seconds, "load_average_start": load_start,
                   "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                   "torch_threads": torch.get_num_threads()},
    }
    report["table_markdown"] = format_table(report)
    if out_dir is not None:
        out_dir = Path(out_dir)
        files = {"report": str(out_dir / REPORT_NAME)}
        if visuals:
            visuals.sort(key=lambda v: v["order"])
            files["matches_png"] = str(plot_semantic_matches(visuals, list(methods), out_dir / PNG_NAME))
        report["files"] = files
        atomic_write_json(out_dir / REPORT_NAME, report, strict=True)
    return report


def _net_fn(model, size, device, descriptor_image):
    """view -> (ungated descriptor image, foreground probability or None)."""
    return lambda view: descriptor_image(model, view["rgb"], input_size=size, output_size=None, device=device,
                                         depth=view["depth"], K=view["K"], with_foreground=True)


# ----------------------------------------------------------------------------------------------- CLI
def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate_model --semantic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--checkpoints", "-m", dest="models", action="extend", nargs="+", default=[],
                   help="checkpoint file(s); repeat --model or list several")
    p.add_argument("--names", nargs="+", default=None, help="display names, one per model (default: file stems)")
    p.add_argument("--dataset", required=True, help="held-out (cluttered) dataset folder; every view is used")
    p.add_argument("--object", default="duck", help="target object whose named parts are evaluated (default duck)")
    p.add_argument("--out", "--output-dir", dest="out", default="outputs/eval_clutter",
                   help=f"folder for {REPORT_NAME} and {PNG_NAME}")
    p.add_argument("--max-views", type=int, default=None, help="evaluate at most N views (whole scenes drawn with --seed)")
    p.add_argument("--seed", type=int, default=0, help="draws the scenes kept by --max-views")
    p.add_argument("--device", default="cpu")
    p.add_argument("--input-size", nargs="+", default=None, metavar="H W | train",
                   help="network input size: H W, or 'train' = each checkpoint's training size (default: as stored)")
    p.add_argument("--perfect", action="store_true", help="also the 'perfect' sanity row (object-coordinate descriptors)")
    p.add_argument("--object-pose-references", type=int, default=0, metavar="N",
                   help="also a '<model> + object pose' row per model: the grasp node's 6-DoF path with the named "
                        "parts plus N surface points as references (0 = off)")
    p.add_argument("--reference-views", type=int, default=1, metavar="K",
                   help="reference descriptors averaged over the reference views of the next K scenes (default 1: "
                        "one view, as make_reference does)")
    p.add_argument("--reference-choice", choices=REFERENCE_CHOICES, default="view",
                   help="view: each reference scene's view with the most visible parts serves every part (default); "
                        "part: per part, the reference scene's view that sees most of it (not a sliver on the "
                        "outline)")
    p.add_argument("--sensor-noise", action="store_true",
                   help="the methods see the views with the RGB-D sensor noise model of capture/noise.py "
                        "(RealSense-like depth noise, dropouts and colour noise); truth stays clean")
    p.add_argument("--foreground-threshold", type=float, default=None, metavar="P",
                   help="networks with the foreground head search only the query pixels they see as the target "
                        "with probability >= P (default: the descriptor node's, "
                        "model.inference.FOREGROUND_THRESHOLD); 0 = search every pixel")
    p.add_argument("--visual-views", type=int, default=3, help=f"query views (rows) in {PNG_NAME}")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 is best on a shared machine)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from dense_descriptor_grasp.atomic_io import json_safe

    from .evaluate import _model_names

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.models:
        print("evaluate_model --semantic: error: give at least one --model checkpoint", file=sys.stderr)
        return 2
    if args.names is not None and (len(args.names) != len(args.models) or len(set(args.names)) != len(args.names)):
        print(f"evaluate_model --semantic: error: --names needs one unique name per model ({len(args.models)})",
              file=sys.stderr)
        return 2
    input_size = None
    if args.input_size:
        if args.input_size == ["train"]:
            input_size = "train"
        elif len(args.input_size) == 2 and all(s.isdigit() for s in args.input_size):
            input_size = [int(s) for s in args.input_size]
        else:
            print("evaluate_model --semantic: error: --input-size takes H W or 'train'", file=sys.stderr)
            return 2
    names = args.names or _model_names(args.models)
    try:
        report = semantic_point_evaluation(
            dict(zip(names, args.models)), args.dataset, object_name=args.object, max_views=args.max_views,
            device=args.device, include_floors=True, seed=args.seed, input_size=input_size, out_dir=args.out,
            include_perfect=args.perfect, num_visual_views=args.visual_views, progress=not args.no_progress,
            object_pose_references=args.object_pose_references, sensor_noise=args.sensor_noise,
            reference_views=args.reference_views, foreground_threshold=args.foreground_threshold,
            reference_choice=args.reference_choice)
    except (FileNotFoundError, ValueError) as exc:
        print(f"evaluate_model --semantic: error: {exc}", file=sys.stderr)
        return 2
    report = json_safe(report)
    d = report["dataset"]
    print(f"{d['num_views_evaluated']} views of {d['num_scenes_evaluated']} scenes, object {args.object!r} "
          f"(skipped: {', '.join(f'{k} {v}' for k, v in d['skipped_views'].items() if v) or 'none'}); "
          f"{report['timing']['seconds_total']:.1f} s")
    print(report["table_markdown"])
    for w in report.get("warnings", []):
        print(f"warning: {w}")
    for key, path in report["files"].items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
