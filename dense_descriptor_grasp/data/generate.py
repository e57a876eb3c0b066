"""``generate_dataset``: render a synthetic RGB-D dataset of pybullet objects (format: docs/DATA.md).

Views come in scenes: every scene fixes the objects' poses, the light and the background, and is seen from
``views_per_scene`` random cameras; any two views of one scene form a true multi-view pair with exact SE(3)
ground truth. A scene holds one target drawn from ``--objects`` and, with ``--distractors``, a few other objects
around it (their pixels are told apart in the mask and the camera JSON's ``role``). Every random choice derives
from ``(seed, scene index[, view index])`` so a view renders the same whether it is made in one run or after a
resume, and two runs with one seed write byte-identical files.

    generate_dataset --out data/duck --objects duck --num-views 200
    generate_dataset --out data/clutter --objects duck --distractors train --distractors-per-scene 2 4
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from dense_descriptor_grasp.objects import resolve_object

from .backgrounds import BACKGROUND_KINDS, list_background_images
from .camera_spans import CAMERA_SPANS, TRAINING_CAMERA_SPANS, CameraSpans
from .dataset_format import (DEFAULT_DEPTH_SCALE, FORMAT_NAME, FORMAT_VERSION, atomic_write_json, read_json,
                             remove_stale_temp_files, view_complete, write_view)
from .render import (DISTRACTOR_SETS, TRAINING_SCENE_SPANS, RenderConfig, SceneRenderer, SceneSpans,
                     draw_distractors, expand_distractors, sample_camera, sample_scene)

__all__ = ["generate_dataset", "plan_scenes", "get_args_parser", "main", "MIN_MASK_PIXELS"]

MIN_MASK_PIXELS = 20     # a view whose target shows fewer pixels is drawn again (another camera) ...
MAX_VIEW_ATTEMPTS = 20   # ... up to this many times; then the attempt with the most target pixels is kept


def plan_scenes(num_views: int, views_per_scene: int) -> list:
    """``[(scene_id, [view ids])]``: consecutive views grouped ``views_per_scene`` at a time."""
    scenes = []
    for s, start in enumerate(range(0, num_views, views_per_scene)):
        ids = [f"{i:06d}" for i in range(start, min(start + views_per_scene, num_views))]
        scenes.append((f"scene_{s:06d}", ids))
    return scenes


def _manifest(objects, distractor_pool, num_views, views_per_scene, seed, generator_args, depth_scale, complete):
    scenes = plan_scenes(num_views, views_per_scene)
    pairs = [[a, b] for _, ids in scenes for i, a in enumerate(ids) for b in ids[i + 1:]]
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "objects": list(objects),
        "distractors": [list(e) for e in distractor_pool],
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


def _render_view(renderer, plan, config, rng, target_values):
    """Render cameras until the targets show ``MIN_MASK_PIXELS`` pixels (at most ``MAX_VIEW_ATTEMPTS``; then the
    attempt with the most target pixels)."""
    best, best_count = None, -1
    for _attempt in range(MAX_VIEW_ATTEMPTS):
        T_world_camera, fov = sample_camera(rng, plan, config)
        view = renderer.render(T_world_camera, fov)
        count = int(np.count_nonzero(np.isin(view.mask, target_values)))
        if count > best_count:
            best, best_count = view, count
        if count >= MIN_MASK_PIXELS:
            break
    return best


def generate_dataset(out: str, objects=("duck",), num_views: int = 200, views_per_scene: int = 2,
                     objects_per_scene: int = 1, seed: int = 0, config: RenderConfig | None = None,
                     depth_scale: float = DEFAULT_DEPTH_SCALE, progress: bool = True, on_view_written=None,
                     distractors=(), distractors_per_scene=(2, 4)) -> dict:
    """Render ``num_views`` views into ``out``; continue an interrupted run with the next missing view.

    Args:
        out: dataset folder (created).
        objects: the targets: library names or URDF/OBJ paths; each scene draws ``objects_per_scene`` of them.
        num_views: total number of views.
        views_per_scene: cameras per object pose (>= 2 gives true multi-view pairs).
        seed: base seed; identical seeds give byte-identical datasets.
        config: :class:`RenderConfig`; default ``RenderConfig.training()`` (the training camera, light and
            background spans). A plain ``RenderConfig(...)`` keeps the original fixed-fov camera sampler.
        on_view_written: optional ``callback(view_id)`` after each view (used to test interruptions).
        distractors: ``--distractors`` entries (:func:`.render.expand_distractors`: set names ``train`` /
            ``eval``, library names, ``random_urdfs/NNN``, ``random_urdfs/AAA-BBB``, paths); empty = none.
        distractors_per_scene: ``(lo, hi)``: each scene gets a uniform integer number in ``[lo, hi]`` of them.
    Returns:
        ``{"written", "skipped", "seconds", "views_per_second"}``.
    Raises:
        ValueError: bad argument, or ``out`` holds a dataset made with different generator arguments.
    """
    config = config or RenderConfig.training()
    objects = list(objects)
    if not objects:
        raise ValueError("generate_dataset: objects must name at least one object")
    if num_views < 1 or views_per_scene < 1 or objects_per_scene < 1:
        raise ValueError(f"generate_dataset: num_views ({num_views}), views_per_scene ({views_per_scene}) and "
                         f"objects_per_scene ({objects_per_scene}) must be >= 1")
    if not (0 < depth_scale <= 0.01):
        raise ValueError(f"generate_dataset: depth_scale {depth_scale} m/unit outside (0, 0.01]")
    specs = [resolve_object(o) for o in objects]
    pool = expand_distractors(distractors) if distractors else []
    lo, hi = (int(v) for v in distractors_per_scene)
    if not (0 <= lo <= hi <= 50):
        raise ValueError(f"generate_dataset: distractors_per_scene must satisfy 0 <= lo <= hi <= 50, "
                         f"got {list(distractors_per_scene)}")
    if pool and objects_per_scene != 1:
        raise ValueError("generate_dataset: with distractors every scene has exactly one target "
                         f"(objects_per_scene must be 1, got {objects_per_scene})")
    count_range = [lo, hi] if pool else [0, 0]
    background_files = list_background_images(config.background_dir) if config.background_dir else None
    generator_args = {
        "objects": objects, "num_views": num_views, "views_per_scene": views_per_scene,
        "objects_per_scene": objects_per_scene, "seed": seed, "depth_scale": depth_scale,
        "distractors": list(distractors), "distractor_pool": pool, "distractors_per_scene": count_range,
        **config.as_args(),
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
    atomic_write_json(manifest_path, _manifest(objects, pool, num_views, views_per_scene, seed, generator_args,
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
            scene_distractors = draw_distractors(scene_rng, pool, count_range)
            plan = sample_scene(scene_rng, [specs[i] for i in pick], config, vertex_cache, background_files,
                                scene_distractors)
            target_values = [o.mask_value for o in plan.objects if o.role == "target"]
            targets = [o.spec.name for o in plan.objects if o.role == "target"]
            renderer.set_scene(plan)
            for k in missing:
                view = _render_view(renderer, plan, config, np.random.default_rng([seed, s, k + 1]), target_values)
                camera = {
                    "K": _listify(view.K),
                    "T_world_camera": _listify(view.T_world_camera),
                    "scene_id": scene_id,
                    "objects": [{"name": name, "mask_value": int(mv), "T_world_object": _listify(T),
                                 "role": obj.role, "scale": float(obj.spec.scale)}
                                for (name, mv, T), obj in zip(view.object_poses, plan.objects)],
                    "background": plan.background_kind,
                    "light_direction": _listify(plan.light_direction),
                }
                if len(targets) == 1:
                    camera["target"] = targets[0]
                if config.scene_spans is not None:
                    camera["sky"] = plan.sky_kind
                    camera["light"] = dict(plan.light_params)
                write_view(out, ids[k], view.rgb, view.depth, view.mask, camera, depth_scale)
                written += 1
                bar.update(1)
                if on_view_written is not None:
                    on_view_written(ids[k])
    bar.close()
    atomic_write_json(manifest_path, _manifest(objects, pool, num_views, views_per_scene, seed, generator_args,
                                               depth_scale, complete=True))
    seconds = time.perf_counter() - t0
    return {"written": written, "skipped": done, "seconds": seconds,
            "views_per_second": written / seconds if seconds > 0 else 0.0}


def _sets_help() -> str:
    return "; ".join(f"{k}: " + ", ".join(e if w == 1 else f"{e} (weight {w})" for e, w in v)
                     for k, v in DISTRACTOR_SETS.items())


def get_args_parser() -> argparse.ArgumentParser:
    d, cam, light = RenderConfig(), TRAINING_CAMERA_SPANS, TRAINING_SCENE_SPANS
    ap = argparse.ArgumentParser(prog="generate_dataset", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="dataset folder (created; an existing one is resumed)")
    ap.add_argument("--objects", nargs="+", default=["duck"],
                    help="targets: library names (duck, teddy, lego, soccerball, jenga, mug, ...), random_urdfs/NNN "
                    "or .urdf/.obj paths; each scene draws --objects-per-scene of them")
    ap.add_argument("--num-views", "--views", dest="num_views", type=int, default=200, help="total number of views")
    ap.add_argument("--views-per-scene", type=int, default=2, help="cameras per object pose (true multi-view pairs)")
    ap.add_argument("--objects-per-scene", type=int, default=1,
                    help="targets placed in each scene (must be 1 with --distractors)")
    ap.add_argument("--distractors", nargs="+", default=[], metavar="NAME",
                    help="other objects around the target: set names (" + _sets_help() + "), library names, "
                    "random_urdfs/NNN, ranges random_urdfs/AAA-BBB (one random member per draw) or paths; "
                    "each entry equally likely unless a set weights it")
    ap.add_argument("--distractors-per-scene", type=int, nargs=2, default=[2, 4], metavar=("LO", "HI"),
                    help="number of distractors per scene, uniform integer in [LO, HI] (with --distractors)")
    ap.add_argument("--distractor-size", type=float, nargs=2, default=list(d.distractor_size), metavar=("MIN", "MAX"),
                    help="largest extent of each distractor, metres")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=d.width)
    ap.add_argument("--height", type=int, default=d.height)
    ap.add_argument("--cameras", choices=sorted(CAMERA_SPANS), default="training",
                    help="camera spans the next five options default to: 'training' (wide, data/camera_spans.py "
                         "TRAINING_CAMERA_SPANS) or 'evaluation' (the robot's level view: EVALUATION_CAMERA_SPANS)")
    ap.add_argument("--fov", type=float, nargs="+", default=None, metavar="DEG",
                    help=f"vertical field of view, degrees: MIN MAX drawn per view, or one fixed value "
                         f"(training: {list(cam.fov_deg)})")
    ap.add_argument("--elevation", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                    help=f"elevation of the optical axis above the plane, degrees (training: {list(cam.elevation_deg)})")
    ap.add_argument("--distance-factor", type=float, nargs=2, default=None,
                    metavar=("MIN", "MAX"), help="camera distance relative to the distance at which the target's "
                    f"bounding sphere just fills the view, log-uniform (training: {list(cam.distance_factor)})")
    ap.add_argument("--roll", type=float, default=None,
                    help=f"+- camera roll about the optical axis, degrees (training: {cam.roll_deg})")
    ap.add_argument("--look-at-offset", type=float, default=None,
                    help=f"+- target centre off the optical axis (image x and y), in target radii "
                         f"(training: {cam.look_at_offset})")
    ap.add_argument("--ambient", type=float, nargs=2, default=list(light.ambient), metavar=("MIN", "MAX"),
                    help="ambient light coefficient")
    ap.add_argument("--diffuse", type=float, nargs=2, default=list(light.diffuse), metavar=("MIN", "MAX"),
                    help="diffuse light coefficient")
    ap.add_argument("--specular", type=float, nargs=2, default=list(light.specular), metavar=("MIN", "MAX"),
                    help="specular light coefficient")
    ap.add_argument("--light-elevation", type=float, nargs=2, default=list(light.light_elevation_deg),
                    metavar=("MIN", "MAX"), help="elevation of the light direction, degrees")
    ap.add_argument("--shadow-prob", type=float, default=light.shadow_prob, help="chance of cast shadows per scene")
    ap.add_argument("--light-tint", type=float, default=light.light_tint,
                    help="+- per colour channel of the light (0 = white light)")
    ap.add_argument("--backgrounds", nargs="+", default=list(d.backgrounds), choices=BACKGROUND_KINDS,
                    help="floor and background kinds, each drawn per scene ('images' needs --background-dir)")
    ap.add_argument("--background-dir", default=None, help="folder of background images (adds 'images')")
    ap.add_argument("--depth-scale", type=float, default=DEFAULT_DEPTH_SCALE, help="metres per uint16 depth unit")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return ap


def config_from_args(args) -> RenderConfig:
    """The :class:`RenderConfig` of parsed ``generate_dataset`` arguments (``ValueError`` on bad ranges)."""
    backgrounds = list(args.backgrounds)
    if args.background_dir and "images" not in backgrounds:
        backgrounds.append("images")
    base = CAMERA_SPANS[getattr(args, "cameras", None) or "training"]
    fov_arg = args.fov if args.fov is not None else list(base.fov_deg)
    if len(fov_arg) not in (1, 2):
        raise ValueError(f"--fov takes one value or MIN MAX, got {fov_arg}")
    fov = (fov_arg[0], fov_arg[-1])
    spans = CameraSpans(
        elevation_deg=tuple(args.elevation) if args.elevation is not None else base.elevation_deg,
        distance_factor=tuple(args.distance_factor) if args.distance_factor is not None else base.distance_factor,
        roll_deg=args.roll if args.roll is not None else base.roll_deg, fov_deg=fov,
        look_at_offset=args.look_at_offset if args.look_at_offset is not None else base.look_at_offset)
    light = SceneSpans(light_elevation_deg=tuple(args.light_elevation), ambient=tuple(args.ambient),
                       diffuse=tuple(args.diffuse), specular=tuple(args.specular), shadow_prob=args.shadow_prob,
                       light_tint=args.light_tint)
    return RenderConfig.training(width=args.width, height=args.height, backgrounds=tuple(backgrounds),
                                 background_dir=args.background_dir, camera_spans=spans, scene_spans=light,
                                 distractor_size=tuple(args.distractor_size))


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        stats = generate_dataset(args.out, args.objects, args.num_views, args.views_per_scene,
                                 args.objects_per_scene, args.seed, config, args.depth_scale,
                                 progress=not args.no_progress, distractors=args.distractors,
                                 distractors_per_scene=args.distractors_per_scene)
    except ValueError as exc:
        print(f"generate_dataset: error: {exc}", file=sys.stderr)
        return 2
    print(f"generate_dataset: {stats['written']} views written, {stats['skipped']} already there, "
          f"{stats['views_per_second']:.1f} views/s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
