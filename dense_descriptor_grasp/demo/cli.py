"""The demo's command line: options -> :class:`DemoSettings`, then the six steps in order with their times."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dense_descriptor_grasp.training.presets import PRESETS
from dense_descriptor_grasp.training.threads import threads_arg

from .dataset import step_dataset
from .evaluate import step_evaluate
from .pictures import step_pictures
from .pipeline import step_pipeline
from .reference import step_reference
from .settings import METHOD_ALIASES, OBJECT, STEPS, DemoSettings, log
from .summary import centre_error_mm
from .train import step_train


DESCRIPTION = "``make demo`` / ``demo``: the whole job end to end on a CPU, every step skipped when its result exists."


def get_args_parser() -> argparse.ArgumentParser:
    d = DemoSettings()
    p = argparse.ArgumentParser(prog="demo", description=DESCRIPTION,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny datasets, a few training steps, 2 poses, own folders (*_quick; for tests)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=argparse.SUPPRESS,
                   help=f"training recipe (training/presets.py; default {d.preset}): clutter_rgbd = NT-Xent "
                        "with off-object negatives on mixed pairs, the network reading RGB and the depth image's "
                        "normals; clutter = the same on RGB alone, paper = the paper's keypoint task on augmentation "
                        "pairs, ntxent = the Dense Object Nets baseline (two-view pairs, no off-object negatives), "
                        "paper_stride32 = the paper's keypoint task on the paper's own network (no decoder)")
    p.add_argument("--method", choices=sorted(METHOD_ALIASES), default=argparse.SUPPRESS,
                   help="deprecated alias of --preset: keypoint = paper, ntxent = ntxent")
    p.add_argument("--train-minutes", type=float, default=None,
                   help=f"wall-clock training budget in minutes (default {d.train_minutes}; --quick: a few steps)")
    p.add_argument("--poses", type=int, default=None, help=f"object poses to grasp (default {d.poses}; --quick: 2)")
    p.add_argument("--device", default=d.device, help="torch device (cpu | cuda[:i])")
    p.add_argument("--threads", type=threads_arg, default=d.threads, metavar="N|auto",
                   help="torch threads for training (default auto: one thread or all cores, whichever measures "
                        "faster, checked again while it trains; on a quiet 2-core machine two threads make 1.3x the "
                        "steps, beside another job they are several times slower than one)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=d.precision,
                   help="train.precision (default auto: bfloat16 where the CPU has AVX512-BF16 / AMX or the GPU has "
                        "bfloat16, about 1.4x the steps in the same minutes on this project's AMD EPYC; else fp32)")
    p.add_argument("--part", default=d.part, help="named duck part to grasp (the object registry, objects.py)")
    p.add_argument("--root", default=".", help="folder that holds data/, models/ and outputs/")
    p.add_argument("--stop-after", choices=STEPS[:-1], default=None, help="stop after this step")
    return p


def settings_from_args(args) -> DemoSettings:
    if args.threads != "auto" and args.threads < 1:
        raise SystemExit(f"demo: --threads must be >= 1, got {args.threads}")
    s = DemoSettings(root=Path(args.root), device=args.device, part=args.part, threads=args.threads,
                     precision=args.precision)
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
