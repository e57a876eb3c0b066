"""Physics simulation (pybullet, DIRECT mode, ROS-free): the simulated grasp judge in ``grasp_sim``."""
