"""Semantic-point evaluation (evaluation/semantic.py): a hand-made scene with exact answers, and a tiny rendered
cluttered dataset through the CLI."""
import json
import math
import os

import cv2
import numpy as np
import pytest
import torch

from dense_descriptor_grasp.evaluation import semantic as sem
from dense_descriptor_grasp.evaluation.evaluate import main as evaluate_main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------------------------- a hand-made scene
# A fronto-parallel plane at 0.5 m, fx = fy = 50 and principal point (20, 15): a point of the plane 1 cm off the
# optical axis is exactly 1 px off, so parts put at whole centimetres project onto pixel centres.
W, H, F, CX, CY, Z = 40, 30, 50.0, 20.0, 15.0, 0.5
K = [[F, 0.0, CX], [0.0, F, CY], [0.0, 0.0, 1.0]]
CM = 0.01
PARTS = {
    "a": (1 * CM, -2 * CM, 0.0),
    "b": (-3 * CM, 2 * CM, 0.0),
    "c": (3 * CM, 1 * CM, 0.0),
    "occluded": (0.0, 0.0, 0.05),        # 5 cm behind the plane that is rendered there
    "outside": (100 * CM, 0.0, 0.0),     # far outside the image
    "off_mask": (8 * CM, 0.0, 0.0),      # 3.5 px outside the target rectangle
}
HALF_A, HALF_B = 4.5 * CM, 3.5 * CM     # target = |x| <= 4.5 cm, |y| <= 3.5 cm in the object frame (9 x 7 px)


def _pose(t, yaw_deg=0.0):
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    T[:3, 3] = t
    return T


# scene -> (T_world_object of the target, [camera x shifts in metres], roles?)
SCENES = {
    "s0": (_pose((0.0, 0.0, Z)), [0.0, CM], False),
    "s1": (_pose((3 * CM, -2 * CM, Z), 90.0), [0.0, -2 * CM], False),
    "s2": (_pose((-4 * CM, 3 * CM, Z)), [0.0, CM], True),
}


def _write_view(root, vid, scene, T_wo, cam_x, roles, with_target=True):
    T_wc = np.eye(4)
    T_wc[0, 3] = cam_x
    vv, uu = np.mgrid[0:H, 0:W]
    cam = np.stack([(uu - CX) * Z / F, (vv - CY) * Z / F, np.full(uu.shape, Z)], axis=-1)
    world = cam + T_wc[:3, 3]
    obj = (world - T_wo[:3, 3]) @ T_wo[:3, :3]
    mask = np.zeros((H, W), np.uint8)
    mask[:3, :3] = 1                                                       # a distractor in the corner
    if with_target:
        mask[(np.abs(obj[..., 0]) <= HALF_A + 1e-9) & (np.abs(obj[..., 1]) <= HALF_B + 1e-9)] = 2
    rng = np.random.default_rng(len(vid) + int(vid))
    for sub in ("rgb", "depth", "mask", "camera"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    cv2.imwrite(os.path.join(root, "rgb", vid + ".png"), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    cv2.imwrite(os.path.join(root, "depth", vid + ".png"), np.full((H, W), int(round(Z / 1e-4)), np.uint16))
    cv2.imwrite(os.path.join(root, "mask", vid + ".png"), mask)
    other = {"name": "duck" if roles else "lego", "mask_value": 1, "T_world_object": _pose((0.3, 0.3, Z)).tolist()}
    objects = [other]
    if with_target:
        objects.append({"name": "duck", "mask_value": 2, "T_world_object": T_wo.tolist()})
    if roles:
        for o in objects:
            o["role"] = "target" if o["mask_value"] == 2 else "distractor"
    with open(os.path.join(root, "camera", vid + ".json"), "w") as f:
        json.dump({"K": K, "depth_scale": 1e-4, "width": W, "height": H, "T_world_camera": T_wc.tolist(),
                   "scene_id": scene, "objects": objects}, f)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("semantic_handmade"))
    n = 0
    for scene, (T_wo, shifts, roles) in SCENES.items():
        for cam_x in shifts:
            _write_view(root, f"{n:06d}", scene, T_wo, cam_x, roles)
            n += 1
    _write_view(root, f"{n:06d}", "s3_no_duck", _pose((0, 0, Z)), 0.0, roles=False, with_target=False)
    return root


def _project(T_wo, cam_x, p):
    x = T_wo[:3, :3] @ np.asarray(p) + T_wo[:3, 3] - np.array([cam_x, 0.0, 0.0])
    return np.array([F * x[0] / x[2] + CX, F * x[1] / x[2] + CY])


def test_handmade_scene_perfect_scores_zero_and_only_visible_parts_count(handmade, tmp_path):
    report = sem.semantic_point_evaluation({}, handmade, parts=PARTS, include_perfect=True, include_floors=True,
                                           out_dir=tmp_path / "out")
    assert report["dataset"]["skipped_views"]["no_target"] == 1          # the scene with only a distractor
    assert report["dataset"]["num_views_evaluated"] == 6 and report["dataset"]["num_scenes_evaluated"] == 3
    # invisible parts are skipped: only a, b, c are ever matched (6 views x 3 parts)
    for row in report["views"]:
        assert row["visible_parts"] == ["a", "b", "c"] and row["matched_parts"] == ["a", "b", "c"]
        assert row["reference_scene_id"] != row["scene_id"]
    assert sorted({m["part"] for m in report["matches"]}) == ["a", "b", "c"]
    perfect = report["methods"][sem.PERFECT]
    assert perfect["matches"] == 18
    assert perfect["median_px"] < 1e-6 and perfect["pck_3"] == 1.0
    assert perfect["median_mm"] < 1e-3 and perfect["within_10mm"] == 1.0 and perfect["depth_misses"] == 0
    assert max(m["methods"][sem.PERFECT]["px_error"] for m in report["matches"]) < 1e-6
    assert max(m["methods"][sem.PERFECT]["mm_error"] for m in report["matches"]) < 1e-3
    # the floors have no descriptors for the grasp node to accept; a descriptor method does (perfect: every match)
    assert "node_accepted" not in report["methods"][sem.FLOOR_CENTROID]
    assert perfect["node_accepted"]["share"] == 1.0 and perfect["node_accepted"]["matches"] == 18
    assert all(m["methods"][sem.PERFECT]["node_accepts"] for m in report["matches"])
    # the part's own descriptor repeats exactly across scenes: zero distance at the truth, as at the match
    assert max(m["methods"][sem.PERFECT]["distance_at_truth"] for m in report["matches"]) < 1e-6
    assert all(s["median_distance_at_truth"] < 1e-6 for s in perfect["per_part"].values() if s["matches"])
    # every part here lies >= 2 px inside the 9 x 7 px target: the interior summary is the whole one
    assert all(min(m["query_inside_px"], m["reference_inside_px"]) >= sem.INTERIOR_PX for m in report["matches"])
    for r in report["methods"].values():
        assert {k: r["interior"][k] for k in ("matches", "median_px", "median_mm")} == \
            {k: r[k] for k in ("matches", "median_px", "median_mm")}
    assert "inside the target's silhouette" in report["table_markdown"]
    # the floors are there; no network was given, so the untrained floor says why it is missing
    assert sem.FLOOR_CENTROID in report["methods"] and sem.FLOOR_UNTRAINED not in report["methods"]
    assert any("untrained" in w for w in report["warnings"])
    assert (tmp_path / "out" / sem.REPORT_NAME).is_file()
    assert (tmp_path / "out" / sem.PNG_NAME).read_bytes()[:8] == PNG_MAGIC


def test_handmade_scene_truth_reasons_and_centroid_floor(handmade):
    calls = []

    def coordinates(view):  # a callable method: called once per view, references included
        calls.append(view["view_id"])
        return sem.object_coordinate_descriptors(view["depth"], view["K"], view["T_world_camera"],
                                                 view["T_world_object"], view["target_mask"])

    report = sem.semantic_point_evaluation({"coords": coordinates}, handmade, parts=PARTS, include_floors=True)
    assert sorted(calls) == [f"{i:06d}" for i in range(6)]
    assert report["methods"]["coords"]["median_px"] < 1e-6
    by_view = {}
    for m in report["matches"]:
        by_view.setdefault(m["view_id"], []).append(m)
    n = 0
    for scene, (T_wo, shifts, _) in SCENES.items():
        for cam_x in shifts:
            rows = by_view[f"{n:06d}"]
            origin = _project(T_wo, cam_x, (0.0, 0.0, 0.0))   # the centre of the 9 x 7 target rectangle
            for m in rows:
                assert np.allclose(m["true_uv"], _project(T_wo, cam_x, PARTS[m["part"]]), atol=1e-9)
                c = m["methods"][sem.FLOOR_CENTROID]
                assert np.allclose(c["uv"], origin)
                assert c["px_error"] == pytest.approx(np.hypot(*np.array(PARTS[m["part"]][:2])) / CM, abs=1e-6)
                assert c["mm_error"] == pytest.approx(np.hypot(*np.array(PARTS[m["part"]][:2])) * 1000, abs=1e-3)
            n += 1
    # the reasons of part_truth for the invisible ones
    depth = np.full((H, W), Z, np.float32)
    T_wo = SCENES["s0"][0]
    vv, uu = np.mgrid[0:H, 0:W]
    target = (np.abs(uu - CX) <= 4) & (np.abs(vv - CY) <= 3)
    truth = sem.part_truth({k: np.array(v) for k, v in PARTS.items()}, np.array(K), np.eye(4), T_wo, depth, target)
    assert {k: t["reason"] for k, t in truth.items()} == {"a": "", "b": "", "c": "", "occluded": "occluded",
                                                          "outside": "outside_image", "off_mask": "off_target_mask"}
    # a part 1 px outside the mask still counts (the silhouette tolerance) and is referenced on the mask
    t = sem.part_truth({"edge": np.array([5 * CM, 0.0, 0.0])}, np.array(K), np.eye(4), T_wo, depth, target)["edge"]
    assert t["visible"] and np.allclose(t["uv"], [25.0, 15.0]) and np.allclose(t["target_pixel"], [24.0, 15.0])
    assert t["inside_px"] == 1.0                                       # on the outermost ring of the silhouette
    inside = sem.inside_distance(target)
    for name in ("a", "b", "c"):
        u, v = np.rint(truth[name]["target_pixel"]).astype(int)
        assert truth[name]["inside_px"] == inside[v, u] >= 1.0


def _inside_by_brute_force(mask):
    """Distance of each target pixel to the nearest non-target pixel, the ring around the image included."""
    padded = np.pad(mask, 1)
    off = np.argwhere(~padded)
    out = np.zeros(mask.shape)
    for v, u in np.argwhere(mask):
        out[v, u] = np.sqrt(((off - [v + 1, u + 1]) ** 2).sum(1)).min()
    return out


def test_inside_distance_is_the_distance_to_the_nearest_pixel_off_the_target():
    rng = np.random.default_rng(0)
    blob = cv2.GaussianBlur(rng.random((24, 32)), (0, 0), 3) > 0.5
    rect = np.zeros((9, 11), bool)
    rect[1:8, 2:11] = True                                               # touches the right border
    for mask in (blob, rect, np.ones((5, 5), bool), np.zeros((4, 4), bool)):
        np.testing.assert_allclose(sem.inside_distance(mask), _inside_by_brute_force(mask), atol=1e-3)
    assert sem.inside_distance(rect)[4, 6] == 4.0 and sem.inside_distance(rect)[4, 10] == 1.0


def test_mask_centroid_pixel_by_hand():
    # an L: column 0 rows 0..5 and row 5 columns 1..2 -> centroid (3/8, 25/8) = (0.375, 3.125), off the mask
    mask = np.zeros((7, 4), bool)
    mask[0:6, 0] = True
    mask[5, 1:3] = True
    depth = np.full(mask.shape, 0.5, np.float32)
    assert np.array_equal(sem.mask_centroid_pixel(mask, depth), [0.0, 3.0])
    depth[3, 0] = 0.0                                   # no depth there: the next nearest target pixel
    assert np.array_equal(sem.mask_centroid_pixel(mask, depth), [0.0, 4.0])
    assert sem.mask_centroid_pixel(np.zeros_like(mask), depth) is None


def test_find_target_roles_and_names():
    duck = {"name": "duck", "mask_value": 2}
    assert sem.find_target({"objects": [{"name": "lego", "mask_value": 1}, duck]}, "duck") == (duck, "")
    assert sem.find_target({"objects": [{"name": "lego", "mask_value": 1}]}, "duck") == (None, "no_target")
    assert sem.find_target({"objects": [duck, dict(duck, mask_value=3)]}, "duck") == (None, "ambiguous_target")
    decoy = {"name": "duck", "mask_value": 1, "role": "distractor"}
    target = {"name": "duck", "mask_value": 2, "role": "target"}
    lego = {"name": "lego", "mask_value": 3, "role": "target"}
    assert sem.find_target({"objects": [decoy, target], "target": "duck"}, "duck") == (target, "")
    assert sem.find_target({"objects": [lego, target, decoy]}, "duck") == (target, "")   # several targets
    assert sem.find_target({"objects": [decoy]}, "duck") == (None, "no_target")
    assert sem.find_target({"objects": [decoy, lego]}, "duck") == (None, "other_target")


def test_best_match_pixels_is_the_whole_image_l2_argmin():
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(5, 6, 7)).astype(np.float32)
    ref = rng.normal(size=(4, 5)).astype(np.float32)
    ref[0] = desc[:, 2, 3]
    got = sem.best_match_pixels(desc, ref)
    d = ((desc.reshape(5, -1).T[None] - ref[:, None]) ** 2).sum(-1)
    idx = d.argmin(1)
    assert np.array_equal(got, np.stack([idx % 7, idx // 7], 1)) and np.array_equal(got[0], [3, 2])


# ----------------------------------------------------------------------------------------------- untrained twin
@pytest.fixture(scope="module")
def clutter(tmp_path_factory):
    """12 rendered views at 96 x 72: the duck among 2-3 held-out distractors per scene, plus 4 views of scenes
    whose targets are other objects (skipped)."""
    from dense_descriptor_grasp.data.generate import generate_dataset
    from dense_descriptor_grasp.data.render import RenderConfig

    root = str(tmp_path_factory.mktemp("semantic_clutter") / "clutter")
    generate_dataset(root, ["duck"], num_views=8, views_per_scene=2, seed=7, distractors=["eval"],
                     distractors_per_scene=(2, 3), config=RenderConfig.training(width=96, height=72), progress=False)
    generate_dataset(root + "_others", ["lego", "teddy"], num_views=4, views_per_scene=2, seed=8,
                     config=RenderConfig.training(width=96, height=72), progress=False)
    for sub in ("rgb", "depth", "mask", "camera"):   # one folder: view ids 1000.. for the other-target scenes
        for f in sorted(os.listdir(os.path.join(root + "_others", sub))):
            stem, ext = os.path.splitext(f)
            dst = os.path.join(root, sub, f"{1000 + int(stem):06d}{ext}")
            if sub == "camera":
                cam = json.load(open(os.path.join(root + "_others", sub, f)))
                cam["scene_id"] = "others_" + cam["scene_id"]
                json.dump(cam, open(dst, "w"))
            else:
                os.replace(os.path.join(root + "_others", sub, f), dst)
    return root


@pytest.fixture(scope="module")
def steps0(clutter, tmp_path_factory):
    """``train_model --steps 0`` (seed 5) and a 'trained' copy: the same config, other weights."""
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from dense_descriptor_grasp.training.train import main as train_main

    out = tmp_path_factory.mktemp("semantic_ckpt")
    assert train_main(["--dataset", clutter, "--out", str(out / "steps0"), "--descriptor-dim", "8",
                       "--num-keypoints", "4", "--steps", "0", "--seed", "5", "--set", "data.val_fraction=0.0",
                       "--set", "train.tensorboard=false", "--no-progress"]) == 0
    ckpt = load_checkpoint(out / "steps0" / "last.pt")
    model = model_from_checkpoint(ckpt)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    trained = save_checkpoint(out / "trained.pt", model, step=50, config=ckpt["config"], metadata=ckpt["metadata"])
    return str(out / "steps0" / "last.pt"), str(trained)


def test_untrained_twin_equals_train_model_steps_0(steps0):
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint, load_model

    untrained_path, trained_path = steps0
    trained = load_model(trained_path)
    expected = load_checkpoint(untrained_path)
    rng = torch.get_rng_state()
    twin, info = sem.untrained_twin(trained)
    assert torch.equal(torch.get_rng_state(), rng)                     # the caller's RNG is left alone
    assert info["seed"] == 5 and info["identity"] == expected["model_identity"] != trained.identity
    state = twin.state_dict()
    assert set(state) == set(expected["model_state"])
    for k, v in expected["model_state"].items():
        assert torch.equal(state[k], v), k
    other, _ = sem.untrained_twin(trained, seed=6)
    assert not torch.equal(other.state_dict()["projection.weight"], state["projection.weight"])
    # a model normalising by each image's statistics gets the same twin, with running statistics (the stronger floor)
    trained.norm_statistics = "image"
    same, info_image = sem.untrained_twin(trained)
    assert same.norm_statistics == "running" and info_image["identity"] == expected["model_identity"]
    assert "norm_statistics" not in info_image["constructor_args"]


# ----------------------------------------------------------------------------------------------- rendered clutter
def test_cli_on_rendered_clutter_reports_floors_and_other_scene_references(clutter, steps0, tmp_path, capsys):
    out = tmp_path / "eval_clutter"
    rc = evaluate_main(["--semantic", "--dataset", clutter, "--model", steps0[1], "--out", str(out), "--perfect",
                        "--no-progress", "--visual-views", "2"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| method | matches | median px | PCK@3 |" in printed and "mask_centroid" in printed
    report = json.loads((out / sem.REPORT_NAME).read_text())
    assert set(report) >= {"settings", "dataset", "methods", "views", "matches", "table_markdown",
                           "timing", "files", "warnings"}
    assert list(report["methods"]) == ["trained", sem.PERFECT, sem.FLOOR_UNTRAINED, sem.FLOOR_CENTROID]
    assert report["methods"][sem.FLOOR_UNTRAINED]["info"]["of"] == "trained"
    n = report["methods"]["trained"]["matches"]
    assert n > 0 and all(r["matches"] == n for r in report["methods"].values())
    for r in report["methods"].values():
        assert set(r) >= {"matches", "median_px", "pck_3", "pck_5", "pck_10", "median_mm", "within_10mm", "depth_misses",
                         "per_part", "info"}
        assert set(r["per_part"]) == {"head_top", "beak_tip", "tail", "left_side", "right_side", "chest"}
    assert report["dataset"]["skipped_views"]["other_target"] == 4    # scenes whose target is another object
    for row in report["views"]:
        assert row["reference_scene_id"] != row["scene_id"]
        assert set(row["matched_parts"]) <= set(row["visible_parts"])
    # the sanity row: object coordinates find every part within a pixel or so (rounding to the pixel grid)
    perfect = report["methods"][sem.PERFECT]
    assert perfect["median_px"] <= 1.0 and perfect["pck_3"] >= 0.9
    # the interior summary: the matches whose part lies >= 2 px inside the silhouette in query and reference (the
    # duck's parts are extreme vertices of its mesh: some of them are on the outline)
    inner = [min(m["query_inside_px"], m["reference_inside_px"]) >= sem.INTERIOR_PX for m in report["matches"]]
    assert sum(inner) < len(inner)
    for name, r in report["methods"].items():
        assert r["interior"]["matches"] == sum(inner) == sum(r["interior"]["per_part_matches"].values())
        errors = [m["methods"][name]["px_error"] for m, keep in zip(report["matches"], inner) if keep]
        assert r["interior"]["median_px"] == (pytest.approx(float(np.median(errors))) if errors else None)
    # what the grasp node would accept: its own matcher (grasping.matching) with its default settings
    from dense_descriptor_grasp.grasping.grasp_estimate import GraspSettings

    gs = GraspSettings()
    for name in ("trained", sem.FLOOR_UNTRAINED):
        rows = [m["methods"][name] for m in report["matches"]]
        assert all((r["node_accepts"] == (r["distance"] <= gs.max_distance and r["ratio"] <= gs.max_ratio))
                   for r in rows)
        accepted = [r["px_error"] for r in rows if r["node_accepts"]]
        q = report["methods"][name]["node_accepted"]
        assert q["matches"] == len(accepted) and q["share"] == pytest.approx(len(accepted) / len(rows))
        assert q["median_px"] == (pytest.approx(float(np.median(accepted))) if accepted else None)
    assert "grasp node would accept" in report["table_markdown"]
    with open(report["files"]["matches_png"], "rb") as f:
        assert f.read(8) == PNG_MAGIC


def test_in_process_call_with_a_model_object_and_max_views(clutter, steps0):
    from dense_descriptor_grasp.model.checkpoint import load_model

    model = load_model(steps0[1])
    report = sem.semantic_point_evaluation({"m": model}, clutter, max_views=3, seed=1)
    assert report["dataset"]["num_views_evaluated"] == 3 and report["dataset"]["num_scenes_evaluated"] >= 2
    assert "files" not in report                                     # nothing written without out_dir
    # the untrained floor is the twin of the given model, identical to the steps-0 checkpoint
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    assert report["methods"][sem.FLOOR_UNTRAINED]["info"]["identity"] == load_checkpoint(steps0[0])["model_identity"]
    with pytest.raises(ValueError, match="reserved"):
        sem.semantic_point_evaluation({sem.FLOOR_CENTROID: model}, clutter)
    with pytest.raises(ValueError, match="max_views"):
        sem.semantic_point_evaluation({"m": model}, clutter, max_views=1)


def test_object_pose_rows_carry_parts_through_the_fitted_pose(handmade):
    # perfect descriptors: every surface reference matches exactly, so the fitted pose carries each part onto its
    # true pixel and point; a constant descriptor image matches every reference at one pixel, so no pose is found
    # and the row falls back to the part's own (wrong) match
    def constant(view):
        return np.ones((3,) + view["depth"].shape, np.float32)

    report = sem.semantic_point_evaluation({"constant": constant}, handmade, parts=PARTS, include_perfect=True,
                                           include_floors=False, object_pose_references=8, num_visual_views=0)
    rows = report["methods"]
    assert set(rows) == {"constant", sem.PERFECT, "constant + object pose", f"{sem.PERFECT} + object pose"}
    pose = rows[f"{sem.PERFECT} + object pose"]
    assert pose["matches"] == 18 and pose["median_px"] < 1e-3 and pose["median_mm"] < 0.5
    assert rows["constant + object pose"]["median_px"] == pytest.approx(rows["constant"]["median_px"])
    # the pose record: the perfect descriptors' poses are the true ones, the constant image finds none
    good, none = pose["pose"], rows["constant + object pose"]["pose"]
    assert good["found"] == good["views"] > 0 and good["median_rotation_error_deg"] < 0.5
    assert good["median_point_error_mm"] < 0.5 and good["within_rotation_ok"] == 1.0
    assert none["found"] == 0 and none["within_rotation_ok"] == 0.0 and none["median_rotation_error_deg"] is None
    assert "poses found" in report["table_markdown"] and "pose" not in rows["constant"]
    with pytest.raises(ValueError, match="reserved"):
        sem.semantic_point_evaluation({sem.PERFECT: constant}, handmade, parts=PARTS)


def test_pose_accuracy_measures_the_fit_against_the_true_relative_pose():
    """A fit rotated 90 deg about the query camera's z axis from the truth: 90 deg, and the points moved by it."""
    from dense_descriptor_grasp.grasping.object_pose import ObjectPoseResult

    T_wc_ref, T_wo = np.eye(4), np.eye(4)
    T_wo[:3, 3] = [0.0, 0.0, 0.5]
    T_wc_query = np.eye(4)
    T_wc_query[:3, 3] = [0.1, 0.0, 0.0]
    reference = {"T_object_camera": np.linalg.inv(T_wo) @ T_wc_ref,
                 "points": np.array([[0.0, 0.0, 0.5], [0.02, 0.0, 0.5], [np.nan, 0, 0]])}
    view = {"T_world_camera": T_wc_query, "T_world_object": T_wo}
    T_true = np.linalg.inv(T_wc_query) @ T_wo @ reference["T_object_camera"]
    exact = sem.pose_accuracy(ObjectPoseResult(T_true, np.ones(3, bool), 0.0, ""), reference, view)
    assert exact["found"] and exact["rotation_error_deg"] < 1e-4 and exact["point_error_mm"] < 1e-6
    Rz = np.eye(4)
    Rz[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]
    turned = sem.pose_accuracy(ObjectPoseResult(Rz @ T_true, np.ones(3, bool), 0.0, ""), reference, view)
    assert turned["rotation_error_deg"] == pytest.approx(90.0)
    # the points sit at (-0.1, 0, 0.5) and (-0.08, 0, 0.5) in the query camera: turned to (0, -0.1) and (0, -0.08)
    assert turned["point_error_mm"] == pytest.approx(1000 * np.median([np.hypot(0.1, 0.1), np.hypot(0.08, 0.08)]))
    missing = sem.pose_accuracy(ObjectPoseResult(None, np.zeros(3, bool), float("inf"), "no"), reference, view)
    assert missing == {"found": False, "inliers": 0, "rotation_error_deg": None, "point_error_mm": None}
    summary = sem.summarize_poses([exact, turned, missing])
    assert summary["views"] == 3 and summary["found"] == 2 and summary["within_rotation_ok"] == pytest.approx(1 / 3)


def test_sensor_noise_reaches_the_methods_but_not_the_truth(clutter):
    """--sensor-noise: the methods see noisy colour and depth (a depth-reading callable sees missing and changed
    depth), while visibility and the part matches (the truth) stay those of the clean render."""
    seen = {"clean": [], "noisy": []}

    def recorder(kind):
        def fn(view):
            seen[kind].append(view["depth"].copy())
            return view["rgb"].astype(np.float32).transpose(2, 0, 1)   # colour as a 3-D "descriptor"
        return fn

    clean = sem.semantic_point_evaluation({"m": recorder("clean")}, clutter, include_floors=False)
    noisy = sem.semantic_point_evaluation({"m": recorder("noisy")}, clutter, include_floors=False, sensor_noise=True)
    assert noisy["settings"]["sensor_noise"] and clean["settings"]["sensor_noise"] is None
    assert noisy["methods"]["m"]["matches"] == clean["methods"]["m"]["matches"] > 0
    assert [v["matched_parts"] for v in noisy["views"]] == [v["matched_parts"] for v in clean["views"]]
    a, b = np.stack(seen["clean"]), np.stack(seen["noisy"])
    assert a.shape == b.shape
    valid = (a > 0) & (b > 0)
    assert np.mean(b == 0) > np.mean(a == 0)                       # dropouts (edges, stereo shadow, range)
    assert np.median(np.abs(a[valid] - b[valid])) > 1e-4           # depth noise
    # deterministic: the same seed gives the same noisy views
    again = sem.semantic_point_evaluation({"m": recorder("noisy")}, clutter, include_floors=False, sensor_noise=True)
    assert again["methods"]["m"]["median_px"] == noisy["methods"]["m"]["median_px"]


def test_reference_views_average_the_references_of_several_scenes(handmade):
    """--reference-views K: a part's reference is the mean over the next K scenes' reference views. Descriptors =
    object coordinates shifted by a per-scene offset (s0: 0, s1: +2 cm, s2: -2 cm in x): with one reference view a
    query of s0 is matched against s1's shifted reference (2 cm off, 2 px at this scale), with K = 2 against the
    mean of s1 and s2, whose offsets cancel (0 px). The matched parts are the same for every K."""
    offsets = {"s0": 0.0, "s1": 2 * CM, "s2": -2 * CM}

    def biased(view):
        d = sem.object_coordinate_descriptors(view["depth"], view["K"], view["T_world_camera"],
                                              view["T_world_object"], view["target_mask"])
        d[0][view["target_mask"]] += offsets[view["scene_id"]]
        return d

    def s0_errors(report):
        return [m["methods"]["biased"]["px_error"] for m in report["matches"] if m["view_id"] in s0_views(report)]

    def s0_views(report):
        return {v["view_id"] for v in report["views"] if v["scene_id"] == "s0"}

    one = sem.semantic_point_evaluation({"biased": biased}, handmade, parts=PARTS, include_floors=False,
                                        num_visual_views=0)
    two = sem.semantic_point_evaluation({"biased": biased}, handmade, parts=PARTS, include_floors=False,
                                        num_visual_views=0, reference_views=2)
    assert two["settings"]["reference_views"] == 2
    assert [(m["view_id"], m["part"]) for m in one["matches"]] == [(m["view_id"], m["part"]) for m in two["matches"]]
    assert min(s0_errors(one)) >= 1.0 and max(s0_errors(two)) < 1e-6   # (1 px where the shift meets the edge)
    # the shifted reference does not repeat at the part's true pixel of s0's views (K = 1); the mean does (K = 2)
    s0 = s0_views(one)
    assert min(m["methods"]["biased"]["distance_at_truth"] for m in one["matches"] if m["view_id"] in s0) > 1e-4
    assert max(m["methods"]["biased"]["distance_at_truth"] for m in two["matches"] if m["view_id"] in s0) < 1e-6
    with pytest.raises(ValueError, match="reference_views"):
        sem.semantic_point_evaluation({"biased": biased}, handmade, parts=PARTS, reference_views=0)


def test_support_counts_the_target_pixels_near_the_part_by_brute_force(clutter):
    """part_truth's support: target pixels with depth whose back-projected point lies within SUPPORT_RADIUS_M of the
    part, counted here pixel by pixel."""
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.objects import named_parts

    data = RGBDDataset(clutter, split=None, validate=False)
    parts = named_parts("duck")
    checked = 0
    for i, rec in enumerate(data.records[:8]):
        t, _ = sem._view_truth(rec, i, "duck", parts)
        if t is None:
            continue
        _, depth, mask_raw = sem._read_view(rec, with_rgb=False)
        target = mask_raw == t["mask_value"]
        K = np.asarray(rec.K, np.float64)
        for name in t["visible"]:
            p = t["parts"][name]["point_camera"]
            count = 0
            for v, u in zip(*np.nonzero(target & (depth > 0))):
                z = float(depth[v, u])
                x = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
                count += np.linalg.norm(x - p) <= sem.SUPPORT_RADIUS_M
            assert t["parts"][name]["support"] == count
            checked += 1
    assert checked >= 4


def test_reference_choice_part_takes_each_part_from_the_view_that_sees_it_best(clutter, handmade):
    """reference_choice="part": each part's reference view is, among its reference scene's views that see it, one
    with the most support; the queries (view, part) are the views' visible parts either way."""
    def coords(view):
        return sem.object_coordinate_descriptors(view["depth"], view["K"], view["T_world_camera"],
                                                 view["T_world_object"], view["target_mask"])

    by_view = sem.semantic_point_evaluation({"c": coords}, clutter, include_floors=False, num_visual_views=0)
    by_part = sem.semantic_point_evaluation({"c": coords}, clutter, include_floors=False, num_visual_views=0,
                                            reference_choice="part")
    assert by_part["settings"]["reference_choice"] == "part"
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.objects import named_parts

    data = RGBDDataset(clutter, split=None, validate=False)
    truth = {}
    for i, rec in enumerate(data.records):
        t, _ = sem._view_truth(rec, i, "duck", named_parts("duck"))
        if t is not None:
            truth[t["view_id"]] = t
    differs = 0
    for row in by_part["views"]:
        for part, ref_id in row["part_reference_view_ids"].items():
            ref_scene = truth[ref_id]["scene_id"]
            assert ref_scene == row["reference_scene_id"] != row["scene_id"]
            best = max(t["parts"][part]["support"] for t in truth.values()
                       if t["scene_id"] == ref_scene and part in t["visible"])
            assert truth[ref_id]["parts"][part]["support"] == best
            differs += ref_id != row["reference_view_id"]
    assert differs > 0, "the clutter set should have a part better seen outside its scene's most-parts view"
    for m in by_part["matches"]:
        assert m["reference_support"] == truth[m["reference_view_id"]]["parts"][m["part"]]["support"]
    # every visible part of a query is matched when its reference scene sees it in any view (>= the view choice)
    assert {(m["view_id"], m["part"]) for m in by_view["matches"]} <= {(m["view_id"], m["part"]) for m in by_part["matches"]}
    assert by_part["methods"]["c"]["median_px"] < 1.0   # object coordinates find the parts from either reference
    with pytest.raises(ValueError, match="reference_choice"):
        sem.semantic_point_evaluation({"c": coords}, handmade, parts=PARTS, reference_choice="best")
