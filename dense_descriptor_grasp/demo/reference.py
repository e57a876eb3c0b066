"""Step 4, reference: a reference for a named duck part from the training view that sees it and the most other
named parts, plus a few surface points (the 6-DoF path)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dense_descriptor_grasp.grasping.reference_view import camera_object_pose, visible_parts

from .settings import OBJECT, DemoSettings, log, step_label, write_png


def _read_camera_json(dataset: Path, view_id: str) -> dict:
    return json.loads((dataset / "camera" / f"{view_id}.json").read_text())


def choose_reference_view(dataset: Path, part: str) -> tuple[str, dict]:
    """The dataset view that sees ``part`` and the most other named parts (ties: the larger mask).

    Returns ``(view_id, {name: (u, v)})``. Raises ``ValueError`` when no view sees the part.
    """
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.objects import named_parts

    parts = named_parts(OBJECT)
    if part not in parts:
        raise ValueError(f"--part {part!r}: the {OBJECT} has parts {sorted(parts)}")
    ds = RGBDDataset(str(dataset), validate=False)
    best, best_key = None, None
    for i, view_id in enumerate(ds.view_ids):
        cam = _read_camera_json(dataset, view_id)
        objs = [o for o in cam.get("objects", []) if o.get("name") == OBJECT]
        if len(objs) != 1:
            continue
        sample = ds.load_numpy(i)
        T_camera_object = camera_object_pose(cam["T_world_camera"], objs[0]["T_world_object"])
        seen = visible_parts(T_camera_object, sample["K"], sample["depth"], sample["mask"], parts)
        if part not in seen:
            continue
        key = (len(seen), int(sample["mask"].sum()))
        if best_key is None or key > best_key:
            best, best_key = (view_id, seen), key
    if best is None:
        raise ValueError(f"no view of {dataset} shows the {OBJECT}'s {part!r}")
    return best


def step_reference(s: DemoSettings) -> dict:
    """Write ``<model_dir>/reference_<part>.npz`` for the current model unless it is there already."""
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.grasping.reference import interior_samples, load_reference, save_reference
    from dense_descriptor_grasp.grasping.make_reference import build_reference
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint, load_model

    path = s.path(s.model_dir) / f"reference_{s.part}.npz"
    identity = str(load_checkpoint(s.checkpoint).get("model_identity", ""))
    if path.is_file():
        try:
            ref = load_reference(path, identity)
            log(f"{step_label('reference')}: {path} exists for model {identity} ({len(ref)} references {ref.names}) - "
                "skipped")
            return {"skipped": True, "path": path}
        except ValueError as exc:
            log(f"{step_label('reference')}: {path} is stale ({exc}); making it again")
    dataset = s.path(s.dataset)
    view_id, seen = choose_reference_view(dataset, s.part)
    ds = RGBDDataset(str(dataset), validate=False)
    sample = ds.load_numpy(ds.index_of(view_id))
    names = [s.part] + [n for n in seen if n != s.part]
    pixels = [seen[n] for n in names]
    extra = interior_samples(sample["mask"], s.surface_points, margin=3, depth=sample["depth"], avoid=pixels,
                             min_separation=6.0)
    names += [f"surface_{k}" for k in range(len(extra))]
    pixels += extra
    log(f"{step_label('reference')}: view {view_id} of {dataset} shows '{s.part}' and {len(seen) - 1} other named parts; "
        f"{len(names)} references {names}, grasp on '{s.part}'")
    model = load_model(s.checkpoint, device=s.device)
    ref = build_reference(model, sample["rgb"], sample["depth"], np.asarray(sample["K"], dtype=np.float64), pixels,
                          names, grasp_index=0, device=s.device,
                          source=f"demo: dataset {dataset} view {view_id}, named {OBJECT} parts + surface points")
    save_reference(path, ref)
    picture = draw_reference(sample["rgb"], pixels, names)
    write_png(s.path(s.out) / "reference_view.png", picture)
    log(f"{step_label('reference')}: wrote {path} and {s.path(s.out) / 'reference_view.png'}")
    return {"skipped": False, "path": path, "view": view_id, "names": names}


def draw_reference(rgb: np.ndarray, pixels, names) -> np.ndarray:
    """The reference view with its references (the grasp part in red, the others in green), enlarged 2x."""
    import cv2

    scale = 2 if rgb.shape[1] < 400 else 1
    img = cv2.resize(np.ascontiguousarray(rgb), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for i, ((u, v), name) in enumerate(zip(pixels, names)):
        c = (255, 0, 0) if i == 0 else (0, 220, 0)
        p = (int(round(u * scale)), int(round(v * scale)))
        cv2.circle(img, p, 3, c, -1)
        cv2.putText(img, name, (p[0] + 4, p[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3, c, 1, cv2.LINE_AA)
    return img
