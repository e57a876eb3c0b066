"""``make demo`` / ``demo``: the whole job end to end on a CPU, every step skipped when its result exists.

    demo                                  # data/demo_duck_clutter, data/demo_duck_eval, models/demo/, outputs/demo/
    demo --quick                          # tiny sizes and budgets (the test uses it)
    demo --preset paper --train-minutes 15 --poses 10 --device cpu

Steps (each prints what it does, and skips work already done, so a second run is quick):
  1. dataset    render the cluttered training set (the duck as target among 2-4 distractors of the "train" set,
                3 views per scene) into ``data/demo_duck_clutter`` and a held-out evaluation set (another seed,
                distractors of the disjoint "eval" set, 2 views per scene) into ``data/demo_duck_eval`` (resumable)
  2. train      train the descriptor model into ``models/demo/`` under a wall-clock budget (resumes a partial run):
                a training preset of training/presets.py, ``--preset clutter`` by default (NT-Xent with
                off-object negatives on two-view pairs, feature-pyramid decoder at stride 4)
  3. evaluate   the semantic-point evaluation of the trained model on the held-out set (evaluation/semantic.py):
                the duck's named parts found in cluttered scenes it never saw, beside the untrained network and the
                part-blind mask centroid; table printed, report in ``outputs/demo/clutter_eval/``
  4. reference  a reference for a named duck part (default ``head_top``) from a training view where it is
                visible, with every other visible named part and a few surface points (>= 3: the 6-DoF path)
  5. pipeline   the pip bringup's nodes (sim camera, descriptor node, grasp node) in this process; for a series
                of seeded object poses print the published grasp beside the true position of the part (mm)
  6. pictures   descriptor preview, match heatmap and the grasp on the image, as PNGs in ``outputs/demo/``, and
                ``results.json``
The last line is the summary: the held-out semantic-point error (px / mm, with both floors), then the sim
camera's median grasp error (mm) and how many poses were processed and got a grasp.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dense_descriptor_grasp.atomic_io import atomic_write_bytes, atomic_write_text
from dense_descriptor_grasp.training.presets import PRESETS, preset_overrides

__all__ = ["DemoSettings", "settings_from_args", "step_dataset", "step_train", "step_evaluate", "step_reference",
           "step_pipeline", "step_pictures", "training_overrides", "config_mismatch", "semantic_summary",
           "choose_reference_view", "visible_parts", "part_error_mm", "centre_error_mm",
           "summary_line", "get_args_parser", "main"]

OBJECT = "duck"
TRAIN_STATE = "demo_train.json"   # in the model folder: last.pt is the demo's, with this preset
EVAL_DIR = "clutter_eval"         # in the output folder: the semantic-point evaluation's report and picture
OLD_DATASET = "data/demo_duck"    # the dataset of the demo before clutter (single duck): no longer used
STEPS = ("dataset", "train", "evaluate", "reference", "pipeline", "pictures")
METHOD_ALIASES = {"keypoint": "paper", "ntxent": "ntxent"}   # deprecated --method -> --preset


def _num(name: str) -> str:
    return f"{STEPS.index(name) + 1}/{len(STEPS)}"


def _step(name: str) -> str:
    return f"{_num(name)} {name}"


@dataclass
class DemoSettings:
    """Every size and budget of one demo run (``--quick`` shrinks them)."""

    root: Path = Path(".")
    dataset: str = "data/demo_duck_clutter"     # training set: duck + "train" distractors
    eval_dataset: str = "data/demo_duck_eval"   # held out: another seed, "eval" distractors
    model_dir: str = "models/demo"
    out: str = "outputs/demo"
    views: int = 600
    views_per_scene: int = 3
    distractors: str = "train"
    distractors_per_scene: tuple = (2, 4)
    eval_views: int = 120
    eval_views_per_scene: int = 2
    eval_distractors: str = "eval"
    eval_seed_offset: int = 1000                # eval seed = seed + this (other scenes than the training set's)
    width: int = 160
    height: int = 120
    preset: str = "clutter"                     # training/presets.py
    num_correspondences: int = 256              # data.num_correspondences unless the preset sets it
    train_minutes: float = 15.0
    max_steps: int | None = 100000   # the wall-clock budget ends training (None: the training config's train.steps)
    checkpoint_every: int = 25
    part: str = "head_top"
    surface_points: int = 4
    poses: int = 10
    camera_rate: float = 4.0         # frames per second of the sim camera
    pipeline_timeout: float = 0.0    # 0: 60 s + 30 s per pose
    seed: int = 0
    pose_seed: int = 7               # seed of the sim camera's object poses (other than the dataset's)
    device: str = "cpu"
    threads: int = 1                 # torch intra-op threads for training (2 spin against any other job on 2 cores)
    tensorboard: bool = True
    split: str | None = "train"
    quick: bool = False

    def path(self, rel: str) -> Path:
        return self.root / rel

    @property
    def checkpoint(self) -> Path:
        return self.path(self.model_dir) / "last.pt"

    @property
    def eval_seed(self) -> int:
        return self.seed + self.eval_seed_offset

    @property
    def eval_dir(self) -> Path:
        return self.path(self.out) / EVAL_DIR


def log(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _atomic_write_png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    return atomic_write_bytes(path, png.tobytes())


def _set_aside(path: Path) -> Path:
    """Rename ``path`` to the first free ``<path>.old``, ``<path>.old2``, ... and return the new name."""
    k = 1
    while True:
        kept = path.with_name(f"{path.name}.old{'' if k == 1 else k}")
        if not kept.exists():
            path.replace(kept)
            return kept
        k += 1


# ---------------------------------------------------------------------------------------------- 1. dataset
def _dataset_plans(s: DemoSettings) -> list:
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

    step = _step("dataset")
    old = s.path(OLD_DATASET)
    if not s.quick and (old / "manifest.json").is_file():
        log(f"{step}: {old} (the dataset of the demo before clutter) is not used any more; delete it when you like")
    results = {}
    for label, rel, kw in _dataset_plans(s):
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
            kept = _set_aside(out)
            log(f"{step}: {out} holds another dataset ({exc}) - moved to {kept.name}, rendering afresh")
            stats = generate_dataset(str(out), progress=True, **kw)
        log(f"{step}: {stats['written']} views written, {stats['skipped']} already there "
            f"({stats['views_per_second']:.1f} views/s)")
        results[label] = {**stats, "path": str(out)}
    return results


# ---------------------------------------------------------------------------------------------- 2. train
def _train_state(s: DemoSettings) -> dict | None:
    path = s.path(s.model_dir) / TRAIN_STATE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_train_state(s: DemoSettings, state: dict) -> None:
    atomic_write_text(s.path(s.model_dir) / TRAIN_STATE, json.dumps({"preset": s.preset, **state}, indent=1))


def training_overrides(s: DemoSettings, budget_minutes: float) -> list:
    """The preset's overrides, then ``data.num_correspondences`` (unless the preset sets it) and the demo's own:
    dataset, split, run folder, budget (``train.max_minutes``: all runs of the folder together), seed, device,
    checkpointing."""
    overrides = preset_overrides(s.preset)
    if not any(o.split("=", 1)[0].strip() == "data.num_correspondences" for o in overrides):
        overrides.append(f"data.num_correspondences={s.num_correspondences}")
    overrides += [
        f"data.dataset={json.dumps(str(s.path(s.dataset)))}",
        f"data.split={json.dumps(s.split)}",
        f"train.out={json.dumps(str(s.path(s.model_dir)))}",
        f"train.max_minutes={budget_minutes:.4f}",
        f"train.checkpoint_every={s.checkpoint_every}",
        f"train.device={json.dumps(s.device)}",
        f"train.num_threads={int(s.threads)}",
        f"train.seed={s.seed}",
        f"train.tensorboard={'true' if s.tensorboard else 'false'}",
    ]
    if s.max_steps is not None:
        overrides.append(f"train.steps={s.max_steps}")
    return overrides


_ARCHITECTURE = ("method", "decoder", "output_stride", "descriptor_dim")
_MISSING = "(not recorded)"


def config_mismatch(checkpoint_info: dict, cfg, keys) -> list:
    """Where a checkpoint's model differs from what ``cfg`` trains: ``["model.decoder: 'none' (demo: 'fpn')", ...]``.

    Compares the network (``model_config``: method, decoder, output stride, D) and, in the training config stored
    with the checkpoint, every ``section.key`` of ``keys`` (the preset's overrides and the correspondence count),
    so that presets with one architecture (``clutter`` and ``ntxent``) are told apart too.
    """
    want = cfg.to_dict()
    model_config = checkpoint_info.get("model_config") or {}
    stored = checkpoint_info.get("config") or {}
    diffs = []
    for k in _ARCHITECTURE:
        have = model_config.get(k, "none" if k == "decoder" else _MISSING)
        if have != want["model"][k]:
            diffs.append(f"model.{k}: {have!r} (demo: {want['model'][k]!r})")
    for key in dict.fromkeys(keys):
        section, name = key.split(".", 1)
        if section == "model" and name in _ARCHITECTURE:
            continue
        have = (stored.get(section) or {}).get(name, _MISSING)
        if have != want.get(section, {}).get(name):
            diffs.append(f"{key}: {have!r} (demo: {want[section][name]!r})")
    return diffs


def _checkpoint_label(checkpoint_info: dict, state: dict | None) -> str:
    if state and state.get("preset"):
        return str(state["preset"])
    mc = checkpoint_info.get("model_config") or {}
    return f"{mc.get('method')}_{mc.get('decoder', 'none')}_s{mc.get('output_stride')}"


def step_train(s: DemoSettings) -> dict:
    """Train preset ``s.preset`` into ``s.model_dir`` within ``s.train_minutes`` (all runs together).

    ``train_model`` owns the budget: ``train.max_minutes`` is the folder's total and the checkpoint records the
    minutes trained so far, so the demo passes its whole budget and resumes ``last.pt`` whenever its step and its
    minutes are below the budget (an interrupted run, or a larger ``--train-minutes``). ``last.pt`` without the
    demo's ``demo_train.json`` (a model put there by a user) is used as is. A demo-made ``last.pt`` whose model or
    training config differs from the preset's (:func:`config_mismatch`: another decoder, method, stride, or another
    preset's losses / negatives) is not resumed: it is renamed ``last_<its preset or method_decoder_stride>.pt``
    (never over an existing file) and training starts afresh.
    """
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint
    from dense_descriptor_grasp.training.config import load_config
    from dense_descriptor_grasp.training.train import run_training, training_seconds

    step = _step("train")
    ckpt = s.checkpoint
    state = _train_state(s)
    cfg = load_config(None, training_overrides(s, s.train_minutes))
    keys = [o.split("=", 1)[0].strip() for o in preset_overrides(s.preset)] + ["data.num_correspondences"]
    if ckpt.is_file() and state is not None:
        info = load_checkpoint(ckpt)
        diffs = config_mismatch(info, cfg, keys)
        if diffs:
            label = _checkpoint_label(info, state)
            kept = ckpt.with_name(f"last_{label}.pt")
            k = 2
            while kept.exists():
                kept = ckpt.with_name(f"last_{label}_{k}.pt")
                k += 1
            log(f"{step}: {ckpt} holds a model the demo's preset {s.preset!r} does not train ({'; '.join(diffs)}) - "
                f"moved to {kept.name}, training afresh")
            ckpt.replace(kept)
            state = None
    resume = None
    if ckpt.is_file():
        info = load_checkpoint(ckpt)
        used = training_seconds(info) / 60.0
        if state is None or info["step"] >= cfg.train.steps or used >= s.train_minutes - 0.05:
            used_text = f", {used:.1f} of {s.train_minutes} min of training" if state else ", not made by the demo"
            log(f"{step}: {ckpt} exists (step {info['step']}{used_text}, model {info.get('model_identity')}) - "
                "skipped")
            return {"skipped": True, "step": int(info["step"])}
        resume = "auto"
        log(f"{step}: resuming the run from {ckpt} at step {info['step']} ({used:.1f} of {s.train_minutes} min "
            "trained)")
    m, d = cfg.model, cfg.data
    task = f"keypoint task N={m.num_keypoints}" if m.method == "keypoint" else "NT-Xent"
    if m.method == "ntxent" and d.num_negatives and cfg.losses.ntxent_negatives:
        task += f" with {d.num_negatives} off-object negatives per view"
    decoder = (f"FPN decoder, stride {m.output_stride}" if m.decoder == "fpn"
               else f"stride {m.output_stride}, no decoder")
    log(f"{step}: preset {s.preset!r}: {task} on {d.mode} pairs, {d.num_correspondences} correspondences "
        f"(ResNet-34, {decoder}, D={m.descriptor_dim}, batch {cfg.train.batch_size}) on {s.dataset}: up to step "
        f"{cfg.train.steps} or {s.train_minutes:.1f} min of training in all, whichever comes first, on {s.device} "
        f"-> {ckpt}")
    _write_train_state(s, {"budget_minutes": s.train_minutes})   # marks last.pt as the demo's, with its preset
    summary = run_training(cfg, resume=resume, progress=True, log=log)
    if summary["status"] != "ok":
        raise RuntimeError(f"training stopped: {summary['status']} at step {summary['step']} (see {s.model_dir})")
    _write_train_state(s, {"budget_minutes": s.train_minutes, "trained_minutes": round(summary["train_seconds"] / 60, 3),
                           "stop_reason": summary["stop_reason"], "step": summary["step"],
                           "final_losses": summary["final"]})
    log(f"{step}: {summary['steps_run']} steps in {summary['seconds']:.0f} s "
        f"({summary['seconds_per_step']:.2f} s/step), total step {summary['step']}, final loss "
        f"{summary['final'].get('total', float('nan')):.4g}; loss curve {summary['loss_curve']}")
    return summary


# ---------------------------------------------------------------------------------------------- 3. evaluate
SUMMARY_KEYS = ("matches", "median_px", "pck_3", "pck_5", "pck_10", "median_mm", "within_10mm", "depth_misses")


def semantic_summary(report: dict, model_name: str) -> dict:
    """The part of a semantic-point report the demo keeps (results.json, the summary line)."""
    from dense_descriptor_grasp.evaluation.semantic import FLOOR_CENTROID, FLOOR_UNTRAINED

    methods = report["methods"]
    info = methods[model_name].get("info", {})
    return {
        "model": model_name,
        "model_identity": info.get("identity"),
        "checkpoint_step": info.get("step"),
        "dataset": report["settings"]["dataset"],
        "views": report["dataset"]["num_views"],
        "views_evaluated": report["dataset"]["num_views_evaluated"],
        "scenes_evaluated": report["dataset"]["num_scenes_evaluated"],
        "report": (report.get("files") or {}).get("report"),
        "methods": {n: {k: methods[n].get(k) for k in SUMMARY_KEYS}
                    for n in (model_name, FLOOR_UNTRAINED, FLOOR_CENTROID) if n in methods},
    }


def _model_name(s: DemoSettings) -> str:
    """The trained model's row in the evaluation table: its preset when the demo trained it, else ``model``."""
    state = _train_state(s)
    return str(state["preset"]) if state and state.get("preset") else "model"


def step_evaluate(s: DemoSettings) -> dict:
    """The semantic-point evaluation of ``last.pt`` on the held-out set, with both floors; prints the table.

    Skipped when ``<out>/clutter_eval/semantic_report.json`` was made for this model (identity) and this dataset,
    after the dataset was last rendered.
    Returns :func:`semantic_summary` of the report.
    """
    from dense_descriptor_grasp.evaluation.semantic import REPORT_NAME, format_table, semantic_point_evaluation
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    step = _step("evaluate")
    name = _model_name(s)
    identity = str(load_checkpoint(s.checkpoint).get("model_identity", ""))
    dataset = s.path(s.eval_dataset)
    path = s.eval_dir / REPORT_NAME
    report = None
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            manifest = dataset / "manifest.json"
            newer = manifest.is_file() and path.stat().st_mtime >= manifest.stat().st_mtime
            if newer and old["settings"]["dataset"] == str(dataset) and \
                    (old["methods"].get(name) or {}).get("info", {}).get("identity") == identity:
                report = old
                log(f"{step}: {path} exists for model {identity} on {dataset} - skipped")
        except (ValueError, KeyError, TypeError):
            report = None
    if report is None:
        log(f"{step}: semantic-point evaluation of {s.checkpoint} ({name!r}) on the held-out set {dataset}: the "
            f"{OBJECT}'s named parts matched over whole cluttered images it never saw, references from another "
            f"scene; floors: the untrained network and the target-mask centroid")
        t0 = time.perf_counter()
        report = semantic_point_evaluation({name: str(s.checkpoint)}, str(dataset), object_name=OBJECT,
                                           device=s.device, include_floors=True, seed=s.seed, out_dir=s.eval_dir)
        log(f"{step}: {report['dataset']['num_views_evaluated']} views of {report['dataset']['num_scenes_evaluated']} "
            f"scenes in {time.perf_counter() - t0:.1f} s -> {path}, {s.eval_dir / 'semantic_matches.png'}")
    for line in (report.get("table_markdown") or format_table(report)).splitlines():
        print(line, flush=True)
    return semantic_summary(report, name)


# ---------------------------------------------------------------------------------------------- 4. reference
def _read_camera_json(dataset: Path, view_id: str) -> dict:
    return json.loads((dataset / "camera" / f"{view_id}.json").read_text())


def visible_parts(T_camera_object: np.ndarray, K: np.ndarray, depth: np.ndarray, mask: np.ndarray,
                  parts: dict, tolerance: float = 0.006) -> dict:
    """Named parts seen in a view: name -> (u, v) for parts in the image, on the mask, not hidden.

    ``parts``: name -> point (3,) in the object frame; depth (H, W) metres; a part is hidden when the depth
    image is nearer than the part by more than ``tolerance`` metres everywhere in its 3x3 neighbourhood.
    """
    from dense_descriptor_grasp.geometry.camera import project

    h, w = depth.shape
    seen = {}
    for name, p in parts.items():
        p_cam = T_camera_object[:3, :3] @ np.asarray(p, dtype=np.float64) + T_camera_object[:3, 3]
        uv, z = project(p_cam[None], np.asarray(K, dtype=np.float64))
        u, v = (float(x) for x in uv[0])
        iu, iv = int(round(u)), int(round(v))
        if not (2 <= iu < w - 2 and 2 <= iv < h - 2) or z[0] <= 0:
            continue
        window = depth[iv - 1:iv + 2, iu - 1:iu + 2]
        if mask[iv, iu] and np.any(np.abs(window - z[0]) < tolerance):
            seen[name] = (u, v)
    return seen


def choose_reference_view(dataset: Path, part: str) -> tuple[str, dict]:
    """The dataset view that sees ``part`` and the most other named parts (ties: the larger mask).

    Returns ``(view_id, {name: (u, v)})``. Raises ``ValueError`` when no view sees the part.
    """
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.sim.grasp_sim import object_keypoints

    parts = {k: v for k, v in object_keypoints(OBJECT).items() if k != "top"}
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
        T_camera_object = np.linalg.inv(np.asarray(cam["T_world_camera"])) @ np.asarray(objs[0]["T_world_object"])
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
    from dense_descriptor_grasp.make_reference import build_reference
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint, load_model

    path = s.path(s.model_dir) / f"reference_{s.part}.npz"
    identity = str(load_checkpoint(s.checkpoint).get("model_identity", ""))
    if path.is_file():
        try:
            ref = load_reference(path, identity)
            log(f"{_step('reference')}: {path} exists for model {identity} ({len(ref)} references {ref.names}) - "
                "skipped")
            return {"skipped": True, "path": path}
        except ValueError as exc:
            log(f"{_step('reference')}: {path} is stale ({exc}); making it again")
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
    log(f"{_step('reference')}: view {view_id} of {dataset} shows '{s.part}' and {len(seen) - 1} other named parts; "
        f"{len(names)} references {names}, grasp on '{s.part}'")
    model = load_model(s.checkpoint, device=s.device)
    ref = build_reference(model, sample["rgb"], sample["depth"], np.asarray(sample["K"], dtype=np.float64), pixels,
                          names, grasp_index=0, device=s.device,
                          source=f"demo: dataset {dataset} view {view_id}, named {OBJECT} parts + surface points")
    save_reference(path, ref)
    picture = draw_reference(sample["rgb"], pixels, names)
    _atomic_write_png(s.path(s.out) / "reference_view.png", picture)
    log(f"{_step('reference')}: wrote {path} and {s.path(s.out) / 'reference_view.png'}")
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


# ---------------------------------------------------------------------------------------------- 5. pipeline
def part_error_mm(grasp_position, T_camera_object, part_object) -> float:
    """Distance (mm) between a grasp position (3,) and a part (3,) in the object frame carried by T_camera_object."""
    T = np.asarray(T_camera_object, dtype=np.float64)
    true = T[:3, :3] @ np.asarray(part_object, dtype=np.float64) + T[:3, 3]
    return float(np.linalg.norm(np.asarray(grasp_position, dtype=np.float64) - true) * 1000.0)


def centre_error_mm(part: str) -> float:
    """Distance (mm) from ``part`` to the mean of the object's named parts: the error of a part-blind guess."""
    from dense_descriptor_grasp.sim.grasp_sim import object_keypoints

    parts = {k: v for k, v in object_keypoints(OBJECT).items() if k != "top"}
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


def _pose_matrix(msg) -> np.ndarray:
    from dense_descriptor_grasp.geometry.se3 import matrix_from_quaternion

    o, p = msg.pose.orientation, msg.pose.position
    T = np.eye(4)
    T[:3, :3] = np.asarray(matrix_from_quaternion(np.array([o.x, o.y, o.z, o.w], dtype=np.float64)))
    T[:3, 3] = (p.x, p.y, p.z)
    return T


HOLD_POSE = 3600.0   # sim camera pose_period while a pose is being grasped (the demo advances poses itself)


def _make_observer(context, camera_node=None, keep: int = 80):
    """A node recording what the pipeline publishes, keyed by the image stamp (ns).

    With ``camera_node`` (the in-process sim camera, ``pose_period`` at "hold"), :meth:`next_pose` asks it for
    exactly one new object pose (``SimCameraNode.request_new_pose``): each pose stays until the pipeline has
    processed it, however slow the machine, and no pose is skipped.
    """
    import threading
    from collections import OrderedDict

    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from visualization_msgs.msg import MarkerArray

    from dense_descriptor_grasp.image_msgs import camera_info_to_K, image_to_numpy

    class PipelineObserver(Node):
        def __init__(self):
            super().__init__("demo_observer", context=context)
            self.lock = threading.Lock()
            self.pose_of_stamp = OrderedDict()    # stamp -> pose index
            self.poses = []                       # index -> T_camera_object
            self.images = {k: OrderedDict() for k in ("rgb", "preview", "heatmap")}
            self.grasps = {}                      # pose index -> (stamp, T_camera_grasp)
            self.modes = OrderedDict()            # stamp -> marker text ("object_pose conf 0.83" / "no grasp")
            self.processed = {}                   # pose index -> frames the grasp node finished
            self.max_processed = -1
            self.first_processed = {}             # pose index -> monotonic time of its first processed frame
            self.grasp_arrival = {}               # pose index -> monotonic time its grasp arrived
            self.K = None
            self.camera_node = camera_node
            self.advancing = False
            qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
            self.create_subscription(PoseStamped, "sim/object_pose", self._on_object_pose, qos)
            self.create_subscription(PoseStamped, "grasp/pose", self._on_grasp, qos)
            self.create_subscription(MarkerArray, "grasp/markers", self._on_markers, qos)
            self.create_subscription(CameraInfo, "camera/color/camera_info", self._on_info, qos)
            for key, topic in (("rgb", "camera/color/image_raw"), ("preview", "descriptors/preview"),
                               ("heatmap", "grasp/heatmap")):
                self.create_subscription(Image, topic, lambda m, k=key: self._on_image(k, m), qos)

        @staticmethod
        def stamp(msg) -> int:
            return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

        def _remember(self, table, key, value):
            table[key] = value
            while len(table) > keep:
                table.popitem(last=False)

        def _on_info(self, msg):
            if self.K is None:
                self.K = camera_info_to_K(msg)

        def _on_object_pose(self, msg):
            T = _pose_matrix(msg)
            with self.lock:
                if not self.poses or not np.allclose(self.poses[-1], T, atol=1e-6):
                    self.poses.append(T)
                    self.advancing = False
                self.pose_of_stamp[self.stamp(msg)] = len(self.poses) - 1
                while len(self.pose_of_stamp) > 10 * keep:
                    self.pose_of_stamp.popitem(last=False)

        def _on_image(self, key, msg):
            img = image_to_numpy(msg)
            with self.lock:
                self._remember(self.images[key], self.stamp(msg), img)
                if key == "heatmap":
                    index = self.pose_of_stamp.get(self.stamp(msg))
                    if index is not None:
                        self.processed[index] = self.processed.get(index, 0) + 1
                        self.first_processed.setdefault(index, time.monotonic())
                        self.max_processed = max(self.max_processed, index)

        def _on_markers(self, msg):
            texts = [m.text for m in msg.markers if m.text]
            if texts and msg.markers:
                with self.lock:
                    self._remember(self.modes, self.stamp(msg.markers[0]), texts[0])

        def _on_grasp(self, msg):
            stamp = self.stamp(msg)
            with self.lock:
                index = self.pose_of_stamp.get(stamp)
                if index is not None and index not in self.grasps:
                    self.grasps[index] = (stamp, _pose_matrix(msg))
                    self.grasp_arrival[index] = time.monotonic()

        def finished(self, index: int, settle: float = 0.5) -> bool:
            """Pose ``index`` is done: its grasp and that frame's heatmap arrived, or a frame of it was processed
            ``settle`` s ago without a grasp, or a later pose was processed already."""
            if self.max_processed > index:
                return True
            if index in self.grasps:  # wait for that frame's heatmap and markers (other topics), at most 2 s
                stamp = self.grasps[index][0]
                return (stamp in self.images["heatmap"] and stamp in self.modes) or \
                    time.monotonic() - self.grasp_arrival[index] > 2.0
            first = self.first_processed.get(index)
            return first is not None and time.monotonic() - first > settle

        def next_pose(self) -> None:
            """Ask the sim camera for one new object pose at its next frame (call with ``lock`` held)."""
            if self.camera_node is not None and not self.advancing:
                self.advancing = True
                self.camera_node.request_new_pose()

    return PipelineObserver()


def _isolate_ros_domain() -> None:
    """Own DDS domain (pid based) and localhost discovery, unless the user chose a domain."""
    if "ROS_DOMAIN_ID" not in os.environ:
        os.environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() * 13) % 100)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def _pipeline_params(s: DemoSettings) -> Path:
    """config/grasp.yaml with the demo's sim camera settings (image size of the dataset, seeded poses)."""
    import yaml

    from dense_descriptor_grasp import bringup

    base = Path(bringup.default_share_dir()) / "config" / "grasp.yaml"
    params = yaml.safe_load(base.read_text())
    cam = params["sim_camera_node"]["ros__parameters"]
    cam.update(width=s.width, height=s.height, seed=s.pose_seed, pose_period=HOLD_POSE, rate=float(s.camera_rate))
    path = s.path(s.out) / "pipeline_params.yaml"
    atomic_write_text(path, f"# written by the demo from {base}\n" + yaml.safe_dump(params, sort_keys=False))
    return path


def step_pipeline(s: DemoSettings) -> dict:
    """Start the bringup's nodes in this process and record a grasp for each of ``s.poses`` object poses."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor

    from dense_descriptor_grasp import bringup
    from dense_descriptor_grasp.sim.grasp_sim import object_keypoints

    part_object = object_keypoints(OBJECT)[s.part]
    ref_path = s.path(s.model_dir) / f"reference_{s.part}.npz"
    params = _pipeline_params(s)
    values = bringup.parse_arguments([f"model:={s.checkpoint}", f"reference:={ref_path}", "use_sim_camera:=true",
                                      f"device:={s.device}", f"params_file:={params}"])
    _isolate_ros_domain()
    timeout = s.pipeline_timeout or 60.0 + 30.0 * s.poses
    log(f"{_step('pipeline')}: bringup model:={s.checkpoint} reference:={ref_path} use_sim_camera:=true "
        f"params_file:={params} (in this process, ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}); "
        f"{s.poses} object poses (seed {s.pose_seed}), each held until the pipeline has processed it")
    context = Context()
    rclpy.init(context=context)
    nodes, observer, executor = [], None, None
    rows = []
    try:
        nodes = bringup.start_nodes(values, context=context)
        camera = next((n for n in nodes if n.get_name() == "sim_camera_node"), None)
        observer = _make_observer(context, camera)
        executor = MultiThreadedExecutor(context=context)
        for node in nodes + [observer]:
            executor.add_node(node)
        t0 = time.monotonic()
        reported = 0
        last_note = t0
        while reported < s.poses:
            executor.spin_once(timeout_sec=0.05)
            with observer.lock:
                while reported < s.poses and reported < len(observer.poses) and observer.finished(reported):
                    rows.append(_report_pose(s, observer, reported, part_object))
                    reported += 1
                    if reported < s.poses and len(observer.poses) <= reported:
                        observer.next_pose()
            now = time.monotonic()
            if now - t0 > timeout:
                log(f"{_step('pipeline')}: timeout after {timeout:.0f} s with {reported}/{s.poses} poses done")
                break
            if now - last_note > 20.0:
                last_note = now
                log(f"{_step('pipeline')}: ... waiting (pose {len(observer.poses)} on the camera, grasp node processed "
                    f"frames up to pose {observer.max_processed + 1})")
        for i in range(reported, s.poses):
            rows.append({"pose": i + 1, "error_mm": None, "mode": "none", "frames": 0, "note": "not reached"})
    finally:
        everything = nodes + ([observer] if observer is not None else [])
        if executor is not None:
            for node in everything:
                executor.remove_node(node)
            executor.shutdown()
        for node in everything:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return {"rows": rows}


def _report_pose(s: DemoSettings, observer, index: int, part_object) -> dict:
    """Print one pose's line and save its pictures; returns the row (error_mm None when no grasp)."""
    T_co = observer.poses[index]
    true = T_co[:3, :3] @ part_object + T_co[:3, 3]
    frames = observer.processed.get(index, 0)
    row = {"pose": index + 1, "true_mm": np.round(true * 1000, 1).tolist(), "frames": frames}
    stamp = None
    if index in observer.grasps:
        stamp, T_cg = observer.grasps[index]
        err = part_error_mm(T_cg[:3, 3], T_co, part_object)
        text = observer.modes.get(stamp, "")
        mode = text.split()[0] if text else "?"
        row.update(grasp_mm=np.round(T_cg[:3, 3] * 1000, 1).tolist(), error_mm=round(err, 2), mode=mode,
                   marker=text)
        log(f"{_num('pipeline')} pose {index + 1:2d}/{s.poses}: grasp at {_fmt(T_cg[:3, 3])} mm, true '{s.part}' "
            f"at {_fmt(true)} mm (camera frame) -> error {err:6.1f} mm [{text}]")
    else:
        row.update(error_mm=None, mode="none")
        log(f"{_num('pipeline')} pose {index + 1:2d}/{s.poses}: no grasp published ({frames} frame(s) of this pose "
            f"processed); true '{s.part}' at {_fmt(true)} mm")
    if stamp is None:  # no grasp: the newest frame of this pose that went through the whole pipeline
        stamps = [t for t, i in observer.pose_of_stamp.items() if i == index and t in observer.images["heatmap"]]
        stamp = stamps[-1] if stamps else None
    if stamp is not None:
        row["pictures"] = _save_pictures(s, observer, index, stamp, true, T_cg if index in observer.grasps else None)
    return row


def _fmt(p) -> str:
    return "(" + ", ".join(f"{v * 1000:6.1f}" for v in p) + ")"


def _save_pictures(s: DemoSettings, observer, index: int, stamp: int, true, T_cg) -> list:
    import cv2

    from dense_descriptor_grasp.geometry.camera import project

    out = s.path(s.out)
    saved = []
    for key, name in (("preview", "descriptors"), ("heatmap", "heatmap")):
        img = observer.images[key].get(stamp)
        if img is not None:
            saved.append(str(_atomic_write_png(out / f"pose_{index + 1:02d}_{name}.png", img)))
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
        saved.append(str(_atomic_write_png(out / f"pose_{index + 1:02d}_grasp.png", img)))
    return saved


# ---------------------------------------------------------------------------------------------- 6. pictures
def step_pictures(s: DemoSettings, rows: list, semantic: dict | None) -> dict:
    """results.json (the poses, the semantic-point evaluation, the summary line) and grasps.png (the grasp pictures
    side by side)."""
    import cv2

    out = s.path(s.out)
    line = summary_line(rows, s.part, semantic)
    atomic_write_text(out / "results.json", json.dumps({
        "object": OBJECT, "part": s.part, "preset": s.preset, "checkpoint": str(s.checkpoint),
        "semantic_evaluation": semantic, "rows": rows, "summary": line}, indent=1))
    tiles = [cv2.imread(str(out / f"pose_{r['pose']:02d}_grasp.png"))[:, :, ::-1] for r in rows
             if (out / f"pose_{r['pose']:02d}_grasp.png").is_file()]
    if tiles:
        h, w = tiles[0].shape[:2]
        cols = min(5, len(tiles))
        grid = np.zeros((h * math.ceil(len(tiles) / cols), w * cols, 3), np.uint8)
        for k, tile in enumerate(tiles):
            r, c = divmod(k, cols)
            grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = cv2.resize(tile, (w, h))
        _atomic_write_png(out / "grasps.png", grid)
    log(f"{_step('pictures')}: {out}/pose_NN_{{descriptors,heatmap,grasp}}.png, "
        f"{'grasps.png, ' if tiles else ''}results.json; {s.eval_dir}/semantic_matches.png")
    return {"results": str(out / "results.json"), "summary": line}


# ---------------------------------------------------------------------------------------------- command line
def get_args_parser() -> argparse.ArgumentParser:
    d = DemoSettings()
    p = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny datasets, a few training steps, 2 poses, own folders (*_quick; for tests)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=argparse.SUPPRESS,
                   help=f"training recipe (training/presets.py; default {d.preset}): clutter = NT-Xent with "
                        "off-object negatives on two-view pairs, paper = the paper's keypoint task on augmentation "
                        "pairs, ntxent = the Dense Object Nets baseline (two-view pairs, no off-object negatives), "
                        "paper_stride32 = the paper's keypoint task on the paper's own network (no decoder)")
    p.add_argument("--method", choices=sorted(METHOD_ALIASES), default=argparse.SUPPRESS,
                   help="deprecated alias of --preset: keypoint = paper, ntxent = ntxent")
    p.add_argument("--train-minutes", type=float, default=None,
                   help=f"wall-clock training budget in minutes (default {d.train_minutes}; --quick: a few steps)")
    p.add_argument("--poses", type=int, default=None, help=f"object poses to grasp (default {d.poses}; --quick: 2)")
    p.add_argument("--device", default=d.device, help="torch device (cpu | cuda[:i])")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch threads for training (default 1: two threads spin against any other job on a 2-core "
                        "machine, 5 s instead of 0.5 s per step measured here)")
    p.add_argument("--part", default=d.part, help="named duck part to grasp (sim.grasp_sim object registry)")
    p.add_argument("--root", default=".", help="folder that holds data/, models/ and outputs/")
    p.add_argument("--stop-after", choices=STEPS[:-1], default=None, help="stop after this step")
    return p


def settings_from_args(args) -> DemoSettings:
    if args.threads < 1:
        raise SystemExit(f"demo: --threads must be >= 1, got {args.threads}")
    s = DemoSettings(root=Path(args.root), device=args.device, part=args.part, threads=args.threads)
    preset, method = getattr(args, "preset", None), getattr(args, "method", None)
    if method is not None:
        alias = METHOD_ALIASES[method]
        if preset is not None and preset != alias:
            raise ValueError(f"--method {method} (deprecated) means --preset {alias}, which contradicts --preset "
                             f"{preset}; give --preset only")
        preset = alias
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"--preset: unknown preset {preset!r}; known presets: {sorted(PRESETS)}")
        s.preset = preset
    if args.quick:
        s.dataset, s.eval_dataset = "data/demo_duck_clutter_quick", "data/demo_duck_eval_quick"
        s.model_dir, s.out = "models/demo_quick", "outputs/demo_quick"
        s.views, s.views_per_scene, s.eval_views, s.eval_views_per_scene = 12, 3, 8, 2
        s.distractors_per_scene = (0, 1)
        s.width, s.height = 96, 72
        s.max_steps, s.train_minutes, s.checkpoint_every = 2, 5.0, 2
        s.poses = 2
        s.tensorboard, s.split, s.surface_points, s.quick = False, None, 3, True
    if args.train_minutes is not None:
        if not args.train_minutes > 0:
            raise ValueError(f"--train-minutes must be > 0, got {args.train_minutes}")
        s.train_minutes = float(args.train_minutes)
    if args.poses is not None:
        if args.poses < 1:
            raise ValueError(f"--poses must be >= 1, got {args.poses}")
        s.poses = int(args.poses)
    return s


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        s = settings_from_args(args)
    except ValueError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "method", None) is not None:
        print(f"demo: --method is deprecated; --method {args.method} = --preset {s.preset}", file=sys.stderr)
    import platform

    log(f"{'quick ' if s.quick else ''}demo in {s.root.resolve()} on {platform.machine()} {os.cpu_count()} CPUs, "
        f"device {s.device}, preset {s.preset!r}")
    times = {}
    results = {}
    steps = [("dataset", lambda: step_dataset(s)), ("train", lambda: step_train(s)),
             ("evaluate", lambda: step_evaluate(s)), ("reference", lambda: step_reference(s)),
             ("pipeline", lambda: step_pipeline(s)),
             ("pictures", lambda: step_pictures(s, results["pipeline"]["rows"], results["evaluate"]))]
    for name, fn in steps:
        t0 = time.perf_counter()
        try:
            results[name] = fn()
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            print(f"demo: step {name} failed: {exc}", file=sys.stderr)
            return 1
        times[name] = time.perf_counter() - t0
        log(f"step {name} took {times[name]:.1f} s")
        if args.stop_after == name:
            return 0
    log("wall time per step: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    log(f"for scale: a grasp at the {OBJECT}'s centre (mean of its named parts) would be "
        f"{centre_error_mm(s.part):.0f} mm from '{s.part}' whatever the pose")
    print(results["pictures"]["summary"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
