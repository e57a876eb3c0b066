"""Capture pipeline quality on simulated captures (issue 14): masks, camera poses, correspondences, and a model
trained on the captured dataset against one trained on the renderer's truth for the same views.

    python -m benchmarks.capture_quality                                   # the README's table (about 30 min)
    python -m benchmarks.capture_quality --captures duck:0 --views 12 --train-minutes 0 --name capture_quick

Part A, per capture ``OBJECT:SEED``: ``capture.simulate`` orbits a camera around the object on a textured table
with the documented RGB-D noise model (``capture/noise.py``) and writes the folder a camera tool would
(``capture/importer.py``'s layout, no poses); the folder is read back with ``read_capture_folder`` and
``capture.build.build_dataset`` runs the user's pipeline on it (support plane + DBSCAN masks, RGB-D odometry +
pose graph, TSDF fusion, ray-cast depth and masks). Measured against the simulator's truth
(``build.compare_with_truth``): camera pose error after aligning the first camera (mm, degrees), IoU of the
segmentation masks (before fusion) and of the dataset's ray-cast masks, and the error of the multi-view
correspondences the dataset makes (px, every ordered view pair).

Part B (``--train-minutes M > 0``): the first capture's views are written twice, once as the pipeline built them
(``captured``) and once with the renderer's truth for the same colour images (true depth, masks, camera and
object poses: ``truth``); ``train_model --preset P`` (``--preset``, default ``clutter_rgbd``, the demo's) trains on each for M minutes (two processes side by
side, one torch thread each, 160x120 input); both checkpoints and the two floors are evaluated with the
semantic-point evaluation on held-out captures (``--eval-captures``: other seeds = other object poses and orbits,
the sensor's noisy depth, the true masks and poses) of the same object.

Writes ``benchmarks/results/<name>.{json,md,png}`` (the PNG: a capture's segmentation masks against the truth,
and the fused object from four viewpoints).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS_DIR, atomic_write_json, machine_description, machine_line, markdown_table, save_figure

NAME = "capture_quality"


def parse_capture(text: str):
    """``"duck:0"`` -> ``("duck", 0)``."""
    name, _, seed = text.partition(":")
    if not name or not seed.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"capture must be OBJECT:SEED (e.g. duck:0), got {text!r}")
    return name, int(seed)


def simulate(obj: str, seed: int, args):
    from dense_descriptor_grasp.capture.simulate import OrbitConfig, simulate_capture

    return simulate_capture(obj, OrbitConfig(views=args.views, width=args.width, height=args.height), seed=seed)


def truth_views(capture, out_dir: str, scene_id: str, depth: str = "true") -> str:
    """Write a simulated capture as a dataset with the renderer's truth (true masks, camera and object poses; depth
    ``"true"`` = noise-free or ``"sensor"`` = the noisy frames' depth); the colour images are the frames'."""
    from dense_descriptor_grasp.data.dataset_format import atomic_write_json as write_json, view_complete, write_view

    objects = [{"name": capture.object_name, "mask_value": 1, "T_world_object": capture.T_world_object.tolist(),
                "role": "target", "scale": 1.0}]
    for f, d, m in zip(capture.frames, capture.true_depths, capture.true_masks):
        vid = f"{scene_id}_{f.name}"
        if view_complete(out_dir, vid):
            continue
        camera = {"K": f.K.tolist(), "T_world_camera": f.T_world_camera.tolist(), "scene_id": scene_id,
                  "objects": objects, "target": capture.object_name}
        write_view(out_dir, vid, f.rgb, d if depth == "true" else f.depth, m.astype(np.uint8), camera)
    write_json(os.path.join(out_dir, "manifest.json"), {"format": "dense_descriptor_grasp.rgbd", "format_version": 1,
                                                        "objects": [capture.object_name], "complete": True})
    return out_dir


def pipeline_quality(obj: str, seed: int, args, work: Path) -> dict:
    """Part A for one capture: simulate, write, read back, build, compare with the truth."""
    from dense_descriptor_grasp.capture.build import BuildConfig, build_dataset, compare_with_truth
    from dense_descriptor_grasp.capture.importer import read_capture_folder
    from dense_descriptor_grasp.capture.masks import mask_iou
    from dense_descriptor_grasp.capture.simulate import write_simulated_capture

    folder, dataset = work / f"capture_{obj}_{seed}", work / f"dataset_{obj}_{seed}"
    for p in (folder, dataset):
        shutil.rmtree(p, ignore_errors=True)
    t0 = time.perf_counter()
    capture = simulate(obj, seed, args)
    write_simulated_capture(capture, str(folder))
    t_sim = time.perf_counter() - t0
    frames = read_capture_folder(str(folder))
    assert all(f.T_world_camera is None for f in frames)      # the pipeline must estimate them
    t0 = time.perf_counter()
    result = build_dataset(frames, str(dataset), config=BuildConfig(object_name=obj), progress=not args.no_progress)
    t_build = time.perf_counter() - t0
    cmp = compare_with_truth(str(dataset), str(folder))
    seg = [mask_iou(m, t) if m is not None else 0.0 for m, t in zip(result.input_masks, capture.true_masks)]
    corr = cmp["correspondences"]
    return {
        "object": obj, "seed": seed, "views": cmp["views"], "size": [args.width, args.height],
        "pose_translation_mm": cmp["pose_translation_mm"], "pose_rotation_deg": cmp["pose_rotation_deg"],
        "segmentation_iou": {"median": float(np.median(seg)), "min": float(np.min(seg)),
                             "failed_views": int(sum(m is None for m in result.input_masks))},
        "dataset_mask_iou": cmp["mask_iou"],
        "correspondences": corr,
        "seconds": {"simulate": round(t_sim, 1), "build": round(t_build, 1),
                    **{k: round(v, 1) for k, v in result.timings.items()}},
        "folders": {"capture": str(folder), "dataset": str(dataset)},
        "_capture": capture, "_result": result,
    }


def _corr_median(corr: dict):
    for key in ("median_px", "median"):
        if key in corr:
            return corr[key]
    return None


def train_side_by_side(datasets: dict, args, work: Path) -> dict:
    """``train_model --preset args.preset`` on each dataset for ``args.train_minutes`` (parallel processes)."""
    procs, runs = {}, {}
    for label, data in datasets.items():
        out = work / f"run_{label}"
        cmd = [sys.executable, "-m", "dense_descriptor_grasp.training.train", "--preset", args.preset,
               "--dataset", str(data), "--out", str(out), "--steps", "100000", "--max-minutes", str(args.train_minutes),
               "--threads", str(args.threads), "--set", "data.image_size=[120, 160]", "--set", "data.split=null",
               "--set", "train.tensorboard=false", "--set", f"train.seed={args.seed}"]
        # an interrupted benchmark resumes its runs: the budget counts every run of the folder (train_model)
        cmd += ["--resume", "auto"] if (out / "last.pt").is_file() else ["--overwrite"]
        log = open(work / f"run_{label}.log", "w")
        procs[label] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, cmd)
        runs[label] = out
    for label, (p, log, cmd) in procs.items():
        rc = p.wait()
        log.close()
        if rc != 0:
            raise RuntimeError(f"training on {label} failed (exit {rc}); log: {work / f'run_{label}.log'}\n"
                               + " ".join(cmd))
    return {k: v / "last.pt" for k, v in runs.items()}


def model_quality(train_capture: dict, args, work: Path) -> dict:
    """Part B: captured vs truth dataset of the same views, evaluated on held-out captures."""
    import torch

    from dense_descriptor_grasp.evaluation.semantic import semantic_point_evaluation
    from dense_descriptor_grasp.model.checkpoint import load_model

    obj = train_capture["object"]
    truth_dir = work / "dataset_truth"
    shutil.rmtree(truth_dir, ignore_errors=True)
    truth_views(train_capture["_capture"], str(truth_dir), "capture")
    eval_dir = work / "eval_captures"
    shutil.rmtree(eval_dir, ignore_errors=True)
    for name, seed in args.eval_captures:
        if name != obj:
            raise ValueError(f"--eval-captures: {name}:{seed} is another object than the training capture ({obj})")
        truth_views(simulate(name, seed, args), str(eval_dir), f"{name}_{seed}", depth="sensor")
    t0 = time.perf_counter()
    ckpts = train_side_by_side({"captured": train_capture["folders"]["dataset"], "truth": truth_dir}, args, work)
    t_train = time.perf_counter() - t0
    torch.set_num_threads(args.threads)
    models = {f"trained on the {k} dataset": load_model(str(p)) for k, p in ckpts.items()}
    steps = {k: int((m.checkpoint_info or {}).get("step", -1)) for k, m in models.items()}
    report = semantic_point_evaluation(models, str(eval_dir), object_name=obj, input_size="train",
                                       out_dir=work / "semantic", progress=not args.no_progress)
    rows = {}
    for name, r in report["methods"].items():
        rows[name] = {k: r.get(k) for k in ("matches", "median_px", "pck_3", "pck_5", "pck_10", "median_mm",
                                            "within_10mm")}
        rows[name]["steps"] = steps.get(name)
    return {"train_minutes": args.train_minutes, "preset": args.preset, "train_seconds_wall": round(t_train, 1),
            "methods": rows,
            "eval_captures": [f"{n}:{s}" for n, s in args.eval_captures], "eval_views": report["dataset"]["num_views"],
            "semantic_report": str(work / "semantic" / "semantic_report.json")}


def _shade(normals: np.ndarray, hit: np.ndarray, direction: np.ndarray) -> np.ndarray:
    light = np.clip(np.abs(normals @ direction), 0, 1)
    img = np.where(hit, 0.25 + 0.75 * light, 1.0)
    return np.repeat(img[..., None], 3, axis=-1)


def plot(first: dict, path: Path) -> Path:
    """A capture's segmentation masks (green) against the truth (red outline) and the fused object, 4 views."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import open3d as o3d

    from dense_descriptor_grasp.capture.fusion import camera_rays

    capture, result = first["_capture"], first["_result"]
    n = len(capture.frames)

    def crop(i):
        vv, uu = np.nonzero(capture.true_masks[i])
        h, w = capture.true_masks[i].shape
        if len(uu) == 0:
            return slice(0, h), slice(0, w)
        half = 0.8 * max(vv.max() - vv.min(), uu.max() - uu.min()) + 4
        cv_, cu = (vv.max() + vv.min()) / 2, (uu.max() + uu.min()) / 2
        return (slice(max(int(cv_ - half), 0), min(int(cv_ + half) + 1, h)),
                slice(max(int(cu - half), 0), min(int(cu + half) + 1, w)))

    picks = [int(round(x)) for x in np.linspace(0, n - 1, 5)[:4]]
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.2))
    for ax, i in zip(axes[0], picks):
        f = capture.frames[i]
        img = f.rgb.copy()
        seg = result.input_masks[i]
        if seg is not None:
            overlay = img.copy()
            overlay[seg] = (0.5 * overlay[seg] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
            img = overlay
        contours, _ = cv2.findContours(capture.true_masks[i].astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, contours, -1, (255, 0, 0), 1)
        ax.imshow(img[crop(i)])
        ax.set_title(f"view {f.name}", fontsize=8)
        ax.axis("off")
    mesh = result.model.object_mesh()
    mesh.compute_triangle_normals()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    for ax, i in zip(axes[1], picks):
        f = capture.frames[i]
        T = result.poses[i]
        h, w = f.height, f.width
        ans = scene.cast_rays(o3d.core.Tensor(camera_rays(f.K, T, w, h)))
        hit = np.isfinite(ans["t_hit"].numpy())
        normals = ans["primitive_normals"].numpy()
        ax.imshow(_shade(normals, hit, T[:3, 2])[crop(i)])
        ax.set_title(f"fused object, view {f.name}'s estimated pose", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"Simulated capture of the {first['object']} (seed {first['seed']}, {n} views, "
                 f"{first['size'][0]}x{first['size'][1]}, sensor noise).\nTop: the pipeline's segmentation (green) and the true "
                 "outline (red); bottom: the TSDF-fused object ray-cast from the estimated camera poses", fontsize=9)
    return save_figure(fig, path)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Capture pipeline quality (simulated captures)\n", f"`{report['command']}`\n",
             f"Machine: {machine_line(m)}; load average at the end {report['load_average_end']}.\n",
             "## The pipeline against the simulator's truth\n"]
    rows = []
    for c in report["captures"]:
        corr = c["correspondences"]
        rows.append([f"{c['object']}:{c['seed']}", c["views"],
                     f"{c['pose_translation_mm']['median']:.2f} ({c['pose_translation_mm']['max']:.2f})",
                     f"{c['pose_rotation_deg']['median']:.3f} ({c['pose_rotation_deg']['max']:.3f})",
                     f"{c['segmentation_iou']['median']:.3f} ({c['segmentation_iou']['min']:.3f})",
                     f"{c['dataset_mask_iou']['median']:.3f} ({c['dataset_mask_iou']['min']:.3f})",
                     f"{_corr_median(corr):.2f}" if _corr_median(corr) is not None else "n/a",
                     f"{c['seconds']['build']:.0f}"])
    lines.append(markdown_table(["capture", "views", "pose error mm, median (max)", "rotation deg, median (max)",
                                 "segmentation IoU, median (min)", "dataset mask IoU, median (min)",
                                 "correspondence error px, median", "build s"], rows))
    lines.append("Targets (issue 14): mask IoU median >= 0.9; pose error median <= 5 mm and <= 1 deg; "
                 "correspondence error median <= 2 px.\n")
    if report.get("training"):
        t = report["training"]
        lines.append(f"## A model trained on the captured dataset vs on the renderer's truth\n")
        lines.append(f"`train_model --preset {t.get('preset', 'clutter')}`, {t['train_minutes']} min each (side by side, one thread "
                     f"each), 160x120; held-out captures {', '.join(t['eval_captures'])} ({t['eval_views']} views, "
                     "the sensor's depth); semantic-point evaluation (named parts, whole image, reference from the "
                     "other capture).\n")
        rows = [[k, v.get("steps") if v.get("steps") is not None else "", v["matches"],
                 f"{v['median_px']:.1f}" if v["median_px"] is not None else "n/a",
                 f"{v['median_mm']:.1f}" if v["median_mm"] is not None else "n/a",
                 f"{v['pck_5']:.3f}" if v["pck_5"] is not None else "n/a",
                 f"{v['within_10mm']:.3f}" if v["within_10mm"] is not None else "n/a"]
                for k, v in t["methods"].items()]
        lines.append(markdown_table(["model", "steps", "matches", "median px", "median mm", "PCK@5",
                                     "within 10 mm"], rows))
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.capture_quality", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captures", nargs="+", type=parse_capture, default=[("duck", 0), ("duck", 1), ("mug", 2),
                                                                         ("teddy", 3)],
                   help="OBJECT:SEED per simulated capture (part A); the first one is trained on in part B")
    p.add_argument("--views", type=int, default=36, help="views per capture (a closed orbit)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--train-minutes", type=float, default=10.0, help="part B's training budget per model (0 = skip)")
    p.add_argument("--eval-captures", nargs="+", type=parse_capture, default=[("duck", 10), ("duck", 11),
                                                                              ("duck", 12)],
                   help="held-out captures of the trained object for part B")
    p.add_argument("--preset", default="clutter_rgbd",
                   help="part B's training recipe (training/presets.py; default the demo's clutter_rgbd)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training process and evaluation")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--work", default="outputs/capture_quality", help="folder for captures, datasets and runs")
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder of the result files")
    p.add_argument("--name", default=NAME)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    report = {"command": "python -m benchmarks.capture_quality " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine_description(), "settings": {k: v for k, v in vars(args).items()}}
    report["settings"]["captures"] = [f"{n}:{s}" for n, s in args.captures]
    report["settings"]["eval_captures"] = [f"{n}:{s}" for n, s in args.eval_captures]
    captures = []
    for obj, seed in args.captures:
        print(f"[capture_quality] {obj}:{seed}: simulate, build, compare", flush=True)
        c = pipeline_quality(obj, seed, args, work)
        captures.append(c)
        print(f"[capture_quality] {obj}:{seed}: pose {c['pose_translation_mm']['median']:.2f} mm / "
              f"{c['pose_rotation_deg']['median']:.3f} deg, segmentation IoU {c['segmentation_iou']['median']:.3f}, "
              f"correspondences {_corr_median(c['correspondences'])} px", flush=True)
    report["captures"] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in captures]
    if args.train_minutes > 0:
        print(f"[capture_quality] training on {args.captures[0][0]}:{args.captures[0][1]} captured vs truth, "
              f"{args.train_minutes} min each", flush=True)
        report["training"] = model_quality(captures[0], args, work)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    files = {"json": str(out / f"{args.name}.json"), "md": str(out / f"{args.name}.md"),
             "png": str(plot(captures[0], out / f"{args.name}.png"))}
    report["files"] = files
    atomic_write_json(files["json"], report, strict=True)
    text = markdown(report)
    from dense_descriptor_grasp.atomic_io import atomic_write_text
    atomic_write_text(files["md"], text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
