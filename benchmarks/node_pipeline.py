"""ROS 2 pipeline throughput and latency (issue 6 targets), over real rclpy + Fast DDS in one process.

```
python -m benchmarks.node_pipeline                       # 320x240, D=16, untrained network unless --model
python -m benchmarks.node_pipeline --model models/model.pt --reference models/reference.npz --seconds 30
python -m benchmarks.node_pipeline --quick               # 160x120, 8 s (smoke run)
```

1. **trunk fps**: the bare ResNet-34 trunk (``model.trunk``) on one image of the size, batch 1, median of timed runs.
2. **descriptor_node fps**: sim_camera_node publishes faster than inference (``--camera-rate``); descriptor sets
   published per second by descriptor_node (only the newest frame is processed, so this is its real capacity).
   Target: >= 0.8 x trunk fps.
3. **grasp_node latency**: per frame, from the moment a complete descriptor set (image, depth, camera info) is in
   the node until pose and markers are published (decode, matching, depth, pose). Target: <= 20 ms (median).

Both nodes run on one MultiThreadedExecutor, as in the pip ``bringup``; the 2 cores are shared with the sim
camera and DDS. Writes ``benchmarks/results/node_pipeline.{json,md}`` and ``node_pipeline.png`` (colour image,
descriptor preview and match heatmap as published by the running pipeline).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ._common import RESULTS_DIR, atomic_write_json, atomic_write_text, machine_description, machine_line, markdown_table


def trunk_fps(model, size, repeats: int = 15) -> float:
    import torch

    x = torch.rand(1, 3, size[0], size[1])
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            t = time.perf_counter()
            model.trunk(x)
            if i >= 2:
                times.append(time.perf_counter() - t)
    return 1.0 / statistics.median(times)


def sim_reference(model, size, path, seed=0):
    """Reference of 5 object pixels of the sim camera's first view (same seed and size as the node)."""
    import cv2

    from dense_descriptor_grasp.grasping.reference import save_reference
    from dense_descriptor_grasp.make_reference import build_reference
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCamera

    sim = SimCamera(["duck"], size[1], size[0], seed=seed, backgrounds=("textured",))
    view = sim.new_pose()
    sim.close()
    inner = cv2.erode((view.mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    vs, us = np.nonzero(inner & (view.depth > 0))
    idx = np.linspace(0, len(us) - 1, 5).astype(int)
    ref = build_reference(model, view.rgb, view.depth, view.K, np.stack([us[idx], vs[idx]], 1), source="sim view")
    save_reference(path, ref)
    return path


def run(args) -> dict:
    import rclpy
    import torch
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from dense_descriptor_grasp.image_msgs import image_to_numpy
    from dense_descriptor_grasp.model import DenseDescriptorNet, load_model, save_checkpoint
    from dense_descriptor_grasp.nodes.common import reliable_qos
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    size = (args.height, args.width)
    tmp = tempfile.TemporaryDirectory(prefix="node_pipeline_")
    model_path = args.model
    if model_path is None:
        torch.manual_seed(0)
        model_path = save_checkpoint(Path(tmp.name) / "untrained.pt", DenseDescriptorNet(descriptor_dim=args.dim))
    model = load_model(model_path)
    reference = args.reference or sim_reference(model, size, Path(tmp.name) / "reference.npz")
    print(f"[node_pipeline] trunk at {args.width}x{args.height} ...", flush=True)
    fps_trunk = trunk_fps(model, size)

    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    P = lambda d: [Parameter(k, value=v) for k, v in d.items()]  # noqa: E731
    nodes = [
        SimCameraNode(context=context, parameter_overrides=P({"width": args.width, "height": args.height,
                                                              "rate": args.camera_rate, "pose_period": 1e3})),
        DescriptorNode(context=context, parameter_overrides=P({"model_path": str(model_path)})),
        GraspNode(context=context, parameter_overrides=P({"reference_path": str(reference),
                                                          "model_path": str(model_path)})),
    ]
    probe = rclpy.create_node("benchmark_probe", context=context)
    last = {}
    for topic in ("camera/color/image_raw", "descriptors/preview", "grasp/heatmap"):
        probe.create_subscription(Image, topic, lambda m, t=topic: last.__setitem__(t, m), reliable_qos(1))
    for n in nodes + [probe]:
        executor.add_node(n)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    desc_node, grasp_node = nodes[1], nodes[2]
    try:
        print(f"[node_pipeline] pipeline warm-up {args.warmup:.0f} s, then {args.seconds:.0f} s timed ...", flush=True)
        time.sleep(args.warmup)
        n0, lat0, t0 = desc_node.frames, len(grasp_node.latencies), time.monotonic()
        grasp_node.latencies.clear()
        poses0 = grasp_node.poses_published
        time.sleep(args.seconds)
        elapsed = time.monotonic() - t0
        frames = desc_node.frames - n0
        latencies = list(grasp_node.latencies)
        poses = grasp_node.poses_published - poses0
        images = {k: image_to_numpy(v) for k, v in last.items()}
    finally:
        executor.shutdown(timeout_sec=2.0)
        for n in nodes + [probe]:
            n.destroy_node()
        rclpy.try_shutdown(context=context)
        tmp.cleanup()
    del lat0
    fps_node = frames / elapsed
    lat_ms = np.array(latencies) * 1000.0
    return {
        "size": f"{args.width}x{args.height}", "descriptor_dim": int(model.descriptor_dim),
        "model": str(args.model or "untrained (random init)"), "seconds": round(elapsed, 1),
        "trunk_fps": round(fps_trunk, 2), "descriptor_node_fps": round(fps_node, 2),
        "ratio": round(fps_node / fps_trunk, 3), "descriptor_sets": frames,
        "grasp_latency_ms_median": round(float(np.median(lat_ms)), 2) if len(lat_ms) else None,
        "grasp_latency_ms_p95": round(float(np.percentile(lat_ms, 95)), 2) if len(lat_ms) else None,
        "grasp_frames": len(latencies), "poses_published": poses,
        "targets": {"descriptor_node >= 0.8 x trunk": bool(fps_node >= 0.8 * fps_trunk),
                    "grasp_node median <= 20 ms": bool(len(lat_ms) and np.median(lat_ms) <= 20.0)},
        "machine": machine_description(),
        "_images": images,
    }


def write_outputs(report: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._common import save_figure

    images = report.pop("_images")
    atomic_write_json(out_dir / "node_pipeline.json", report)
    rows = [[report["size"], report["descriptor_dim"], report["trunk_fps"], report["descriptor_node_fps"],
             report["ratio"], report["grasp_latency_ms_median"], report["grasp_latency_ms_p95"],
             report["poses_published"]]]
    md = ("# ROS 2 pipeline throughput and latency\n\n" + machine_line(report["machine"]) + "\n\n"
          + f"Model: {report['model']}; {report['seconds']} s timed.\n\n"
          + markdown_table(["size", "D", "trunk fps", "descriptor_node fps", "ratio", "grasp ms (median)",
                            "grasp ms (p95)", "poses"], rows)
          + "\nTargets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in report["targets"].items()) + "\n")
    atomic_write_text(out_dir / "node_pipeline.md", md)
    titles = {"camera/color/image_raw": "camera/color/image_raw", "descriptors/preview": "descriptors/preview",
              "grasp/heatmap": "grasp/heatmap"}
    shown = [k for k in titles if k in images]
    if shown:
        fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.3))
        for ax, k in zip(np.atleast_1d(axes), shown):
            ax.imshow(images[k])
            ax.set_title(titles[k], fontsize=10)
            ax.axis("off")
        save_figure(fig, out_dir / "node_pipeline.png")
        plt.close(fig)
    print(md)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.node_pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: an untrained network, D = --dim)")
    p.add_argument("--reference", default=None, help="reference file (default: made from the sim camera's view)")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--camera-rate", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--quick", action="store_true", help="160x120, 8 s")
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.quick:
        args.width, args.height, args.seconds, args.warmup = 160, 120, 8.0, 3.0
    report = run(args)
    write_outputs(report, Path(args.output_dir) if args.output_dir else RESULTS_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
