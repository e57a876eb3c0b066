"""ROS 2 pipeline throughput and latency (issue 6 targets), over real rclpy + Fast DDS in one process.

```
python -m benchmarks.node_pipeline                       # 320x240, D=16, untrained network unless --model
python -m benchmarks.node_pipeline --decoder fpn --output-stride 4 --name node_pipeline_fpn  # with the decoder
python -m benchmarks.node_pipeline --model models/model.pt --reference models/reference.npz --seconds 30
python -m benchmarks.node_pipeline --quick               # 160x120, 8 s (smoke run)
python -m benchmarks.node_pipeline --skip-grasp ...      # descriptor node vs bare forward only (no grasp node)
```

The machine is shared, so the fps figures are measured in alternation (``--rounds``): the camera pauses, the
bare forward passes are timed, the camera resumes and the pipeline is timed; a change of load hits both alike.

1. **bare forward fps**, on one image of the size, batch 1, median time, the steps interleaved in each repeat (the
   profile of where a node frame's time goes):
   - ``trunk``: the ResNet-34 layers alone (``model.trunk``, already normalised input);
   - ``network``: the bare network forward ``model.features(rgb)``: input normalisation, trunk, the decoder
     (``--decoder fpn``) and the 1x1 projection, i.e. the low-resolution ``(1, D, H/s, W/s)`` descriptors;
   - ``descriptors``: ``model.descriptors(rgb)``: ``network`` + bilinear upsampling to ``H x W`` + L2
     normalisation over D;
   - ``descriptor_image``: ``model.inference.descriptor_image`` on a uint8 image, the node's own inference call
     (``descriptors`` + uint8 -> float conversion + the numpy array).
2. **descriptor_node fps**: sim_camera_node publishes faster than inference (``--camera-rate``); descriptor sets
   published per second by descriptor_node (only the newest frame is processed, so this is its real capacity),
   with the grasp node out of the executor ("alone") and in it ("full pipeline": the grasp node, its heatmap and
   the DDS copies of the descriptor image share the same 2 cores). Target: alone >= 0.8 x the bare network
   forward's fps (``network``; with decoder none that is the trunk + a 1x1 conv, the issue 6 target "0.8 x
   trunk" is reported too). The node's own median inference time and whole-frame time (decode, inference,
   preview, four publications) complete the profile, with the CPU time of the node's inference worker thread per
   published set and the CPU cores used by the process's other threads (executor: camera timer, the node's
   subscriptions and time sync; DDS) while the node runs alone: a worker CPU time per set close to the bare
   forward with a longer wall time means the frame waited for a CPU, not that the node's path is slower.
3. **grasp_node latency**: per frame, from the moment a complete descriptor set (image, depth, camera info) is in
   the node until pose and markers are published (decode, matching, depth, pose). Measured in the pipeline (the
   descriptor node's inference shares the 2 cores) and **alone**: the camera stopped and the last descriptor set
   re-published at 10 Hz with fresh stamps. Target: <= 20 ms (median, alone).

sim_camera_node and descriptor_node run on one executor in this process (the pip bringup's layout; ``--executor``
``single`` (bringup's, default) or ``multi`` (rclpy's MultiThreadedExecutor, to compare);
``--camera-process``: the camera in its own process, as ``grasp.launch.py`` starts it, paused with SIGSTOP);
grasp_node runs in its own process (as ``grasp.launch.py`` starts it) and reports its latency through its
``stats_period`` log on /rosout.
``--skip-grasp`` leaves out the grasp node (items 2 "full pipeline" and 3), e.g. for a short smoke run.
Without ``--model`` the network is untrained (random init, seed 0): ``--decoder``, ``--output-stride``,
``--decoder-channels``, ``--input`` and ``--dim`` choose it; speed does not depend on the weights.
Writes ``benchmarks/results/<name>.{json,md}`` and ``<name>.png`` (``--name``, default ``node_pipeline``; colour
image, descriptor preview and match heatmap as published by the running pipeline).
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


FORWARD_STEPS = ("trunk", "network", "descriptors", "descriptor_image")


def forward_times(model, size, repeats: int = 15, warmup: int = 2) -> dict:
    """Median seconds per image of each of ``FORWARD_STEPS`` (see the module docstring), interleaved per repeat."""
    import torch

    from dense_descriptor_grasp.model.inference import descriptor_image, needs_depth

    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, size[0], size[1], generator=g)
    rgb8 = (rgb[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    # a depth-input model (input 'rgbd') also gets a depth image (a tilted plane) and K; "network" then includes
    # its geometry channels, "trunk" is the bare trunk on the stacked input
    depth = 0.4 + 0.1 * torch.linspace(0, 1, size[0])[:, None].expand(size[0], size[1]).contiguous()
    K = torch.tensor([[size[1] * 0.8, 0.0, size[1] / 2 - 0.5], [0.0, size[1] * 0.8, size[0] / 2 - 0.5], [0, 0, 1.0]])
    geo = {"depth": depth[None], "K": K[None]} if needs_depth(model) else {}
    x = model.network_input(rgb, geo.get("depth"), geo.get("K"))
    steps = {"trunk": lambda: model.trunk(x), "network": lambda: model.features(rgb, **geo),
             "descriptors": lambda: model.descriptors(rgb, **geo),
             "descriptor_image": lambda: descriptor_image(model, rgb8, depth=depth.numpy(), K=K.numpy())}
    times = {k: [] for k in FORWARD_STEPS}
    with torch.inference_mode():
        for i in range(repeats + warmup):
            for k in FORWARD_STEPS:
                t = time.perf_counter()
                steps[k]()
                if i >= warmup:
                    times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def sim_reference(model, size, path, seed=0):
    """Reference of 5 object pixels spread over the sim camera's first view (same seed and size as the node)."""
    from dense_descriptor_grasp.grasping.reference import interior_samples, save_reference
    from dense_descriptor_grasp.grasping.make_reference import build_reference
    from dense_descriptor_grasp.sim.cameras import SimCamera

    sim = SimCamera(["duck"], size[1], size[0], seed=seed, backgrounds=("textured",))
    view = sim.new_pose()
    sim.close()
    pixels = interior_samples(view.mask, 5, margin=2, depth=view.depth)
    ref = build_reference(model, view.rgb, view.depth, view.K, pixels, source="sim view")
    save_reference(path, ref)
    return path


class _CameraTimer:
    """The in-process sim camera, paused by cancelling its timer."""

    def __init__(self, node):
        self.node = node

    def pause(self):
        self.node.timer.cancel()

    def resume(self):
        self.node.timer.reset()

    def close(self):
        pass


class _CameraProcess:
    """sim_camera_node in its own process (--camera-process), paused with SIGSTOP and resumed with SIGCONT."""

    def __init__(self, proc):
        self.proc = proc

    def pause(self):
        import signal

        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        import signal

        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class _SkipGrasp(Exception):
    """--skip-grasp: leave the measurement after the descriptor-node rounds."""


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
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.image_msgs import image_to_numpy
    from dense_descriptor_grasp.model import DenseDescriptorNet, load_model, save_checkpoint
    from dense_descriptor_grasp.nodes.common import pipeline_executor, reliable_qos
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    size = (args.height, args.width)
    tmp = tempfile.TemporaryDirectory(prefix="node_pipeline_")
    model_path = args.model
    if model_path is None:
        torch.manual_seed(0)
        model_path = save_checkpoint(Path(tmp.name) / "untrained.pt", DenseDescriptorNet(
            descriptor_dim=args.dim, decoder=args.decoder, output_stride=args.output_stride,
            decoder_channels=args.decoder_channels, input=args.input))
    model = load_model(model_path)
    if args.skip_grasp:
        reference = None
    else:
        reference = args.reference or sim_reference(model, size, Path(tmp.name) / "reference.npz")

    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = Context()
    rclpy.init(context=context)
    executor = pipeline_executor(context, args.executor)
    P = lambda d: [Parameter(k, value=v) for k, v in d.items()]  # noqa: E731
    camera_params = {"width": args.width, "height": args.height, "rate": args.camera_rate,
                     "pose_period": args.pose_period}
    if args.camera_process:   # its own process, as grasp.launch.py starts it; paused with SIGSTOP / SIGCONT
        camera = _CameraProcess(subprocess.Popen(
            [sys.executable, "-m", "dense_descriptor_grasp.nodes.sim_camera_node", "--ros-args"]
            + [a for k, v in camera_params.items() for a in ("-p", f"{k}:={float(v) if k in ('rate', 'pose_period') else v}")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sim_node = None
    else:                     # in this process, on the descriptor node's executor (the pip bringup's layout)
        sim_node = SimCameraNode(context=context, parameter_overrides=P(camera_params))
        camera = _CameraTimer(sim_node)
    desc_node = DescriptorNode(context=context, parameter_overrides=P({"model_path": str(model_path), "num_threads": args.threads}))
    probe = rclpy.create_node("benchmark_probe", context=context)
    machine = machine_description()  # after the descriptor node has set torch's thread count (its num_threads)
    stats, last, captured = [], {}, {}
    probe.create_subscription(Log, "/rosout", lambda m: stats.append(parse_stats(m.msg)) if m.name.endswith(
        "grasp_node") and parse_stats(m.msg) else None,
        QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE))
    for n in (sim_node, desc_node, probe):
        if n is not None:
            executor.add_node(n)
    threading.Thread(target=executor.spin, daemon=True).start()
    grasp_proc = None
    forward = {k: [] for k in FORWARD_STEPS}
    counts = {"descriptor_node alone": [0, 0.0], "full pipeline": [0, 0.0]}   # frames, seconds
    phase_s = args.seconds / args.rounds / 2.0

    phases = {k: {"process": [], "periods": [], "sets": 0, "fps_per_window": [], "cpu_worker": 0.0, "cpu_other": 0.0}
              for k in counts}
    import psutil

    me = psutil.Process()

    def thread_cpu():
        """(CPU s of the descriptor node's inference worker thread, of every other thread of this process)."""
        worker_id = desc_node.worker._thread.native_id
        times = {t.id: t.user_time + t.system_time for t in me.threads()}
        w = times.pop(worker_id, 0.0)
        return w, sum(times.values())

    def count(phase, seconds):
        worker = desc_node.worker
        cpu0 = thread_cpu()
        n0, t0, sets0 = desc_node.frames, time.monotonic(), worker.processed + worker.dropped
        desc_node.process_times.clear()
        desc_node.frame_times.clear()
        time.sleep(seconds)
        n, dt = desc_node.frames - n0, time.monotonic() - t0
        counts[phase][0] += n
        counts[phase][1] += dt
        ph = phases[phase]
        ph["fps_per_window"].append(round(n / dt, 2))
        cpu1 = thread_cpu()
        ph["cpu_worker"] += cpu1[0] - cpu0[0]
        ph["cpu_other"] += cpu1[1] - cpu0[1]
        ph["sets"] += worker.processed + worker.dropped - sets0
        ph["process"].extend(desc_node.process_times)
        ends = list(desc_node.frame_times)
        ph["periods"].extend(e1 - e0 for e0, e1 in zip(ends, ends[1:]))  # between two published sets

    in_pipeline, alone, images = [], [], {}
    try:
        print(f"[node_pipeline] warm-up {args.warmup:.0f} s; {args.rounds} rounds of (bare forward alone, "
              f"descriptor node {phase_s:.0f} s)" + ("" if args.skip_grasp else
              f"; grasp_node process; full pipeline {args.seconds / 2:.0f} s; grasp node on "
              f"re-published sets {args.replay_seconds:.0f} s"), flush=True)
        deadline = time.monotonic() + 60.0   # a camera process needs a few seconds to start
        while desc_node.frames == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(args.warmup)
        for _ in range(args.rounds):
            camera.pause()   # bare forward alone: the camera pauses, the descriptor node idles
            busy = desc_node.last_inference_s
            time.sleep(max(2.0 * busy, 0.5) if busy == busy else 1.0)  # busy is NaN before the first frame
            for k, v in forward_times(model, size, repeats=args.trunk_repeats).items():
                forward[k].append(v)
            camera.resume()
            time.sleep(1.0)
            count("descriptor_node alone", phase_s)
        if args.skip_grasp:
            raise _SkipGrasp
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
        camera.pause()
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
    except _SkipGrasp:
        pass
    finally:
        if grasp_proc is not None:
            grasp_proc.terminate()
            try:
                grasp_proc.wait(10)
            except subprocess.TimeoutExpired:
                grasp_proc.kill()
        camera.close()
        executor.shutdown(timeout_sec=2.0)
        for n in (sim_node, desc_node, probe):
            if n is not None:
                n.destroy_node()
        rclpy.try_shutdown(context=context)
        tmp.cleanup()
    # per step: the median over rounds of each round's median time
    fps = {k: 1.0 / statistics.median(v) for k, v in forward.items()}
    fps_trunk, fps_network = fps["trunk"], fps["network"]
    fps_node = counts["full pipeline"][0] / counts["full pipeline"][1] if counts["full pipeline"][1] else None
    fps_alone = counts["descriptor_node alone"][0] / counts["descriptor_node alone"][1]
    r3 = lambda v: None if v is None else round(v, 3)  # noqa: E731
    med_ms = lambda v: round(1000 * float(np.median(v)), 1) if len(v) else None  # noqa: E731
    alone_phase = phases["descriptor_node alone"]

    def weighted(windows, k):
        """Frame-weighted mean of the per-window medians / p95 (windows of ~2 s from the node's stats log)."""
        n = sum(w[0] for w in windows)
        return round(sum(w[0] * w[k] for w in windows) / n, 2) if n else None

    cfg = model.config
    return {
        "command": "python -m benchmarks.node_pipeline" + (" " + " ".join(args.argv) if args.argv else ""),
        "size": f"{args.width}x{args.height}", "descriptor_dim": int(model.descriptor_dim),
        "decoder": cfg.get("decoder", "none"), "output_stride": int(cfg["output_stride"]),
        "decoder_channels": int(cfg.get("decoder_channels", 0)), "method": cfg["method"],
        "model": str(args.model or "untrained (random init)"), "rounds": args.rounds,
        "camera_rate": args.camera_rate, "camera": "own process" if args.camera_process else "in the descriptor node's process",
        "executor": args.executor,
        "forward_repeats_per_round": args.trunk_repeats, "torch_threads": args.threads,
        "forward_ms": {k: round(1000.0 / v, 1) for k, v in fps.items()},
        "forward_ms_per_round": {k: [round(1000.0 * t, 1) for t in v] for k, v in forward.items()},
        "trunk_fps": round(fps_trunk, 2), "network_fps": round(fps_network, 2),
        "descriptors_fps": round(fps["descriptors"], 2), "descriptor_image_fps": round(fps["descriptor_image"], 2),
        "descriptor_node_alone_fps": round(fps_alone, 2),
        "ratio_alone_network": round(fps_alone / fps_network, 3),
        "ratio_alone": round(fps_alone / fps_trunk, 3),
        "descriptor_node_fps": None if fps_node is None else round(fps_node, 2),
        "ratio": None if fps_node is None else r3(fps_node / fps_trunk),
        "ratio_network": None if fps_node is None else r3(fps_node / fps_network),
        "descriptor_node_inference_ms_median": med_ms([p[0] for p in alone_phase["process"]]),
        "descriptor_node_frame_ms_median": med_ms([p[1] for p in alone_phase["process"]]),
        "descriptor_node_period_ms_median": med_ms(alone_phase["periods"]),
        "descriptor_node_sets_per_s": round(alone_phase["sets"] / counts["descriptor_node alone"][1], 2),
        "descriptor_node_alone_fps_per_round": alone_phase["fps_per_window"],
        # CPU seconds per wall second while the node runs alone: its inference worker thread, and every other thread
        # of this process (executor: camera timer and the node's subscriptions / time sync; DDS; a camera process
        # is not counted); worker CPU ms per published set
        "cpu_cores_worker": round(alone_phase["cpu_worker"] / counts["descriptor_node alone"][1], 3),
        "cpu_cores_other_threads": round(alone_phase["cpu_other"] / counts["descriptor_node alone"][1], 3),
        "worker_cpu_ms_per_set": round(1000 * alone_phase["cpu_worker"] / counts["descriptor_node alone"][0], 1)
        if counts["descriptor_node alone"][0] else None,
        "in_pipeline": {"inference_ms_median": med_ms([p[0] for p in phases["full pipeline"]["process"]]),
                        "frame_ms_median": med_ms([p[1] for p in phases["full pipeline"]["process"]]),
                        "period_ms_median": med_ms(phases["full pipeline"]["periods"])},
        "grasp_latency_ms_median": weighted(in_pipeline, 1), "grasp_latency_ms_p95": weighted(in_pipeline, 2),
        "grasp_frames": sum(w[0] for w in in_pipeline),
        "grasp_alone_ms_median": weighted(alone, 1), "grasp_alone_ms_p95": weighted(alone, 2),
        "grasp_alone_frames": sum(w[0] for w in alone),
        "targets": {"descriptor_node alone >= 0.8 x bare network forward": bool(fps_alone >= 0.8 * fps_network),
                    "descriptor_node alone >= 0.8 x trunk": bool(fps_alone >= 0.8 * fps_trunk),
                    **({} if args.skip_grasp else
                       {"grasp_node alone median <= 20 ms": bool(alone and weighted(alone, 1) <= 20.0)})},
        "machine": machine,
        "machine_after": {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "_images": images,
    }


def write_outputs(report: dict, out_dir: Path, name: str = "node_pipeline") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._common import save_figure

    images = report.pop("_images")
    atomic_write_json(out_dir / f"{name}.json", report)
    f = lambda v: "-" if v is None else v  # noqa: E731
    decoder = report.get("decoder", "none")
    net = f"{decoder}, stride {report.get('output_stride')}" + (
        f", C={report.get('decoder_channels')}" if decoder != "none" else "")
    rows = [[report["size"], report["descriptor_dim"], net, report["trunk_fps"], report["network_fps"],
             report["descriptor_node_alone_fps"], report["ratio_alone_network"], report["ratio_alone"],
             f(report["descriptor_node_fps"]), f(report["ratio_network"]), f(report["grasp_latency_ms_median"]),
             f(report["grasp_latency_ms_p95"]), f(report["grasp_alone_ms_median"]), f(report["grasp_alone_ms_p95"])]]
    ms = report["forward_ms"]
    prof = [["trunk (`model.trunk`, normalised input)", ms["trunk"], ""],
            ["bare network forward (`model.features`: normalisation, trunk, decoder, 1x1 projection)", ms["network"],
             f"{ms['network'] - ms['trunk']:+.1f} (input normalisation, decoder, projection)"],
            ["`model.descriptors` (+ bilinear upsampling to full size + L2 normalisation over D)", ms["descriptors"],
             f"{ms['descriptors'] - ms['network']:+.1f}"],
            ["`descriptor_image` (+ uint8 -> float, numpy): the node's inference call, bench thread", ms["descriptor_image"],
             f"{ms['descriptor_image'] - ms['descriptors']:+.1f}"],
            ["descriptor_node: inference inside the running node (median)", f(report["descriptor_node_inference_ms_median"]), ""],
            ["descriptor_node: whole frame (decode, inference, preview, 4 publications; median)",
             f(report["descriptor_node_frame_ms_median"]),
             "" if report["descriptor_node_frame_ms_median"] is None or report["descriptor_node_inference_ms_median"] is None
             else f"{report['descriptor_node_frame_ms_median'] - report['descriptor_node_inference_ms_median']:+.1f} "
                  "(messages)"],
            ["descriptor_node: time between two published sets (median)",
             f(report.get("descriptor_node_period_ms_median")),
             "" if report.get("descriptor_node_period_ms_median") is None or report["descriptor_node_frame_ms_median"] is None
             else f"{report['descriptor_node_period_ms_median'] - report['descriptor_node_frame_ms_median']:+.1f} "
                  f"(worker idle: waiting for a set / the CPU; camera sets reaching the worker: "
                  f"{report.get('descriptor_node_sets_per_s')} / s)"],
            ["descriptor_node alone: 1 / fps (frame period)", round(1000.0 / report["descriptor_node_alone_fps"], 1)
             if report["descriptor_node_alone_fps"] else "-",
             f"fps per round: {report.get('descriptor_node_alone_fps_per_round')}"],
            ["descriptor_node: CPU time of its inference worker thread per published set", f(report.get("worker_cpu_ms_per_set")),
             f"CPU cores used while the node runs alone: worker {report.get('cpu_cores_worker')}, the process's other "
             f"threads (executor, DDS, in-process camera) {report.get('cpu_cores_other_threads')}"]]
    after = report.get("machine_after", {}).get("load_average_1_5_15")
    md = ("# ROS 2 pipeline throughput and latency\n\n"
          + (f"Command: `{report['command']}`  \n" if report.get("command") else "")
          + machine_line(report["machine"]) + (f"; load average at end {after}" if after else "") + "\n\n"
          + f"Model: {report['model']} ({report.get('method', '?')}, decoder {net}). Camera: sim_camera_node at "
          + f"{report.get('camera_rate')} Hz, {report.get('camera', 'in the descriptor node process')}; "
          + f"executor of the in-process nodes: {report.get('executor', 'multi')}.\n\n"
          + markdown_table(["size", "D", "decoder", "trunk fps", "bare network forward fps",
                            "descriptor_node alone fps", "ratio to network", "ratio to trunk", "in full pipeline fps",
                            "ratio to network", "grasp ms in pipeline (median)", "(p95)", "grasp ms alone (median)",
                            "(p95)"], rows)
          + f"\nWhere a frame's time goes (ms; bare steps interleaved, medians over {report.get('rounds')} rounds of "
          + f"{report.get('forward_repeats_per_round')} repeats, camera paused; node figures while it runs alone):\n\n"
          + markdown_table(["step", "ms", "added"], prof)
          + "\nTargets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in report["targets"].items()) + "\n")
    atomic_write_text(out_dir / f"{name}.md", md)
    titles = {"camera/color/image_raw": "camera/color/image_raw", "descriptors/preview": "descriptors/preview",
              "grasp/heatmap": "grasp/heatmap"}
    shown = [k for k in titles if k in images]
    if shown:
        fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.3))
        for ax, k in zip(np.atleast_1d(axes), shown):
            ax.imshow(images[k])
            ax.set_title(titles[k], fontsize=10)
            ax.axis("off")
        save_figure(fig, out_dir / f"{name}.png")
        plt.close(fig)
    print(md)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.node_pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: an untrained network, D = --dim)")
    p.add_argument("--reference", default=None, help="reference file (default: made from the sim camera's view)")
    p.add_argument("--dim", type=int, default=16, help="D of the untrained network (without --model)")
    p.add_argument("--decoder", choices=("none", "fpn"), default=None,
                   help="decoder of the untrained network (default none; with --model the checkpoint's)")
    p.add_argument("--output-stride", type=int, default=None,
                   help="output stride of the untrained network (default 32 for decoder none, 4 for fpn)")
    p.add_argument("--decoder-channels", type=int, default=128, help="C of the fpn decoder (untrained network)")
    p.add_argument("--input", choices=("rgb", "rgbd"), default="rgb",
                   help="what the untrained network reads: rgb, or rgbd (also the depth image's normals)")
    p.add_argument("--skip-grasp", action="store_true",
                   help="descriptor node vs bare forward only: no grasp node, full pipeline or replay phase")
    p.add_argument("--name", default="node_pipeline", help="output file stem (default node_pipeline)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--camera-rate", type=float, default=30.0)
    p.add_argument("--executor", choices=("single", "multi"), default="single",
                   help="executor of the in-process nodes: single (bringup's pipeline_executor) or multi "
                        "(rclpy's MultiThreadedExecutor, which busy-spins in rclpy 9.1)")
    p.add_argument("--camera-process", action="store_true",
                   help="run sim_camera_node in its own process (as grasp.launch.py does) instead of on this "
                        "process's executor next to the descriptor node (the pip bringup's layout, the default)")
    p.add_argument("--pose-period", type=float, default=1000.0,
                   help="seconds between new object poses (default: the reference view's pose throughout)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3, help="alternations of trunk-alone and pipeline timing")
    p.add_argument("--trunk-repeats", type=int, default=5,
                   help="timed runs of each bare forward step (trunk, network, ...) per round")
    p.add_argument("--replay-seconds", type=float, default=8.0, help="grasp node alone on re-published sets")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the descriptor node (its num_threads parameter, default as in grasp.yaml; "
                        "0 = torch default)")
    p.add_argument("--quick", action="store_true", help="160x120, 8 s")
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    return p


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.model is not None and (args.decoder is not None or args.output_stride is not None):
        parser.error("--decoder / --output-stride choose the untrained network; a --model checkpoint has its own")
    args.decoder = args.decoder or "none"
    if args.output_stride is None:
        args.output_stride = 32 if args.decoder == "none" else 4
    if args.quick:
        args.width, args.height, args.seconds, args.warmup, args.rounds, args.replay_seconds = 160, 120, 6.0, 3.0, 2, 4.0
    if args.rounds < 1 or args.trunk_repeats < 1 or args.seconds <= 0:
        parser.error("--rounds and --trunk-repeats must be >= 1 and --seconds > 0")
    report = run(args)
    write_outputs(report, Path(args.output_dir) if args.output_dir else RESULTS_DIR, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
