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
   descriptor node's inference shares the 2 cores) and **alone**: the camera stopped and the last descriptor set
   re-published at 10 Hz with fresh stamps. Target: <= 20 ms (median, alone).

sim_camera_node and descriptor_node run on one MultiThreadedExecutor in this process; grasp_node runs in its own
process (as ``grasp.launch.py`` starts it) and reports its latency through its ``stats_period`` log on /rosout. Writes ``benchmarks/results/node_pipeline.{json,md}`` and ``node_pipeline.png`` (colour image,
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

from ._common import (RESULTS_DIR, atomic_write_json, atomic_write_text, machine_description, machine_line,
                      markdown_table)


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
    """Reference of 5 object pixels spread over the sim camera's first view (same seed and size as the node)."""
    from dense_descriptor_grasp.grasping.reference import interior_samples, save_reference
    from dense_descriptor_grasp.make_reference import build_reference
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCamera

    sim = SimCamera(["duck"], size[1], size[0], seed=seed, backgrounds=("textured",))
    view = sim.new_pose()
    sim.close()
    pixels = interior_samples(view.mask, 5, margin=2, depth=view.depth)
    ref = build_reference(model, view.rgb, view.depth, view.K, pixels, source="sim view")
    save_reference(path, ref)
    return path


def parse_stats(text: str):
    """(frames, median ms, p95 ms) from a grasp_node 'stats:' log line, or None."""
    import re

    m = re.search(r"stats: (\d+) frames .* latency median ([0-9.]+) ms, p95 ([0-9.]+) ms", text)
    return (int(m.group(1)), float(m.group(2)), float(m.group(3))) if m else None


def run(args) -> dict:
    import subprocess

    import rclpy
    import torch
    from rcl_interfaces.msg import Log
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.image_msgs import image_to_numpy
    from dense_descriptor_grasp.model import DenseDescriptorNet, load_model, save_checkpoint
    from dense_descriptor_grasp.nodes.common import reliable_qos
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
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
    sim_node = SimCameraNode(context=context, parameter_overrides=P({
        "width": args.width, "height": args.height, "rate": args.camera_rate, "pose_period": args.pose_period}))
    desc_node = DescriptorNode(context=context, parameter_overrides=P({"model_path": str(model_path), "num_threads": args.threads}))
    probe = rclpy.create_node("benchmark_probe", context=context)
    stats, last, captured = [], {}, {}
    probe.create_subscription(Log, "/rosout", lambda m: stats.append(parse_stats(m.msg)) if m.name.endswith(
        "grasp_node") and parse_stats(m.msg) else None,
        QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE))
    for n in (sim_node, desc_node, probe):
        executor.add_node(n)
    threading.Thread(target=executor.spin, daemon=True).start()
    grasp_proc = None
    trunk_times, process_times = [], []
    counts = {"descriptor_node alone": [0, 0.0], "full pipeline": [0, 0.0]}   # frames, seconds
    phase_s = args.seconds / args.rounds / 2.0

    def count(phase, seconds):
        n0, t0 = desc_node.frames, time.monotonic()
        desc_node.process_times.clear()
        time.sleep(seconds)
        counts[phase][0] += desc_node.frames - n0
        counts[phase][1] += time.monotonic() - t0
        process_times.extend(desc_node.process_times)

    try:
        print(f"[node_pipeline] warm-up {args.warmup:.0f} s; {args.rounds} rounds of (trunk alone, descriptor node "
              f"{phase_s:.0f} s); grasp_node process; full pipeline {args.seconds / 2:.0f} s; grasp node on "
              f"re-published sets {args.replay_seconds:.0f} s", flush=True)
        time.sleep(args.warmup)
        for _ in range(args.rounds):
            sim_node.timer.cancel()   # trunk alone: the camera pauses, the descriptor node idles
            busy = desc_node.last_inference_s
            time.sleep(max(2.0 * busy, 0.5) if busy == busy else 1.0)  # busy is NaN before the first frame
            trunk_times.append(1.0 / trunk_fps(model, size, repeats=args.trunk_repeats))
            sim_node.timer.reset()
            time.sleep(1.0)
            count("descriptor_node alone", phase_s)
        # the grasp node in its own process, as the launch file starts it
        grasp_proc = subprocess.Popen(
            [sys.executable, "-m", "dense_descriptor_grasp.nodes.grasp_node", "--ros-args",
             "-p", f"reference_path:={reference}", "-p", f"model_path:={model_path}", "-p", "stats_period:=2.0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not stats and time.monotonic() < deadline:
            time.sleep(0.5)
        stats.clear()
        count("full pipeline", args.seconds / 2.0)
        in_pipeline = [s for s in stats if s]
        def keep(topic, msg):   # the last few messages per topic, by stamp, to pick one consistent set
            by_stamp = last.setdefault(topic, {})
            by_stamp[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
            for old_stamp in sorted(by_stamp)[:-20]:
                del by_stamp[old_stamp]

        for topic in ("camera/color/image_raw", "descriptors/preview", "grasp/heatmap"):
            probe.create_subscription(Image, topic, lambda m, t=topic: keep(t, m), reliable_qos(5))
        for topic, mtype in (("descriptors/image", Image), ("descriptors/depth", Image),
                             ("descriptors/camera_info", CameraInfo)):
            probe.create_subscription(mtype, topic, lambda m, t=topic: captured.__setitem__(t, m), reliable_qos(1))
        def common_stamp():
            stamps = [set(v) for v in list(last.values())]
            shared = set.intersection(*stamps) if len(stamps) == 3 else set()
            return max(shared) if shared else None

        deadline = time.monotonic() + 30.0
        while (len(captured) < 3 or common_stamp() is None) and time.monotonic() < deadline:
            time.sleep(0.2)
        stamp = common_stamp()
        images = {k: image_to_numpy(v[stamp]) for k, v in last.items()} if stamp else {}
        # grasp node alone: camera stopped, the last descriptor set re-published with fresh stamps at 10 Hz
        sim_node.timer.cancel()
        time.sleep(max(2.0 * desc_node.last_inference_s, 1.0) + 2.5)
        pubs = {t: probe.create_publisher(type(m), t, reliable_qos(1)) for t, m in captured.items()}
        time.sleep(1.0)
        stats.clear()
        end = time.monotonic() + args.replay_seconds
        while time.monotonic() < end and len(captured) == 3:
            stamp = probe.get_clock().now().to_msg()
            for t, m in captured.items():
                m.header.stamp = stamp
                pubs[t].publish(m)
            time.sleep(0.1)
        time.sleep(2.5)
        alone = [s for s in stats if s]
    finally:
        if grasp_proc is not None:
            grasp_proc.terminate()
            try:
                grasp_proc.wait(10)
            except subprocess.TimeoutExpired:
                grasp_proc.kill()
        executor.shutdown(timeout_sec=2.0)
        for n in (sim_node, desc_node, probe):
            n.destroy_node()
        rclpy.try_shutdown(context=context)
        tmp.cleanup()
    fps_trunk = 1.0 / statistics.median(trunk_times)
    fps_node = counts["full pipeline"][0] / counts["full pipeline"][1]
    fps_alone = counts["descriptor_node alone"][0] / counts["descriptor_node alone"][1]

    def weighted(windows, k):
        """Frame-weighted mean of the per-window medians / p95 (windows of ~2 s from the node's stats log)."""
        n = sum(w[0] for w in windows)
        return round(sum(w[0] * w[k] for w in windows) / n, 2) if n else None

    return {
        "size": f"{args.width}x{args.height}", "descriptor_dim": int(model.descriptor_dim),
        "model": str(args.model or "untrained (random init)"),
        "trunk_fps": round(fps_trunk, 2), "descriptor_node_alone_fps": round(fps_alone, 2),
        "ratio_alone": round(fps_alone / fps_trunk, 3), "descriptor_node_fps": round(fps_node, 2),
        "ratio": round(fps_node / fps_trunk, 3),
        "descriptor_node_inference_ms_median": round(1000 * float(np.median([p[0] for p in process_times])), 1)
        if process_times else None,
        "descriptor_node_frame_ms_median": round(1000 * float(np.median([p[1] for p in process_times])), 1)
        if process_times else None,
        "grasp_latency_ms_median": weighted(in_pipeline, 1), "grasp_latency_ms_p95": weighted(in_pipeline, 2),
        "grasp_frames": sum(w[0] for w in in_pipeline),
        "grasp_alone_ms_median": weighted(alone, 1), "grasp_alone_ms_p95": weighted(alone, 2),
        "grasp_alone_frames": sum(w[0] for w in alone),
        "targets": {"descriptor_node alone >= 0.8 x trunk": bool(fps_alone >= 0.8 * fps_trunk),
                    "grasp_node alone median <= 20 ms": bool(alone and weighted(alone, 1) <= 20.0)},
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
             report["grasp_alone_ms_median"], report["grasp_alone_ms_p95"]]]
    md = ("# ROS 2 pipeline throughput and latency\n\n" + machine_line(report["machine"]) + "\n\n"
          + f"Model: {report['model']}.\n\n"
          + markdown_table(["size", "D", "trunk fps", "descriptor_node alone fps", "ratio", "in full pipeline fps",
                            "ratio", "grasp ms in pipeline (median)",
                            "(p95)", "grasp ms alone (median)", "(p95)"], rows)
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
    p.add_argument("--pose-period", type=float, default=1000.0,
                   help="seconds between new object poses (default: the reference view's pose throughout)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3, help="alternations of trunk-alone and pipeline timing")
    p.add_argument("--trunk-repeats", type=int, default=5, help="timed trunk runs per round")
    p.add_argument("--replay-seconds", type=float, default=8.0, help="grasp node alone on re-published sets")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the descriptor node (its num_threads parameter, default as in grasp.yaml; "
                        "0 = torch default)")
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
