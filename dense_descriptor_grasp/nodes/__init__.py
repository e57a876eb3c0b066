"""ROS 2 nodes (thin rclpy shells over the ROS-free core): descriptor_node, grasp_node, sim_camera_node."""
