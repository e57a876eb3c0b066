"""The data side: pybullet rendering (``render``), the on-disk format (``dataset_format``), ``generate_dataset``
(``generate``), the validating loader ``RGBDDataset`` (``dataset``), virtual-camera augmentation (``augment``),
training pairs ``PairDataset`` / ``collate_pairs`` (``pairs``) and ``preview_pairs`` (``preview``).
See docs/DATA.md. Submodules are imported on demand (pybullet and cv2 load only when used).
"""
