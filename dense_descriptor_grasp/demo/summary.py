"""The demo's numbers: a grasp's error against the true part, the part-blind centre's error, the summary line."""
from __future__ import annotations

import math

import numpy as np

from .settings import OBJECT


def part_error_mm(grasp_position, T_camera_object, part_object) -> float:
    """Distance (mm) between a grasp position (3,) and a part (3,) in the object frame carried by T_camera_object."""
    T = np.asarray(T_camera_object, dtype=np.float64)
    true = T[:3, :3] @ np.asarray(part_object, dtype=np.float64) + T[:3, 3]
    return float(np.linalg.norm(np.asarray(grasp_position, dtype=np.float64) - true) * 1000.0)


def centre_error_mm(part: str) -> float:
    """Distance (mm) from ``part`` to the mean of the object's named parts: the error of a part-blind guess."""
    from dense_descriptor_grasp.objects import named_parts

    parts = named_parts(OBJECT)
    centre = np.mean(np.stack(list(parts.values())), axis=0)
    return float(np.linalg.norm(parts[part] - centre) * 1000.0)


def _num_text(x, spec: str = ".1f") -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else format(float(x), spec)


def _px_mm(m: dict) -> str:
    return f"{_num_text(m.get('median_px'))} px / {_num_text(m.get('median_mm'))} mm"


def summary_line(rows: list, part: str, semantic: dict | None = None) -> str:
    """One line: the held-out semantic-point result (``semantic``: :func:`semantic_summary`; median px / mm of the
    trained model, its share within 10 mm and both floors), then the sim camera's median grasp error (mm) over the
    poses with a grasp, how many got one and how many the pipeline processed."""
    from dense_descriptor_grasp.evaluation.semantic import FLOOR_CENTROID, FLOOR_UNTRAINED

    sections = []
    if semantic is not None:
        methods = semantic["methods"]
        m = methods[semantic["model"]]
        untrained, centre = methods.get(FLOOR_UNTRAINED, {}), methods.get(FLOOR_CENTROID, {})
        sections.append(
            f"held-out clutter: median {_px_mm(m)} for the {OBJECT}'s named parts ({m.get('matches', 0)} matches, "
            f"{_num_text(m.get('within_10mm'), '.2f')} within 10 mm; untrained {_px_mm(untrained)}, mask centre "
            f"{_px_mm(centre)})")
    errors = [r["error_mm"] for r in rows if r.get("error_mm") is not None]
    modes = [r.get("mode") for r in rows if r.get("error_mm") is not None]
    n = len(rows)
    processed = sum(1 for r in rows if r.get("frames") or r.get("error_mm") is not None)
    if not errors:
        sections.append(f"sim camera: median n/a mm for '{part}' (0/{n} poses got a grasp; {processed}/{n} poses "
                        "processed)")
    else:
        e = np.asarray(errors)
        sections.append(f"sim camera: median {np.median(e):.1f} mm for '{part}' ({len(errors)}/{n} poses got a grasp: "
                        f"{modes.count('object_pose')} 6-DoF, {modes.count('single_point')} single-point; mean "
                        f"{e.mean():.1f} mm, {int(np.sum(e <= 20.0))} within 20 mm; {processed}/{n} poses processed)")
    return "demo summary: " + "; ".join(sections)
