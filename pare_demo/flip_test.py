"""Mirror images of SMPL bodies, and the flip test built on them: run the network on a
crop and on its mirror image, map the mirrored prediction back, and average the two.

A mirror image of a person is a person too, so the network's prediction on it, mirrored
back, is a second estimate of the same body whose errors are partly independent of the
first. Mirroring swaps left and right joints and conjugates every rotation with
diag(-1, 1, 1) (x is left-right in both the crop camera and the body's rest frame),
which keeps an axis-angle's x component and negates y and z. Training's flip augmentation
and its mirrored key poses use the same functions.

The part-attention maps and part logits are kept from the unmirrored crop: they show what
the network looked at in the picture the user gave it.
"""
from __future__ import annotations

import numpy as np
import torch

from pare_demo.body.joint_names import SMPL_FLIP_PERMUTATION
from pare_demo.geometry import nearest_rotation

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


def average_with_mirror(out: dict[str, torch.Tensor], mirrored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Network outputs on crops and on the same crops mirrored -> the averaged output.
    Rotations are averaged as matrices and projected back onto rotations."""
    return {
        **out,
        "pose": nearest_rotation(out["pose"] + mirror_pose(mirrored["pose"])),
        "betas": (out["betas"] + mirrored["betas"]) / 2,
        "cam": (out["cam"] + mirror_camera(mirrored["cam"])) / 2,
    }
