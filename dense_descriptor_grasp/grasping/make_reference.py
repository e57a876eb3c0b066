"""``make_reference``: reference descriptors of object parts from one RGB-D view, written with their 3D points.

    make_reference --model models/model.pt --dataset data/duck --view 0 --pixel 120,88 --pixel 150,60 \
        --pixel 170,95 --name head --name tail --name chest --output models/reference.npz
    make_reference --model m.pt --rgb view.png --depth depth.png --depth-scale 0.001 --K 300,300,160,120 \
        --pixel 120,88 --output ref.npz
    make_reference --model m.pt --dataset data/duck --view 3 --pick --output ref.npz   # click in a window

The descriptors are computed by ``model.inference.descriptor_image``, the function descriptor_node runs (same model,
input resize, output at the image size, L2-normalised), and sampled at the nearest pixel
(``model.inference.descriptors_at``), so the grasp node's matches compare like with like. The grasp sits on the
``--grasp-index`` reference (default 0) with the approach from its local surface normal.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from dense_descriptor_grasp.grasping.depth_at_match import near_depth_edge, point_at_match
from dense_descriptor_grasp.grasping.grasp_pose import APPROACH_MODES, grasp_pose_at
from dense_descriptor_grasp.grasping.reference import Reference, save_reference


OUTLINE_MARGIN_PX = 2   # references closer than this to a depth step get a warning (the evaluation's "interior": 2 px)


def build_reference(model, rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, pixels, names=None,
                    grasp_index: int = 0, input_size=None, approach: str = "surface_normal", depth_window: int = 5,
                    device: str = "cpu", source: str = "") -> Reference:
    """A :class:`Reference` for ``pixels`` (R, 2) (u, v) of one view: rgb (H, W, 3) uint8, depth (H, W) metres."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    h, w = depth.shape
    if rgb.shape[:2] != (h, w):
        raise ValueError(f"RGB {rgb.shape[1]}x{rgb.shape[0]} and depth {w}x{h} sizes differ")
    outside = [tuple(p) for p in pixels if not (0 <= p[0] <= w - 1 and 0 <= p[1] <= h - 1)]
    if outside:
        raise ValueError(f"pixels {outside} lie outside the {w}x{h} image")
    if not 0 <= grasp_index < len(pixels):
        raise ValueError(f"--grasp-index {grasp_index} outside 0..{len(pixels) - 1}")
    from dense_descriptor_grasp.model.inference import descriptor_image, descriptors_at  # torch: imported late

    descriptors = descriptors_at(descriptor_image(model, rgb, input_size, device=device, depth=depth, K=K), pixels)
    points = np.full((len(pixels), 3), np.nan)
    for i, uv in enumerate(pixels):
        point, sample = point_at_match(depth, K, uv, depth_window)
        if point is None:
            print(f"make_reference: warning: reference {i} at ({uv[0]:g}, {uv[1]:g}) has no depth ({sample.reason}); it is "
                  f"matched but not used for the 6-DoF pose", file=sys.stderr)
        else:
            points[i] = point
    if not np.isfinite(points[grasp_index]).all():
        raise ValueError(f"the grasp reference {grasp_index} at {tuple(pixels[grasp_index])} has no valid depth; "
                         "pick a pixel on the object with depth")
    grasp = grasp_pose_at(points[grasp_index], depth, K, pixels[grasp_index], approach)
    return Reference(str(getattr(model, "identity", "")), descriptors, pixels, points,
                     names=list(names) if names else [], method=getattr(model, "method", ""), normalized=True,
                     K=K, image_size=(h, w), T_ref_grasp=grasp.matrix, grasp_index=grasp_index, source=source)


def warn_about_outline_pixels(depth: np.ndarray, pixels, names=None) -> list:
    """Warn (stderr) about the user's reference pixels within ``OUTLINE_MARGIN_PX`` of a depth step behind them.

    depth (H, W) metres; pixels (R, 2) (u, v) inside the image. Such references are kept: a part may only be seen
    on the outline. Returns the indices warned about.
    """
    warned = []
    for i, uv in enumerate(np.asarray(pixels, dtype=np.float64).reshape(-1, 2)):
        if near_depth_edge(depth, uv, OUTLINE_MARGIN_PX):
            label = f" ('{names[i]}')" if names and i < len(names) else ""
            print(f"make_reference: warning: reference {i}{label} at ({uv[0]:g}, {uv[1]:g}) lies within "
                  f"{OUTLINE_MARGIN_PX} px of the object's outline (a depth step behind it); descriptors there also "
                  f"match other stretches of the outline, so a pixel {OUTLINE_MARGIN_PX}+ px inside the object is "
                  f"found more reliably (README, 'Why the beak tip fails')", file=sys.stderr)
            warned.append(i)
    return warned


def load_view(args):
    """(rgb uint8 (H, W, 3), depth metres (H, W), K (3, 3), source text) from --dataset/--view or files."""
    if args.dataset:
        from dense_descriptor_grasp.data.dataset import RGBDDataset

        ds = RGBDDataset(args.dataset, validate=False)
        view = str(args.view)
        if view in ds.view_ids:
            index = ds.index_of(view)
        else:
            try:
                index = int(view)
            except ValueError:
                raise ValueError(f"--view {view!r} is neither a view id nor an index of {args.dataset}") from None
            if not 0 <= index < len(ds):
                raise ValueError(f"--view {index} outside 0..{len(ds) - 1} of {args.dataset}")
        s = ds.load_numpy(index)
        return s["rgb"], s["depth"], np.asarray(s["K"], dtype=np.float64), f"dataset {args.dataset} view {s['view_id']}"
    import cv2

    if not (args.rgb and args.depth and args.K):
        raise ValueError("give --dataset and --view, or --rgb, --depth and --K")
    bgr = cv2.imread(args.rgb, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"--rgb {args.rgb}: not a readable image")
    if args.depth.endswith(".npy"):
        depth = np.load(args.depth).astype(np.float32)
    else:
        raw = cv2.imread(args.depth, cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 2:
            raise ValueError(f"--depth {args.depth}: expected a single-channel 16-bit PNG or a .npy in metres")
        depth = raw.astype(np.float32) * float(args.depth_scale)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    values = [float(v) for v in args.K.split(",")]
    if len(values) != 4:
        raise ValueError(f"--K expects fx,fy,cx,cy, got {args.K!r}")
    fx, fy, cx, cy = values
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    return bgr[:, :, ::-1].copy(), depth, K, f"files {args.rgb} + {args.depth}"


def pick_pixels(rgb: np.ndarray) -> list:
    """Click references in an OpenCV window (left click adds, right click removes the last, Enter/Esc ends)."""
    import cv2

    picked = []
    title = "make_reference: click parts, right click undo, Enter to finish"

    def on_mouse(event, u, v, *_):
        if event == cv2.EVENT_LBUTTONDOWN:
            picked.append((float(u), float(v)))
        elif event == cv2.EVENT_RBUTTONDOWN and picked:
            picked.pop()

    cv2.namedWindow(title)
    cv2.setMouseCallback(title, on_mouse)
    while True:
        canvas = np.ascontiguousarray(rgb[:, :, ::-1])
        for i, (u, v) in enumerate(picked):
            cv2.circle(canvas, (int(u), int(v)), 4, (0, 0, 255) if i == 0 else (0, 255, 0), -1)
            cv2.putText(canvas, str(i), (int(u) + 5, int(v) - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        cv2.imshow(title, canvas)
        key = cv2.waitKey(30) & 0xFF
        if key in (13, 10, 27):
            break
    cv2.destroyWindow(title)
    return picked


def parse_pixel(text: str):
    try:
        u, v = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pixel expects u,v (column,row), got {text!r}") from None
    return (u, v)


def parse_size(text: str):
    try:
        h, w = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-size expects H,W, got {text!r}") from None
    return (h, w)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_reference", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint (.pt) the descriptor node runs")
    p.add_argument("--dataset", help="dataset folder (docs/DATA.md layout)")
    p.add_argument("--view", default="0", help="view id or index in --dataset")
    p.add_argument("--rgb", help="RGB image file (instead of --dataset)")
    p.add_argument("--depth", help="depth: 16-bit PNG (times --depth-scale) or .npy in metres")
    p.add_argument("--depth-scale", type=float, default=0.001, help="metres per unit of a 16-bit depth PNG")
    p.add_argument("--K", help="intrinsics fx,fy,cx,cy (with --rgb/--depth)")
    p.add_argument("--pixel", type=parse_pixel, action="append", default=[], help="u,v of a reference (repeat)")
    p.add_argument("--name", action="append", default=[], help="name of each --pixel, in order (repeat)")
    p.add_argument("--pick", action="store_true", help="click the references in an OpenCV window (needs DISPLAY)")
    p.add_argument("--grasp-index", type=int, default=0, help="the reference the grasp sits on")
    p.add_argument("--approach", choices=APPROACH_MODES, default="surface_normal")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="H,W the image is resized to for the network (descriptor_node input_height/width)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", required=True, help="reference file to write (.npz or .json)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        from dense_descriptor_grasp.model.checkpoint import load_model

        model = load_model(args.model, device=args.device)
        rgb, depth, K, source = load_view(args)
        pixels = list(args.pixel)
        if args.pick or (not pixels and os.environ.get("DISPLAY")):
            if not os.environ.get("DISPLAY"):
                raise ValueError("--pick needs a display (DISPLAY is not set); give --pixel u,v instead")
            pixels += pick_pixels(rgb)
        if not pixels:
            raise ValueError("no reference pixels: give --pixel u,v (repeatable) or --pick")
        if args.name and len(args.name) != len(pixels):
            raise ValueError(f"{len(args.name)} --name for {len(pixels)} pixels")
        warn_about_outline_pixels(depth, pixels, args.name)
        ref = build_reference(model, rgb, depth, K, pixels, args.name, args.grasp_index, args.input_size,
                              args.approach, device=args.device, source=source)
        path = save_reference(args.output, ref)
    except (FileNotFoundError, ValueError) as exc:
        print(f"make_reference: {exc}", file=sys.stderr)
        return 2
    n_3d = int(np.isfinite(ref.points).all(1).sum())
    print(f"make_reference: wrote {path}: {len(ref)} references {ref.names} (D={ref.descriptor_dim}, model "
          f"{ref.model_identity}, {n_3d} with 3D points), grasp on '{ref.names[ref.grasp_index]}' at "
          f"{np.round(ref.T_ref_grasp[:3, 3], 4).tolist()} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
