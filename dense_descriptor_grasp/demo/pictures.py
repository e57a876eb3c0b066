"""Step 6, pictures: each pose's descriptor preview, heatmap and grasp drawing, all grasps side by side, and
``results.json``."""
from __future__ import annotations

import math

import numpy as np

from dense_descriptor_grasp.atomic_io import atomic_write_json

from .settings import OBJECT, DemoSettings, log, step_label, write_png
from .summary import summary_line


def save_pose_pictures(s: DemoSettings, observer, index: int, stamp: int, true, T_cg) -> list:
    import cv2

    from dense_descriptor_grasp.geometry.camera import project

    out = s.path(s.out)
    saved = []
    for key, name in (("preview", "descriptors"), ("heatmap", "heatmap")):
        img = observer.images[key].get(stamp)
        if img is not None:
            saved.append(str(write_png(out / f"pose_{index + 1:02d}_{name}.png", img)))
    rgb = observer.images["rgb"].get(stamp)
    if rgb is not None and observer.K is not None:
        scale = 2 if rgb.shape[1] < 400 else 1
        img = cv2.resize(np.ascontiguousarray(rgb), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

        def px(p):
            uv, _ = project(np.asarray(p, dtype=np.float64)[None], observer.K)
            return int(round(uv[0][0] * scale)), int(round(uv[0][1] * scale))

        cv2.circle(img, px(true), 5, (0, 230, 0), 2)
        if T_cg is not None:
            p = T_cg[:3, 3]
            cv2.arrowedLine(img, px(p - 0.05 * T_cg[:3, 2]), px(p), (0, 120, 255), 2, tipLength=0.25)
            cv2.line(img, px(p - 0.02 * T_cg[:3, 1]), px(p + 0.02 * T_cg[:3, 1]), (255, 255, 0), 1)
            cv2.drawMarker(img, px(p), (255, 0, 0), cv2.MARKER_CROSS, 10, 2)
            label = f"error {np.linalg.norm(p - true) * 1000:.0f} mm"
        else:
            label = "no grasp"
        cv2.putText(img, f"pose {index + 1}: {label}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
        saved.append(str(write_png(out / f"pose_{index + 1:02d}_grasp.png", img)))
    return saved


def step_pictures(s: DemoSettings, rows: list, semantic: dict | None) -> dict:
    """results.json (the poses, the semantic-point evaluation, the summary line) and grasps.png (the grasp pictures
    side by side)."""
    import cv2

    out = s.path(s.out)
    line = summary_line(rows, s.part, semantic)
    atomic_write_json(out / "results.json", {
        "object": OBJECT, "part": s.part, "preset": s.preset, "checkpoint": str(s.checkpoint),
        "semantic_evaluation": semantic, "rows": rows, "summary": line}, indent=1)
    tiles = [cv2.imread(str(out / f"pose_{r['pose']:02d}_grasp.png"))[:, :, ::-1] for r in rows
             if (out / f"pose_{r['pose']:02d}_grasp.png").is_file()]
    if tiles:
        h, w = tiles[0].shape[:2]
        cols = min(5, len(tiles))
        grid = np.zeros((h * math.ceil(len(tiles) / cols), w * cols, 3), np.uint8)
        for k, tile in enumerate(tiles):
            r, c = divmod(k, cols)
            grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = cv2.resize(tile, (w, h))
        write_png(out / "grasps.png", grid)
    log(f"{step_label('pictures')}: {out}/pose_NN_{{descriptors,heatmap,grasp}}.png, "
        f"{'grasps.png, ' if tiles else ''}results.json; {s.eval_dir}/semantic_matches.png")
    return {"results": str(out / "results.json"), "summary": line}
