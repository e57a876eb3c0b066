"""ROS-free grasping core: descriptor matching, robust depth at a match, grasp pose, RANSAC object pose,
reference files and the descriptor preview. The nodes in ``dense_descriptor_grasp.nodes`` are thin shells over it."""
