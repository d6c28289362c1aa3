"""The test-time fit of the projected joints to the part-attention keypoints."""
import numpy as np
import pytest
import torch

from pare_demo.body import load_body_model
from pare_demo.fitting import FitSettings, attention_keypoints, fit_to_attention, posed_joints, rest_joints
from pare_demo.geometry import axis_angle_to_rotmat, project_to_crop
from pare_demo.models.head import cell_centres


@pytest.fixture(scope="module")
def body_model():
    return load_body_model("open")


def random_pose(batch: int, spread: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pose = axis_angle_to_rotmat(torch.randn(batch, 24, 3, generator=g) * spread)
    upright = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # body Y up -> camera y down, facing the camera
    pose[:, 0] = upright @ pose[:, 0]
    return pose


def test_forward_kinematics_gives_the_body_models_joints(body_model):
    pose = random_pose(3, 0.4, 0)
    betas = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    body = body_model(betas=betas, global_orient=pose[:, :1], body_pose=pose[:, 1:], pose2rot=False)
    ours = posed_joints(pose, rest_joints(body_model, betas), body_model.parents.tolist())
    torch.testing.assert_close(ours, body.joints[:, :24], atol=1e-5, rtol=0)


def gaussian_maps(points: torch.Tensor, size: int = 32, sigma_cells: float = 1.0) -> torch.Tensor:
    """(B, J, 2) points in [-1, 1] -> (B, J, size, size) maps summing to 1, peaked there."""
    c = cell_centres(size)
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    d2 = (xs - points[..., 0, None, None]) ** 2 + (ys - points[..., 1, None, None]) ** 2
    maps = torch.exp(-d2 / (2 * (sigma_cells * 2 / size) ** 2))
    return maps / maps.sum((-2, -1), keepdim=True)


def test_keypoints_are_sub_cell_and_ignore_a_second_mode():
    """The keypoint of a blob between cells is the blob's centre, not the nearest cell, and a
    weaker second blob far away does not pull it (the whole map's centre of mass would)."""
    point = torch.tensor([[[0.113, -0.271]]])
    far = torch.tensor([[[-0.7, 0.6]]])
    maps = 0.7 * gaussian_maps(point) + 0.3 * gaussian_maps(far)
    keypoints, weights = attention_keypoints(maps, window=2)
    assert (keypoints - point).abs().max() < 0.01
    assert 0.6 < weights.item() < 0.7   # the window holds most of the strong blob only


def test_the_fit_moves_the_projection_onto_the_keypoints_and_stays_near_the_pose(body_model):
    """Keypoints drawn from a slightly different pose and camera: the fitted projection lands
    on them, and the fitted pose is nearer that pose than the start was."""
    start, truth = random_pose(2, 0.3, 2), random_pose(2, 0.3, 2)
    change = axis_angle_to_rotmat(torch.randn(2, 24, 3, generator=torch.Generator().manual_seed(3)) * 0.15)
    truth = truth @ change
    betas = torch.zeros(2, 10)
    cam_start = torch.tensor([[0.9, 0.0, 0.0], [0.8, 0.05, -0.02]])
    cam_truth = cam_start + torch.tensor([[0.08, 0.04, -0.03], [-0.05, -0.02, 0.05]])
    rest = rest_joints(body_model, betas)
    parents = body_model.parents.tolist()
    target = project_to_crop(posed_joints(truth, rest, parents), cam_truth)
    maps = gaussian_maps(target)

    def error(pose, cam):
        return (project_to_crop(posed_joints(pose, rest, parents), cam) - target).norm(dim=-1).mean().item()

    pose, cam = fit_to_attention(body_model, start, betas, cam_start, maps)
    assert error(pose, cam) < 0.2 * error(start, cam_start)
    assert error(pose, cam) < 0.02              # about 2 px in a 224 px crop
    # Weaker with a strong prior: it stays closer to where it started.
    held, _ = fit_to_attention(body_model, start, betas, cam_start, maps, FitSettings(pose_prior=10.0))
    moved = (pose - start).abs().mean()
    assert (held - start).abs().mean() < 0.5 * moved
    assert error(held, cam_start) > error(pose, cam)


def test_each_body_is_fitted_as_if_alone(body_model):
    """A body's fit does not depend on who else is in the batch (L-BFGS's line search is
    shared by everything it optimises together)."""
    start, truth = random_pose(3, 0.3, 4), random_pose(3, 0.3, 5)
    betas = torch.zeros(3, 10)
    cam = torch.tensor([[0.9, 0.0, 0.0], [0.7, 0.1, 0.05], [1.1, -0.1, 0.0]])
    rest = rest_joints(body_model, betas)
    maps = gaussian_maps(project_to_crop(posed_joints(truth, rest, body_model.parents.tolist()), cam * 1.05))
    together_pose, together_cam = fit_to_attention(body_model, start, betas, cam, maps)
    for i in range(3):
        alone_pose, alone_cam = fit_to_attention(body_model, start[i:i + 1], betas[i:i + 1], cam[i:i + 1],
                                                 maps[i:i + 1])
        torch.testing.assert_close(together_pose[i:i + 1], alone_pose)
        torch.testing.assert_close(together_cam[i:i + 1], alone_cam)


def test_the_fit_runs_inside_inference_mode(body_model):
    """The predictor calls it under torch.inference_mode: it still optimises."""
    pose = random_pose(1, 0.2, 4)
    maps = gaussian_maps(torch.rand(1, 24, 2, generator=torch.Generator().manual_seed(5)) * 0.6 - 0.3)
    with torch.inference_mode():
        fitted, cam = fit_to_attention(body_model, pose, torch.zeros(1, 10), torch.tensor([[0.9, 0.0, 0.0]]), maps)
    assert not torch.equal(fitted, pose) and torch.isfinite(cam).all()
    np.testing.assert_allclose((fitted.transpose(-1, -2) @ fitted).numpy(), np.broadcast_to(np.eye(3), fitted.shape),
                               atol=1e-5)


@pytest.mark.slow
def test_the_predictor_fits_by_default_and_can_be_told_not_to():
    """On a real photo, the bundled weights' projected joints lie nearer their own attention
    keypoints with the fit than without, and the switch is honoured."""
    from skimage import data

    from pare_demo.crop import crop_to_image_points
    from pare_demo.predictor import Predictor

    predictor = Predictor(device="cpu", backend="torch")
    assert predictor.fit and "fit to attention on" in predictor.description
    image = data.astronaut()
    fitted = predictor.predict(image).people[0]
    predictor.fit = False
    plain = predictor.predict(image).people[0]

    def distance(p):
        keypoints, weights = attention_keypoints(torch.from_numpy(p.part_attention)[None])
        in_crop = (keypoints[0].numpy() + 1) / 2 * p.crop.out_size - 0.5
        d = np.linalg.norm(crop_to_image_points(in_crop, p.crop) - p.joints2d, axis=1)
        return float((d * weights[0].numpy()).sum() / weights[0].numpy().sum())

    assert distance(fitted) < 0.6 * distance(plain)
    np.testing.assert_allclose(fitted.betas, plain.betas, atol=1e-5)
