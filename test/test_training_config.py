"""Training config files that are not what train_model expects end in one line naming the file (issue 12, item 7)."""
import subprocess
import sys

import pytest

from dense_descriptor_grasp.training.config import apply_overrides, load_config


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
