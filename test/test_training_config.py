"""Training config (training/config.py): the shipped YAML validates, overrides apply, bad values name the key; files
that are not what train_model expects end in one line naming the file (issue 12, item 7)."""
import subprocess
import sys

import pytest
import yaml

from dense_descriptor_grasp.training.config import DEFAULT_CONFIG_PATH, TrainConfig, apply_overrides, load_config


def test_shipped_config_loads_and_round_trips():
    cfg = load_config(DEFAULT_CONFIG_PATH)
    assert cfg.model.method == "keypoint" and cfg.losses.variance == pytest.approx(1e-3)
    assert cfg.train.out == f"models/keypoint_d{cfg.model.descriptor_dim}"
    again = TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg


def test_paper_defaults_without_a_file():
    losses = TrainConfig().losses
    assert losses.weights() == {"silhouette": 1.0, "variance": 1e-3, "separation": 1.0, "multiview": 1.0, "pose": 1.0,
                                "observed_depth": 0.0, "ntxent": 0.0}
    assert losses.length_scale == 1.0


def test_overrides_parse_yaml_values():
    cfg = load_config(DEFAULT_CONFIG_PATH, ["optim.lr=3.0e-4", "data.image_size=[120, 160]", "model.method=ntxent"])
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.data.image_size == [120, 160] and cfg.model.method == "ntxent"
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x"]) == {"a": {"b": 1, "c": "x"}}
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides({}, ["lr=3"])


@pytest.mark.parametrize("override,needle", [
    ("optim.lr=3e-4", "3.0e-4"),
    ("model.descriptor_dim=600", "model.descriptor_dim"),
    ("model.output_stride=4", "model.output_stride"),
    ("model.num_keypoints=2", "model.num_keypoints"),
    ("losses.separation=-1.0", "losses.separation"),
    ("data.mode=triplets", "data.mode"),
    ("data.cross_scene_fraction=1.5", "data.cross_scene_fraction"),
    ("data.negative_margin_px=-1", "data.negative_margin_px"),
    ("data.crop=[4, 64]", "data.crop"),
    ("data.crop=64", "data.crop"),
    ("train.device=tpu", "train.device"),
    ("train.colour=red", "train.colour"),
    ("optimiser.lr=1.0", "optimiser"),
])
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        load_config(DEFAULT_CONFIG_PATH, [override])


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="--config"):
        load_config(tmp_path / "nope.yaml")


def test_presets_apply_before_set_and_flags_and_unknown_ones_are_refused(capsys):
    from dense_descriptor_grasp.training.train import config_from_args, get_args_parser, main

    cfg = config_from_args(get_args_parser().parse_args(["--preset", "clutter"]))
    assert (cfg.model.decoder, cfg.model.output_stride, cfg.model.method, cfg.data.mode) == ("fpn", 4, "ntxent", "mixed")
    assert cfg.data.num_negatives > 0 and cfg.losses.coords > 0
    cfg = config_from_args(get_args_parser().parse_args(["--preset", "clutter", "--set", "data.num_negatives=7",
                                                         "--method", "keypoint"]))
    assert cfg.data.num_negatives == 7 and cfg.model.method == "keypoint"  # --set and flags win
    paper = config_from_args(get_args_parser().parse_args(["--preset", "paper"]))
    assert paper.model.method == "keypoint" and paper.data.mode == "augment" and paper.model.decoder == "fpn"
    assert main(["--preset", "nope"]) == 2 and "known presets" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("- model\n- data\n", "the top level must be a mapping of sections"),
    ("just a string\n", "got a str"),
    ("42\n", "got a int"),
    ("model:\n  method: [keypoint\n", "not valid YAML: line 3, column 1"),
    ("model: {method: keypoint\n\ttabbed: 1}\n", "not valid YAML: line"),
])
def test_a_config_that_is_not_a_mapping_is_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message, message
    assert "\n" not in message, message


def test_overrides_on_a_non_mapping_are_refused_by_name():
    with pytest.raises(ValueError, match="must be a mapping of sections"):
        apply_overrides(["a"], ["model.method=ntxent"])


def test_train_model_prints_one_line_for_a_list_config(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    proc = subprocess.run([sys.executable, "-m", "dense_descriptor_grasp.training.train", "--config", str(path),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(path) in err and "mapping" in err, err
