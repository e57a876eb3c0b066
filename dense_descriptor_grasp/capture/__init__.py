"""Your own object from an RGB-D camera: frames in, masks, camera poses, TSDF fusion, a training dataset out.

ROS-free core (numpy + open3d). Modules:

* :mod:`frames` -- :class:`Frame`, the one in-memory RGB-D view every step passes along.
* :mod:`noise` -- the documented RGB-D sensor noise model used by the simulated capture.
* :mod:`simulate` -- a simulated capture: the pybullet renderer orbits a camera around an object on a table.
* :mod:`importer` -- a folder of colour + 16-bit depth PNGs + intrinsics (camera tools' export) <-> frames.
* :mod:`masks` -- the object's mask without annotation: support plane (RANSAC), DBSCAN clusters, hole filling.
* :mod:`poses` -- camera poses without a robot: RGB-D odometry + pose graph with loop closures.
* :mod:`fusion` -- TSDF fusion, the object's surface, ray-cast depth and masks per view.
* :mod:`build` -- frames -> a dataset in the format of docs/DATA.md (one scene per capture).
* :mod:`keyframes` -- which camera frames to keep (motion / interval / request) and the one-frame-at-a-time,
  resumable writer of a capture folder (the ``capture_dataset`` node's core).
* :mod:`tf_chain` -- the latest ``/tf`` + ``/tf_static`` transforms chained between any two frames (no tf2_ros).
"""
