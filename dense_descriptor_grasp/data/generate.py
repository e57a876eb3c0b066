"""``generate_dataset``: render a synthetic RGB-D dataset of pybullet objects (format: docs/DATA.md).

Views come in scenes: every scene fixes the objects' poses, the light and the background, and is seen from
``views_per_scene`` random cameras; any two views of one scene form a true multi-view pair with exact SE(3)
ground truth. Every random choice derives from ``(seed, scene index[, view index])`` so a view renders the same
whether it is made in one run or after a resume, and two runs with one seed write byte-identical files.

    generate_dataset --out data/duck --objects duck --num-views 200
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .backgrounds import BACKGROUND_KINDS, list_background_images
from .dataset_format import (DEFAULT_DEPTH_SCALE, FORMAT_NAME, FORMAT_VERSION, atomic_write_json, read_json,
                             remove_stale_temp_files, view_complete, write_view)
from .render import RenderConfig, SceneRenderer, resolve_object, sample_camera_pose, sample_scene

__all__ = ["generate_dataset", "plan_scenes", "get_args_parser", "main"]

MIN_MASK_PIXELS = 20


def plan_scenes(num_views: int, views_per_scene: int) -> list:
    """``[(scene_id, [view ids])]``: consecutive views grouped ``views_per_scene`` at a time."""
    scenes = []
    for s, start in enumerate(range(0, num_views, views_per_scene)):
        ids = [f"{i:06d}" for i in range(start, min(start + views_per_scene, num_views))]
        scenes.append((f"scene_{s:06d}", ids))
    return scenes


def _manifest(objects, num_views, views_per_scene, seed, generator_args, depth_scale, complete):
    scenes = plan_scenes(num_views, views_per_scene)
    pairs = [[a, b] for _, ids in scenes for i, a in enumerate(ids) for b in ids[i + 1:]]
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "objects": list(objects),
        "count": num_views,
        "seed": seed,
        "depth_scale": depth_scale,
        "depth_unit": "metres = uint16 value * depth_scale",
        "generator": generator_args,
        "scenes": [{"scene_id": sid, "views": ids} for sid, ids in scenes],
        "multiview_pairs": pairs,
        "complete": complete,
    }


def _listify(T):
    return np.asarray(T, dtype=np.float64).tolist()


def generate_dataset(out: str, objects=("duck",), num_views: int = 200, views_per_scene: int = 2,
                     objects_per_scene: int = 1, seed: int = 0, config: RenderConfig | None = None,
                     depth_scale: float = DEFAULT_DEPTH_SCALE, progress: bool = True, on_view_written=None) -> dict:
    """Render ``num_views`` views into ``out``; continue an interrupted run with the next missing view.

    Args:
        out: dataset folder (created).
        objects: library names or URDF/OBJ paths; each scene draws ``objects_per_scene`` of them.
        num_views: total number of views.
        views_per_scene: cameras per object pose (>= 2 gives true multi-view pairs).
        seed: base seed; identical seeds give byte-identical datasets.
        config: :class:`RenderConfig` (image size, field of view, randomisation ranges, backgrounds).
        on_view_written: optional ``callback(view_id)`` after each view (used to test interruptions).
    Returns:
        ``{"written", "skipped", "seconds", "views_per_second"}``.
    Raises:
        ValueError: bad argument, or ``out`` holds a dataset made with different generator arguments.
    """
    config = config or RenderConfig()
    objects = list(objects)
    if not objects:
        raise ValueError("generate_dataset: objects must name at least one object")
    if num_views < 1 or views_per_scene < 1 or objects_per_scene < 1:
        raise ValueError(f"generate_dataset: num_views ({num_views}), views_per_scene ({views_per_scene}) and "
                         f"objects_per_scene ({objects_per_scene}) must be >= 1")
    if not (0 < depth_scale <= 0.01):
        raise ValueError(f"generate_dataset: depth_scale {depth_scale} m/unit outside (0, 0.01]")
    specs = [resolve_object(o) for o in objects]
    background_files = list_background_images(config.background_dir) if config.background_dir else None
    generator_args = {
        "objects": objects, "num_views": num_views, "views_per_scene": views_per_scene,
        "objects_per_scene": objects_per_scene, "seed": seed, "depth_scale": depth_scale,
        "width": config.width, "height": config.height, "fov_deg": config.fov_deg, "near": config.near,
        "far": config.far, "elevation_deg": list(config.elevation_deg),
        "distance_factor": list(config.distance_factor), "roll_deg": config.roll_deg,
        "target_jitter": config.target_jitter, "position_range": config.position_range,
        "plane_size": config.plane_size, "texture_size": config.texture_size,
        "backgrounds": list(config.backgrounds), "background_dir": config.background_dir,
    }
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.isfile(manifest_path):
        old = read_json(manifest_path).get("generator", {})
        diff = sorted(k for k in set(old) | set(generator_args) if old.get(k) != generator_args.get(k))
        if diff:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {generator_args.get(k)!r}" for k in diff)
            raise ValueError(f"{manifest_path}: the dataset there was generated with other arguments ({details}); "
                             "use another --out folder or the same arguments to resume")
    remove_stale_temp_files(out)
    atomic_write_json(manifest_path, _manifest(objects, num_views, views_per_scene, seed, generator_args,
                                               depth_scale, complete=False))
    scenes = plan_scenes(num_views, views_per_scene)
    done = sum(view_complete(out, v) for _, ids in scenes for v in ids)
    written, t0 = 0, time.perf_counter()
    vertex_cache: dict = {}
    from tqdm import tqdm

    bar = tqdm(total=num_views, initial=done, unit="view", desc=f"generate {os.path.basename(os.path.abspath(out))}",
               disable=not progress, dynamic_ncols=True)
    with SceneRenderer(config) as renderer:
        for s, (scene_id, ids) in enumerate(scenes):
            missing = [k for k, v in enumerate(ids) if not view_complete(out, v)]
            if not missing:
                continue
            scene_rng = np.random.default_rng([seed, s])
            pick = scene_rng.choice(len(specs), size=objects_per_scene, replace=objects_per_scene > len(specs))
            plan = sample_scene(scene_rng, [specs[i] for i in pick], config, vertex_cache, background_files)
            renderer.set_scene(plan)
            for k in missing:
                view_rng = np.random.default_rng([seed, s, k + 1])
                for _attempt in range(20):
                    view = renderer.render(sample_camera_pose(view_rng, plan, config))
                    if np.count_nonzero(view.mask) >= MIN_MASK_PIXELS:
                        break
                camera = {
                    "K": _listify(view.K),
                    "T_world_camera": _listify(view.T_world_camera),
                    "scene_id": scene_id,
                    "objects": [{"name": name, "mask_value": int(mv), "T_world_object": _listify(T)}
                                for name, mv, T in view.object_poses],
                    "background": plan.background_kind,
                    "light_direction": _listify(plan.light_direction),
                }
                write_view(out, ids[k], view.rgb, view.depth, view.mask, camera, depth_scale)
                written += 1
                bar.update(1)
                if on_view_written is not None:
                    on_view_written(ids[k])
    bar.close()
    atomic_write_json(manifest_path, _manifest(objects, num_views, views_per_scene, seed, generator_args,
                                               depth_scale, complete=True))
    seconds = time.perf_counter() - t0
    return {"written": written, "skipped": done, "seconds": seconds,
            "views_per_second": written / seconds if seconds > 0 else 0.0}


def get_args_parser() -> argparse.ArgumentParser:
    d = RenderConfig()
    ap = argparse.ArgumentParser(prog="generate_dataset", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="dataset folder (created; an existing one is resumed)")
    ap.add_argument("--objects", nargs="+", default=["duck"],
                    help="pybullet_data names (duck, teddy, lego, soccerball, random_urdfs/NNN) or .urdf/.obj paths")
    ap.add_argument("--num-views", "--views", dest="num_views", type=int, default=200, help="total number of views")
    ap.add_argument("--views-per-scene", type=int, default=2, help="cameras per object pose (true multi-view pairs)")
    ap.add_argument("--objects-per-scene", type=int, default=1, help="objects placed in each scene")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=d.width)
    ap.add_argument("--height", type=int, default=d.height)
    ap.add_argument("--fov", type=float, default=d.fov_deg, help="vertical field of view, degrees")
    ap.add_argument("--elevation", type=float, nargs=2, default=list(d.elevation_deg), metavar=("MIN", "MAX"),
                    help="camera elevation above the plane, degrees")
    ap.add_argument("--distance-factor", type=float, nargs=2, default=list(d.distance_factor), metavar=("MIN", "MAX"),
                    help="camera distance relative to the distance at which the objects just fill the view")
    ap.add_argument("--backgrounds", nargs="+", default=list(d.backgrounds), choices=BACKGROUND_KINDS,
                    help="background kinds drawn per scene ('images' needs --background-dir)")
    ap.add_argument("--background-dir", default=None, help="folder of background images (adds 'images')")
    ap.add_argument("--depth-scale", type=float, default=DEFAULT_DEPTH_SCALE, help="metres per uint16 depth unit")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return ap


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    backgrounds = list(args.backgrounds)
    if args.background_dir and "images" not in backgrounds:
        backgrounds.append("images")
    try:
        config = RenderConfig(width=args.width, height=args.height, fov_deg=args.fov,
                              elevation_deg=tuple(args.elevation), distance_factor=tuple(args.distance_factor),
                              backgrounds=tuple(backgrounds), background_dir=args.background_dir)
        stats = generate_dataset(args.out, args.objects, args.num_views, args.views_per_scene,
                                 args.objects_per_scene, args.seed, config, args.depth_scale,
                                 progress=not args.no_progress)
    except ValueError as exc:
        print(f"generate_dataset: error: {exc}", file=sys.stderr)
        return 2
    print(f"generate_dataset: {stats['written']} views written, {stats['skipped']} already there, "
          f"{stats['views_per_second']:.1f} views/s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
