import math

import torch

from pare_demo import geometry as g


def test_rot6d_round_trip_and_orthonormal():
    torch.manual_seed(0)
    rotmat = g.axis_angle_to_rotmat(torch.randn(64, 3))
    back = g.rot6d_to_rotmat(g.rotmat_to_rot6d(rotmat))
    assert torch.allclose(back, rotmat, atol=1e-5)
    # Any 6 numbers give a proper rotation.
    r = g.rot6d_to_rotmat(torch.randn(64, 6))
    eye = torch.eye(3).expand(64, 3, 3)
    assert torch.allclose(r.transpose(-1, -2) @ r, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(64), atol=1e-5)


def test_rot6d_layout_of_known_rotation():
    # 90 degrees about Z: columns are (0,1,0), (-1,0,0), (0,0,1).
    rotmat = g.axis_angle_to_rotmat(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    six = g.rotmat_to_rot6d(rotmat)
    # Row-major 3x2 of the first two columns: [c1x, c2x, c1y, c2y, c1z, c2z].
    assert torch.allclose(six, torch.tensor([[0.0, -1.0, 1.0, 0.0, 0.0, 0.0]]), atol=1e-6)
    # Non-normalised, non-orthogonal input is Gram-Schmidt'ed column by column.
    r = g.rot6d_to_rotmat(torch.tensor([[0.0, 3.0, 2.0, 5.0, 0.0, 0.0]]))
    expected = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]])
    assert torch.allclose(r, expected, atol=1e-6)


def test_axis_angle_round_trip():
    aa = torch.tensor([[0.3, -0.2, 0.5], [1.0, 2.0, -0.5], [0.0, 0.0, 0.0]])
    assert torch.allclose(g.rotmat_to_axis_angle(g.axis_angle_to_rotmat(aa)), aa, atol=1e-5)


def test_weak_perspective_translation():
    cam = torch.tensor([[0.8, 0.1, -0.2]])
    t = g.weak_perspective_to_translation(cam)
    assert torch.allclose(t, torch.tensor([[0.1, -0.2, 2 * 5000 / (224 * 0.8)]]))


def test_projection_of_known_points():
    points = torch.tensor([[[0.0, 0.0, 0.0], [1.0, -0.5, 0.0], [0.0, 0.0, 10.0]]])
    uv = g.perspective_projection(points, torch.tensor([[0.0, 0.0, 10.0]]), 1000.0, (320.0, 240.0))
    expected = torch.tensor([[[320.0, 240.0], [420.0, 190.0], [320.0, 240.0]]])
    assert torch.allclose(uv, expected)
    # A camera rotation of 180 degrees about Y mirrors x.
    rot = g.axis_angle_to_rotmat(torch.tensor([[0.0, math.pi, 0.0]]))
    uv = g.perspective_projection(points[:, 1:2], torch.tensor([[0.0, 0.0, 10.0]]), 1000.0,
                                  torch.tensor([[320.0, 240.0]]), rotation=rot)
    assert torch.allclose(uv, torch.tensor([[[220.0, 190.0]]]), atol=1e-3)


def test_crop_camera_matches_full_image_projection():
    """Projecting with the crop camera then mapping the crop to the image equals
    projecting with the full-image camera that crop_to_full_camera returns: exactly for
    points at the body's depth (z = 0); off that plane the crop camera is off-axis, which
    one translation only approximates, and the gap is (box centre - image centre) * z / depth."""
    torch.manual_seed(1)
    points = torch.randn(2, 30, 3) * 0.5
    points[:, :15, 2] = 0.0
    cam = torch.tensor([[0.9, 0.05, 0.1], [1.2, -0.1, 0.2]])
    box_center = torch.tensor([[400.0, 260.0], [150.0, 300.0]])
    box_size = torch.tensor([200.0, 120.0])
    image_size = torch.tensor([[640.0, 480.0], [640.0, 480.0]])
    crop_uv = g.perspective_projection(points, g.weak_perspective_to_translation(cam), 5000.0,
                                       (112.0, 112.0))
    in_image = box_center[:, None] + (crop_uv - 112.0) * (box_size[:, None, None] / 224.0)

    focal = 5000.0 * box_size / 224.0  # the focal length that keeps the crop's perspective
    t_full = g.crop_to_full_camera(cam, box_center, box_size, image_size, focal)
    full_uv = g.perspective_projection(points, t_full, focal, image_size / 2)
    assert torch.allclose(full_uv[:, :15], in_image[:, :15], atol=1e-3)
    depth = points[..., 2:3] + t_full[:, None, 2:3]
    gap = (box_center - image_size / 2)[:, None] * points[..., 2:3] / depth
    assert torch.allclose(full_uv, in_image - gap, atol=1e-3)


def test_nearest_rotation_of_two_summed_rotations_is_their_midpoint():
    """R + R exp(t k) projects to R exp(t/2 k): the chordal mean of two rotations is the
    geodesic midpoint."""
    torch.manual_seed(1)
    base = g.axis_angle_to_rotmat(torch.randn(5, 3))
    axis = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    angle = torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0])[:, None]
    other = base @ g.axis_angle_to_rotmat(axis * angle)
    mean = g.nearest_rotation(base + other)
    expected = base @ g.axis_angle_to_rotmat(axis * angle / 2)
    assert torch.allclose(mean, expected, atol=1e-5)
    assert torch.allclose(torch.det(mean), torch.ones(5), atol=1e-5)
    assert torch.allclose(g.nearest_rotation(base), base, atol=1e-5)
