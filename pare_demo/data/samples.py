"""One annotated person in one image: what every dataset reader yields and training reads."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Sample:
    image_path: Path
    person: int                       # index of the person in the frame
    bbox: np.ndarray                  # (4,) x0, y0, x1, y1 in pixels
    joints2d: np.ndarray              # (24, 2) SMPL joint order, pixels
    joints2d_visible: np.ndarray      # (24,) bool: annotated and inside the image
    # 3D annotations, in the dataset's world frame as 3DPW stores them; None where the
    # dataset has none (MPII). pare_demo.data.pw3d.to_camera_frame moves them to the camera.
    pose: np.ndarray | None = None            # (72,) SMPL axis-angle, global orientation first
    betas: np.ndarray | None = None           # (10,)
    translation: np.ndarray | None = None     # (3,) SMPL translation
    joints3d: np.ndarray | None = None        # (24, 3) SMPL joints, world frame
    camera_extrinsics: np.ndarray | None = None  # (4, 4) world -> camera
    focal_length: np.ndarray | None = None    # (2,) fx, fy in pixels
    principal_point: np.ndarray | None = None  # (2,)
    gender: str = "neutral"
    sequence: str = ""
    frame: int = 0
    valid_3d: bool = False            # pose/betas usable (3DPW's campose_valid)

    @property
    def has_3d(self) -> bool:
        return self.pose is not None and self.valid_3d
