"""ament_python package setup for dense_descriptor_grasp.

`colcon build` installs the ament index marker, package.xml, launch files and config into
share/dense_descriptor_grasp/, and the console scripts into lib/dense_descriptor_grasp/ (setup.cfg),
where `ros2 run` and launch_ros look for them. `pip install -e .` works the same way for pip users.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dense_descriptor_grasp"

# name -> module:function. Every executable the launch file or README names is declared here.
CONSOLE_SCRIPTS = {
    "geometry_selfcheck": "dense_descriptor_grasp.geometry.selfcheck:main",
    "generate_dataset": "dense_descriptor_grasp.data.generate:main",
    "preview_pairs": "dense_descriptor_grasp.data.preview:main",
    "descriptor_node": "dense_descriptor_grasp.nodes.descriptor_node:main",
    "grasp_node": "dense_descriptor_grasp.nodes.grasp_node:main",
    "sim_camera_node": "dense_descriptor_grasp.nodes.sim_camera_node:main",
    "capture_dataset": "dense_descriptor_grasp.nodes.capture_node:main",
    "bringup": "dense_descriptor_grasp.bringup:main",
    "make_reference": "dense_descriptor_grasp.grasping.make_reference:main",
    "train_model": "dense_descriptor_grasp.training.train:main",
    "evaluate_model": "dense_descriptor_grasp.evaluation.evaluate:main",
    "demo": "dense_descriptor_grasp.demo:main",
    "build_capture_dataset": "dense_descriptor_grasp.capture.build:main",
    "simulate_capture": "dense_descriptor_grasp.capture.simulate:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dense_descriptor_grasp maintainers",
    maintainer_email="maintainers@dense-descriptor-grasp.dev",
    description="Dense object descriptors trained on the KeypointNet task, and ROS 2 grasping nodes.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={"console_scripts": [f"{name} = {target}" for name, target in CONSOLE_SCRIPTS.items()]},
)
