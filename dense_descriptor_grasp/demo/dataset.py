"""Step 1, dataset: render the cluttered training set and the held-out evaluation set (resumable); a folder made
with other arguments is set aside and rendered afresh."""
from __future__ import annotations

import json

from .settings import OBJECT, OLD_DATASET, DemoSettings, log, set_aside, step_label


def dataset_plans(s: DemoSettings) -> list:
    """``[(label, folder, generate_dataset keyword arguments)]``: the training set, then the held-out set."""
    from dense_descriptor_grasp.data.camera_spans import EVALUATION_CAMERA_SPANS
    from dense_descriptor_grasp.data.render import RenderConfig

    config = RenderConfig.training(width=s.width, height=s.height)   # the training camera / light spans
    # held out: the robot's level view (inside the training spans), new scenes, distractors, floors and light
    eval_config = RenderConfig.training(width=s.width, height=s.height, camera_spans=EVALUATION_CAMERA_SPANS)
    return [
        ("training", s.dataset, dict(objects=[OBJECT], num_views=s.views, views_per_scene=s.views_per_scene,
                                     seed=s.seed, config=config, distractors=[s.distractors],
                                     distractors_per_scene=tuple(s.distractors_per_scene))),
        ("held-out evaluation", s.eval_dataset,
         dict(objects=[OBJECT], num_views=s.eval_views, views_per_scene=s.eval_views_per_scene, seed=s.eval_seed,
              config=eval_config, distractors=[s.eval_distractors], distractors_per_scene=tuple(s.distractors_per_scene))),
    ]


def _manifest_matches(manifest: dict, kw: dict) -> bool:
    """The manifest is complete and records these arguments (the ones the demo chooses; the generator itself checks
    every argument when it runs)."""
    g = manifest.get("generator", {})
    lo, hi = kw["distractors_per_scene"]
    want = {"objects": kw["objects"], "num_views": kw["num_views"], "views_per_scene": kw["views_per_scene"],
            "seed": kw["seed"], "distractors": kw["distractors"], "distractors_per_scene": [lo, hi],
            **kw["config"].as_args()}
    want = json.loads(json.dumps(want))
    return bool(manifest.get("complete")) and all(g.get(k) == v for k, v in want.items())


def _describe(kw: dict) -> str:
    lo, hi = kw["distractors_per_scene"]
    c = kw["config"]
    return (f"{kw['num_views']} views ({kw['views_per_scene']} per scene) of the {OBJECT} among {lo}-{hi} "
            f"'{kw['distractors'][0]}' distractors at {c.width}x{c.height}, seed {kw['seed']}")


def step_dataset(s: DemoSettings) -> dict:
    """Render the training and the held-out set unless their manifests say they are complete with these arguments.

    An interrupted run resumes. A folder made with other arguments (an older demo, another ``--quick``-ness) is
    renamed ``<folder>.old`` (``.old2``, ...) and rendered afresh; the generator's message names the differences.
    """
    from dense_descriptor_grasp.data.generate import generate_dataset

    step = step_label("dataset")
    old = s.path(OLD_DATASET)
    if not s.quick and (old / "manifest.json").is_file():
        log(f"{step}: {old} (the dataset of the demo before clutter) is not used any more; delete it when you like")
    results = {}
    for label, rel, kw in dataset_plans(s):
        out = s.path(rel)
        manifest = out / "manifest.json"
        if manifest.is_file() and _manifest_matches(json.loads(manifest.read_text()), kw):
            log(f"{step}: {label} set {out} is complete ({_describe(kw)}) - skipped")
            results[label] = {"skipped": True, "path": str(out)}
            continue
        log(f"{step}: rendering the {label} set: {_describe(kw)} into {out} (pybullet CPU renderer; an interrupted "
            "run continues where it stopped)")
        try:
            stats = generate_dataset(str(out), progress=True, **kw)
        except ValueError as exc:
            if not manifest.is_file():
                raise
            kept = set_aside(out)
            log(f"{step}: {out} holds another dataset ({exc}) - moved to {kept.name}, rendering afresh")
            stats = generate_dataset(str(out), progress=True, **kw)
        log(f"{step}: {stats['written']} views written, {stats['skipped']} already there "
            f"({stats['views_per_second']:.1f} views/s)")
        results[label] = {**stats, "path": str(out)}
    return results
