import math

import torch

from pare_demo import geometry as g
from pare_demo import metrics


def test_pa_mpjpe_zero_for_similarity_copy():
    torch.manual_seed(0)
    target = torch.randn(3, 14, 3)
    rotation = g.axis_angle_to_rotmat(torch.randn(3, 3))
    pred = 1.7 * target @ rotation.transpose(-1, -2) + torch.tensor([0.3, -2.0, 5.0])
    assert torch.all(metrics.pa_mpjpe(pred, target) < 1e-3)
    # The same copy is far off without alignment.
    assert torch.all(metrics.mpjpe(pred, target) > 100)


def test_pa_mpjpe_hand_computed():
    """Square in the XY plane; pred lifts two corners by +1 m and two by -1 m in z.
    The best similarity is the identity rotation with scale 1/(1+1) = 0.5, leaving
    every corner sqrt(0.5^2 + 0.5^2) m off."""
    target = torch.tensor([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
    pred = target + torch.tensor([[[0, 0, 1.0], [0, 0, 1], [0, 0, -1], [0, 0, -1]]])
    assert torch.allclose(metrics.pa_mpjpe(pred, target),
                          torch.tensor([1000 * math.sqrt(0.5)]), atol=1e-2)


def test_mpjpe_is_pelvis_aligned_and_in_mm():
    target = torch.zeros(1, 14, 3)
    target[0, 2, 0], target[0, 3, 0] = -0.1, 0.1  # hips
    pred = target + torch.tensor([5.0, 5.0, 5.0])  # a global shift is no error
    assert torch.allclose(metrics.mpjpe(pred, target), torch.zeros(1), atol=1e-4)
    pred[0, 0, 1] += 0.014  # one of 14 joints 14 mm off -> 1 mm mean
    assert torch.allclose(metrics.mpjpe(pred, target), torch.ones(1), atol=1e-3)
    per_joint = metrics.mpjpe_per_joint(pred, target)
    assert per_joint.shape == (1, 14) and abs(per_joint[0, 0].item() - 14.0) < 1e-2


def test_pve_uses_each_meshs_own_pelvis():
    joints = torch.zeros(1, 14, 3)
    vertices = torch.rand(1, 100, 3)
    shift = torch.tensor([1.0, 2.0, 3.0])
    assert metrics.pve(vertices + shift, vertices, joints + shift, joints).item() < 1e-3
    # 2 cm along x on every vertex -> 20 mm.
    off = torch.tensor([0.02, 0.0, 0.0])
    assert abs(metrics.pve(vertices + off, vertices, joints, joints).item() - 20.0) < 1e-3
