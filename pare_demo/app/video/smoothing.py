"""One track's pose, shape and camera smoothed over time (a centred window, so no lag).

    pose, betas, cam_translation = Smoother()(frames, pose, betas, cam_translation)
"""
from __future__ import annotations

import numpy as np
import torch

from pare_demo.geometry import rot6d_to_rotmat, rotmat_to_rot6d


class Smoother:
    """Centred Gaussian smoothing over time of one track's pose, shape and camera.

    Rotations are averaged in the 6D representation (two matrix columns) and
    Gram-Schmidt'ed back, so they stay proper rotations. Shape gets a wider window: a
    person's body does not change during a clip. Frames a track missed are simply absent
    (weights follow the frame numbers). enabled=False returns the inputs unchanged."""

    def __init__(self, enabled: bool = True, sigma: float = 2.0, betas_sigma: float = 8.0):
        self.enabled, self.sigma, self.betas_sigma = enabled, sigma, betas_sigma

    def __call__(self, frames, pose, betas, cam_translation):
        """frames (T,) increasing frame numbers; pose (T, 24, 3, 3); betas (T, 10);
        cam_translation (T, 3). Returns (pose, betas, cam_translation), smoothed."""
        if not self.enabled:
            return pose, betas, cam_translation
        frames = np.asarray(frames, dtype=np.float64)
        sixd = rotmat_to_rot6d(torch.as_tensor(pose, dtype=torch.float64)).numpy()
        sixd = _gaussian(frames, sixd, self.sigma)
        pose = rot6d_to_rotmat(torch.from_numpy(sixd)).numpy().astype(np.float32)
        betas = _gaussian(frames, np.asarray(betas, np.float64), self.betas_sigma).astype(np.float32)
        cam = _gaussian(frames, np.asarray(cam_translation, np.float64), self.sigma).astype(np.float32)
        return pose, betas, cam


def _gaussian(times: np.ndarray, values: np.ndarray, sigma: float) -> np.ndarray:
    """Each row of values (T, ...) replaced by the Gaussian-weighted mean of the rows within
    3 sigma of its time."""
    dt = (times[:, None] - times[None, :]) / sigma
    weights = np.exp(-0.5 * dt ** 2) * (np.abs(dt) <= 3)
    weights /= weights.sum(1, keepdims=True)
    return (weights @ values.reshape(len(values), -1)).reshape(values.shape)
