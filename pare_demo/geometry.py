"""Rotations and cameras: pure, batch-first torch functions.

Conventions follow PARE: the network's 6D rotation is read as a 3x2 matrix whose two
columns are Gram-Schmidt'ed; the crop camera is weak perspective (s, tx, ty) for a
224 px crop seen by a 5000 px focal length.
"""
from __future__ import annotations

import numpy as np
import roma
import torch
import torch.nn.functional as F

CROP_FOCAL_LENGTH = 5000.0
CROP_SIZE = 224
# Our camera frame (OpenCV: x right, y down, +Z forward) <-> OpenGL's and glTF's (y up, -Z
# forward): renderers, 3D plots and mesh exports turn points with it. Its own inverse.
GL_FLIP = np.diag([1.0, -1.0, -1.0])


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3). The 6 numbers are a row-major 3x2 matrix (PARE's layout)."""
    m = x.reshape(*x.shape[:-1], 3, 2)
    b1 = F.normalize(m[..., 0], dim=-1)
    a2 = m[..., 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, row-major, inverse of rot6d_to_rotmat."""
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], 6)


def axis_angle_to_rotmat(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3)."""
    return roma.rotvec_to_rotmat(axis_angle)


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3)."""
    return roma.rotmat_to_rotvec(rotmat)


def nearest_rotation(matrices: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> the closest rotation matrices (Frobenius norm). Of a mean of
    rotations: their chordal mean."""
    return roma.special_procrustes(matrices)


def weak_perspective_to_translation(
    cam: torch.Tensor, focal_length: float = CROP_FOCAL_LENGTH, crop_size: int = CROP_SIZE
) -> torch.Tensor:
    """Crop camera (B, 3) = (s, tx, ty) -> camera translation (B, 3) = (tx, ty, tz).

    tz puts the body at the depth where a perspective camera of `focal_length` sees it
    at scale s over the crop: tz = 2 f / (crop_size * s)."""
    s, tx, ty = cam.unbind(-1)
    tz = 2.0 * focal_length / (crop_size * s + 1e-9)
    return torch.stack((tx, ty, tz), dim=-1)


def crop_to_full_camera(
    cam: torch.Tensor,
    box_center: torch.Tensor,
    box_size: torch.Tensor,
    image_size: torch.Tensor,
    focal_length: torch.Tensor | float,
) -> torch.Tensor:
    """Crop camera (B, 3) -> translation (B, 3) in the full image's camera.

    The full-image camera has `focal_length` px and its principal point at the image
    centre. box_center (B, 2) and box_size (B,) are in full-image pixels; image_size
    (B, 2) is (width, height). The body keeps its apparent size and lands on the box."""
    s, tx, ty = cam.unbind(-1)
    bs = box_size * s + 1e-9
    tz = 2.0 * focal_length / bs
    half = image_size / 2.0
    tx_full = tx + 2.0 * (box_center[..., 0] - half[..., 0]) / bs
    ty_full = ty + 2.0 * (box_center[..., 1] - half[..., 1]) / bs
    return torch.stack((tx_full, ty_full, tz), dim=-1)


def perspective_projection(
    points: torch.Tensor,
    translation: torch.Tensor,
    focal_length: torch.Tensor | float,
    principal_point: torch.Tensor | tuple[float, float],
    rotation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Project (B, N, 3) points with camera rotation (B, 3, 3, optional), translation
    (B, 3), focal length (scalar or (B,)) and principal point ((2,) or (B, 2)) to (B, N, 2)
    pixels. The camera looks down +Z with image y pointing down the +Y axis."""
    if rotation is not None:
        points = points @ rotation.transpose(-1, -2)
    points = points + translation[:, None, :]
    f = torch.as_tensor(focal_length, dtype=points.dtype, device=points.device)
    f = f.reshape(-1, 1, 1) if f.ndim else f
    c = torch.as_tensor(principal_point, dtype=points.dtype, device=points.device)
    c = c.reshape(-1, 1, 2)
    return f * points[..., :2] / points[..., 2:3] + c


def project_to_crop(joints: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) joints seen by the crop camera (weak perspective s, tx, ty) -> (B, J, 2) in
    crop units of [-1, 1]: what the 2D loss and the fit to attention compare."""
    translation = weak_perspective_to_translation(cam)
    return perspective_projection(joints, translation, CROP_FOCAL_LENGTH, (0.0, 0.0)) / (CROP_SIZE / 2)
