"""Mirror images of SMPL bodies: left and right joints swapped, every rotation conjugated with
diag(-1, 1, 1) (x is left-right in both the crop camera and the body's rest frame), which
keeps an axis-angle's x component and negates y and z. The flip test
(pare_demo.flip_test) and training's flip augmentation and mirrored key poses use them.
"""
from __future__ import annotations

import numpy as np
import torch

from pare_demo.body.joint_names import SMPL_FLIP_PERMUTATION

_MIRROR_X = torch.tensor([-1.0, 1.0, 1.0])
MIRROR_AXIS_ANGLE = np.array([1.0, -1.0, -1.0], dtype=np.float32)  # per component, under x -> -x
_MIRROR_CAMERA = torch.tensor([1.0, -1.0, 1.0])  # (s, tx, ty): only tx changes sign


def mirror_pose(pose: torch.Tensor) -> torch.Tensor:
    """(B, 24, 3, 3) rotation matrices of bodies -> those of their mirror images. Its own inverse."""
    mirror = torch.diag(_MIRROR_X.to(pose))
    return mirror @ pose[:, list(SMPL_FLIP_PERMUTATION)] @ mirror


def mirror_axis_angle(pose: np.ndarray) -> np.ndarray:
    """(..., 24, 3) axis-angle SMPL poses -> those of their mirror images. Its own inverse."""
    return (np.asarray(pose)[..., list(SMPL_FLIP_PERMUTATION), :] * MIRROR_AXIS_ANGLE).astype(np.float32)


def mirror_camera(cam: torch.Tensor) -> torch.Tensor:
    """(B, 3) weak-perspective (s, tx, ty) -> the same camera for the mirrored crop."""
    return cam * _MIRROR_CAMERA.to(cam)
