"""ROS 2 pipeline throughput and latency (issue 6 targets), over real rclpy + Fast DDS in one process.

```
python -m benchmarks.node_pipeline                       # 320x240, D=16, untrained network unless --model
python -m benchmarks.node_pipeline --model models/model.pt --reference models/reference.npz --seconds 30
python -m benchmarks.node_pipeline --quick               # 160x120, 8 s (smoke run)
```

The machine is shared, so the two fps figures are measured in alternation (``--rounds``): the camera pauses, the
bare trunk is timed, the camera resumes and the pipeline is timed; a change of load hits both alike.

1. **trunk fps**: the bare ResNet-34 trunk (``model.trunk``) on one image of the size, batch 1, median time.
2. **descriptor_node fps**: sim_camera_node publishes faster than inference (``--camera-rate``); descriptor sets
   published per second by descriptor_node (only the newest frame is processed, so this is its real capacity),
   with the grasp node out of the executor ("alone") and in it ("full pipeline": the grasp node, its heatmap and
   the DDS copies of the descriptor image share the same 2 cores). Target: alone >= 0.8 x trunk fps.
3. **grasp_node latency**: per frame, from the moment a complete descriptor set (image, depth, camera info) is in
   the node until pose and markers are published (decode, matching, depth, pose). Measured in the pipeline (the
   descriptor node's inference shares the 2 cores and the GIL) and **alone**: the camera stopped and the last
   descriptor set re-published at 10 Hz with fresh stamps. Target: <= 20 ms (median, alone).

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
    from sensor_msgs.msg import CameraInfo, Image

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
    sim_node, desc_node, grasp_node = nodes
    captured = {}
    trunk_times, latencies, poses, process_times = [], [], 0, []
    counts = {"descriptor_node alone": [0, 0.0], "full pipeline": [0, 0.0]}   # frames, seconds
    phase_s = args.seconds / args.rounds / 2.0
    try:
        print(f"[node_pipeline] warm-up {args.warmup:.0f} s, then {args.rounds} rounds of (trunk alone, "
              f"descriptor node alone {phase_s:.0f} s, full pipeline {phase_s:.0f} s) ...", flush=True)
        time.sleep(args.warmup)
        for _ in range(args.rounds):
            # trunk alone: camera paused, so the descriptor node idles once its last frame is done
            sim_node.timer.cancel()
            busy = desc_node.last_inference_s
            time.sleep(max(2.0 * busy, 0.5) if busy == busy else 1.0)
            trunk_times.append(1.0 / trunk_fps(model, size, repeats=args.trunk_repeats))
            for phase in counts:
                if phase == "descriptor_node alone":
                    executor.remove_node(grasp_node)
                else:
                    executor.add_node(grasp_node)
                sim_node.timer.reset()
                time.sleep(1.0)
                n0, p0, t0 = desc_node.frames, grasp_node.poses_published, time.monotonic()
                grasp_node.latencies.clear()
                desc_node.process_times.clear()
                time.sleep(phase_s)
                counts[phase][0] += desc_node.frames - n0
                counts[phase][1] += time.monotonic() - t0
                if phase == "full pipeline":
                    process_times += list(desc_node.process_times)
                    poses += grasp_node.poses_published - p0
                    latencies += list(grasp_node.latencies)
        for topic, mtype in (("descriptors/image", Image), ("descriptors/depth", Image),
                             ("descriptors/camera_info", CameraInfo)):
            probe.create_subscription(mtype, topic, lambda m, t=topic: captured.__setitem__(t, m), reliable_qos(1))
        deadline = time.monotonic() + 20.0
        while (len(captured) < 3 or len(last) < 3) and time.monotonic() < deadline:
            time.sleep(0.2)
        images = {k: image_to_numpy(v) for k, v in last.items()}
        # grasp node alone: camera stopped, the last descriptor set re-published with fresh stamps at 10 Hz
        sim_node.timer.cancel()
        time.sleep(2.0)
        grasp_node.latencies.clear()
        pubs = {t: probe.create_publisher(type(m), t, reliable_qos(1)) for t, m in captured.items()}
        time.sleep(1.0)
        end = time.monotonic() + args.replay_seconds
        while time.monotonic() < end and len(captured) == 3:
            stamp = probe.get_clock().now().to_msg()
            for t, m in captured.items():
                m.header.stamp = stamp
                pubs[t].publish(m)
            time.sleep(0.1)
        time.sleep(0.5)
        alone = list(grasp_node.latencies)
    finally:
        executor.shutdown(timeout_sec=2.0)
        for n in nodes + [probe]:
            n.destroy_node()
        rclpy.try_shutdown(context=context)
        tmp.cleanup()
    fps_trunk = 1.0 / statistics.median(trunk_times)
    fps_node = counts["full pipeline"][0] / counts["full pipeline"][1]
    fps_alone = counts["descriptor_node alone"][0] / counts["descriptor_node alone"][1]
    lat_ms = np.array(latencies) * 1000.0
    alone_ms = np.array(alone) * 1000.0
    return {
        "size": f"{args.width}x{args.height}", "descriptor_dim": int(model.descriptor_dim),
        "model": str(args.model or "untrained (random init)"),
        "seconds": round(sum(c[1] for c in counts.values()), 1),
        "trunk_fps": round(fps_trunk, 2), "descriptor_node_alone_fps": round(fps_alone, 2),
        "ratio_alone": round(fps_alone / fps_trunk, 3), "descriptor_node_fps": round(fps_node, 2),
        "ratio": round(fps_node / fps_trunk, 3), "descriptor_sets": counts["full pipeline"][0],
        "descriptor_node_inference_ms_median": round(1000 * float(np.median([p[0] for p in process_times])), 1)
        if process_times else None,
        "descriptor_node_frame_ms_median": round(1000 * float(np.median([p[1] for p in process_times])), 1)
        if process_times else None,
        "grasp_latency_ms_median": round(float(np.median(lat_ms)), 2) if len(lat_ms) else None,
        "grasp_latency_ms_p95": round(float(np.percentile(lat_ms, 95)), 2) if len(lat_ms) else None,
        "grasp_frames": len(latencies), "poses_published": poses,
        "grasp_alone_ms_median": round(float(np.median(alone_ms)), 2) if len(alone_ms) else None,
        "grasp_alone_ms_p95": round(float(np.percentile(alone_ms, 95)), 2) if len(alone_ms) else None,
        "grasp_alone_frames": len(alone),
        "targets": {"descriptor_node alone >= 0.8 x trunk": bool(fps_alone >= 0.8 * fps_trunk),
                    "grasp_node alone median <= 20 ms": bool(len(alone_ms) and np.median(alone_ms) <= 20.0)},
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
    rows = [[report["size"], report["descriptor_dim"], report["trunk_fps"], report["descriptor_node_alone_fps"],
             report["ratio_alone"], report["descriptor_node_fps"], report["ratio"], report["grasp_latency_ms_median"], report["grasp_latency_ms_p95"],
             report["grasp_alone_ms_median"], report["grasp_alone_ms_p95"], report["poses_published"]]]
    md = ("# ROS 2 pipeline throughput and latency\n\n" + machine_line(report["machine"]) + "\n\n"
          + f"Model: {report['model']}; {report['seconds']} s timed.\n\n"
          + markdown_table(["size", "D", "trunk fps", "descriptor_node alone fps", "ratio", "in full pipeline fps",
                            "ratio", "grasp ms in pipeline (median)",
                            "(p95)", "grasp ms alone (median)", "(p95)", "poses"], rows)
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
    p.add_argument("--rounds", type=int, default=3, help="alternations of trunk-alone and pipeline timing")
    p.add_argument("--trunk-repeats", type=int, default=5, help="timed trunk runs per round")
    p.add_argument("--replay-seconds", type=float, default=8.0, help="grasp node alone on re-published sets")
    p.add_argument("--quick", action="store_true", help="160x120, 8 s")
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.quick:
        args.width, args.height, args.seconds, args.warmup, args.rounds, args.replay_seconds = 160, 120, 6.0, 3.0, 2, 4.0
    report = run(args)
    write_outputs(report, Path(args.output_dir) if args.output_dir else RESULTS_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
