"""`colcon build` of the package in a temporary workspace installs what `ros2 run` / `ros2 launch` need.

The repo's package files are copied to `<tmp>/src/dense_descriptor_grasp` (without .venv, build, install, log,
.git, models, data and caches) and built with the colcon from the venv (colcon-common-extensions, PyPI), the
venv's python first on PATH, once as a plain install and once with --symlink-install.
"""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "dense_descriptor_grasp"
SKIP_AT_TOP = {".venv", "build", "install", "log", ".git", "models", "data", "runs", "outputs"}
SKIP_ANYWHERE = {"__pycache__", ".pytest_cache", ".hypothesis", f"{PACKAGE}.egg-info"}
TIMEOUT_S = 120


def console_scripts_from_setup() -> dict:
    """The CONSOLE_SCRIPTS dict literal of setup.py, read with ast (setup() is not run)."""
    tree = ast.parse((REPO / "setup.py").read_text(), filename="setup.py")
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CONSOLE_SCRIPTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no CONSOLE_SCRIPTS dict")


def colcon_executable() -> str:
    beside_python = Path(sys.executable).parent / "colcon"
    found = str(beside_python) if beside_python.exists() else shutil.which("colcon")
    if not found:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    return found


def ignore_build_dirs(directory, names):
    skipped = {n for n in names if n in SKIP_ANYWHERE}
    if Path(directory).resolve() == REPO:
        skipped |= {n for n in names if n in SKIP_AT_TOP}
    return skipped


def run(command, cwd, env):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(scope="module", params=["install", "symlink-install"])
def workspace(request, tmp_path_factory):
    """A colcon workspace with the package built; yields (workspace, `colcon list` output)."""
    colcon = colcon_executable()
    ws = tmp_path_factory.mktemp(f"colcon_{request.param.replace('-', '_')}")
    shutil.copytree(REPO, ws / "src" / PACKAGE, ignore=ignore_build_dirs, symlinks=True)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("COLCON_PREFIX_PATH", None)  # no overlay from an outer workspace
    listing = run([colcon, "list"], ws, env)
    build = [colcon, "build"]
    if request.param == "symlink-install":
        build.append("--symlink-install")
    run(build, ws, env)
    yield ws, listing, env


def test_colcon_lists_an_ament_python_package(workspace):
    _, listing, _ = workspace
    rows = [line.split() for line in listing.splitlines() if line.strip()]
    assert [PACKAGE, f"src/{PACKAGE}", "(ros.ament_python)"] in rows, listing


def test_share_holds_package_xml_launch_and_config(workspace):
    ws, _, _ = workspace
    share = ws / "install" / PACKAGE / "share" / PACKAGE
    assert (share / "package.xml").is_file()
    launch_files = sorted(p.name for p in (REPO / "launch").glob("*.launch.py"))
    assert launch_files, "the repo has no launch/*.launch.py"
    for name in launch_files:
        assert (share / "launch" / name).is_file(), f"launch/{name} not installed"
    config_files = sorted(p.name for p in (REPO / "config").iterdir() if p.is_file())
    assert config_files, "the repo's config/ is empty"
    for name in config_files:
        assert (share / "config" / name).is_file(), f"config/{name} not installed (setup.py data_files)"


def test_ament_index_marker_is_installed(workspace):
    ws, _, _ = workspace
    marker = ws / "install" / PACKAGE / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert marker.is_file(), "ament index marker missing: ros2 run / FindPackageShare would not find the package"


def test_every_console_script_is_an_executable_in_lib_package(workspace):
    ws, _, _ = workspace
    scripts = console_scripts_from_setup()
    assert scripts
    lib = ws / "install" / PACKAGE / "lib" / PACKAGE
    missing = [name for name in scripts if not (lib / name).is_file()]
    assert not missing, f"console scripts not installed in {lib}: {missing} (setup.cfg install_scripts?)"
    not_executable = [name for name in scripts if not os.access(lib / name, os.X_OK)]
    assert not not_executable, not_executable


def test_installed_python_package_is_importable_from_the_sourced_workspace(workspace):
    """What `ros2 launch` does after `source install/setup.bash`: import dense_descriptor_grasp from the
    workspace (install/ for a plain install, build/ -> src/ for --symlink-install), not from the repo."""
    ws, _, env = workspace
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to source install/setup.bash")
    code = "import dense_descriptor_grasp.launch_description as m; print(m.__file__)"
    script = f'. install/setup.bash && "{sys.executable}" -c "{code}"'
    where = run(["bash", "-c", script], ws, env).strip().splitlines()[-1]
    assert where.startswith(str(ws)), f"imported {where}, not the workspace's package"
