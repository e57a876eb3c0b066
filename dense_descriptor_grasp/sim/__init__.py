"""Simulation (pybullet, DIRECT mode, ROS-free): the simulated grasp judge (``grasp_sim``), the sim camera's
sources (``cameras``: a rendered scene, a dataset replay) and pybullet body helpers (``bodies``: poses, the URDF
vs centre-of-mass frame, resting height)."""
