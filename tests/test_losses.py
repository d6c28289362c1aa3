import torch

from training.losses import LossWeights, pare_loss, part_attention_loss, part_centres_loss


def peaked_logits(points, size=20, height=8.0):
    """(B=1, 25, size, size) logits whose part channels peak at the given cells (x, y)."""
    logits = torch.zeros(1, 25, size, size)
    for part, (x, y) in enumerate(points):
        logits[0, part + 1, y, x] = height
    return logits


def cell_centre(x, y, size=20):
    return [(x + 0.5) * 2 / size - 1, (y + 0.5) * 2 / size - 1]


def test_part_attention_loss_is_zero_on_the_target_and_grows_with_distance():
    size = 20
    joints = torch.tensor([[cell_centre(3 + i % 12, 4 + i // 12 * 9) for i in range(24)]])
    visible = torch.ones(1, 24, dtype=torch.bool)

    # Logits that are the log of the Gaussian target itself: no divergence.
    xs = (torch.arange(size) + 0.5) * 2 / size - 1
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    sigma = 2 / size
    target_logits = torch.zeros(1, 25, size, size)
    for j in range(24):
        x, y = joints[0, j]
        target_logits[0, j + 1] = -((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma ** 2)
    assert part_attention_loss(target_logits, joints, visible).item() < 1e-5

    cells = [(3 + i % 12, 4 + i // 12 * 9) for i in range(24)]
    on_joint = part_attention_loss(peaked_logits(cells), joints, visible)
    one_off = part_attention_loss(peaked_logits([(x + 1, y) for x, y in cells]), joints, visible)
    far_off = part_attention_loss(peaked_logits([(x + 5, y) for x, y in cells]), joints, visible)
    assert 0 < on_joint < one_off < far_off


def test_part_attention_loss_ignores_invisible_joints_and_is_off_by_default():
    cells = [(5, 5)] * 24
    joints = torch.tensor([[cell_centre(5, 5)] * 24])
    visible = torch.ones(1, 24, dtype=torch.bool)
    wrong_first = peaked_logits([(15, 15)] + cells[1:])
    assert part_attention_loss(wrong_first, joints, visible) > part_attention_loss(peaked_logits(cells), joints, visible)
    visible[0, 0] = False
    torch.testing.assert_close(part_attention_loss(wrong_first, joints, visible),
                               part_attention_loss(peaked_logits(cells), joints, visible))

    b = 2
    pred = {"joints3d": torch.randn(b, 24, 3), "cam": torch.tensor([[0.9, 0.0, 0.0]] * b),
            "pose": torch.eye(3).repeat(b, 24, 1, 1), "betas": torch.zeros(b, 10),
            "part_logits": torch.randn(b, 25, 20, 20, requires_grad=True)}
    target = {"joints3d": torch.randn(b, 24, 3), "joints2d": torch.rand(b, 24, 2) * 2 - 1,
              "joints2d_visible": torch.ones(b, 24, dtype=torch.bool), "pose": torch.eye(3).repeat(b, 24, 1, 1),
              "betas": torch.zeros(b, 10), "has_3d": torch.ones(b, dtype=torch.bool)}
    study = pare_loss(pred, target)
    assert "part_attention" not in study
    with_part = pare_loss(pred, target, LossWeights(part_attention=0.5))
    torch.testing.assert_close(with_part["total"], study["total"] + 0.5 * with_part["part_attention"])
    with_part["total"].backward()
    assert pred["part_logits"].grad.abs().sum() > 0


def test_part_centres_loss_is_the_mean_distance_per_coordinate_to_visible_joints():
    cells = [(3 + i % 12, 4 + i // 12 * 9) for i in range(24)]
    attention = peaked_logits(cells, height=60.0)[:, 1:].flatten(2).softmax(-1).reshape(1, 24, 20, 20)
    joints = torch.tensor([[cell_centre(x, y) for x, y in cells]])
    visible = torch.ones(1, 24, dtype=torch.bool)
    assert part_centres_loss(attention, joints, visible).item() < 1e-6
    moved = joints.clone()
    moved[0, 0, 0] += 0.3                  # one joint, one coordinate: 0.3 over 48 coordinates
    torch.testing.assert_close(part_centres_loss(attention, moved, visible), torch.tensor(0.3 / 48))
    visible[0, 0] = False                  # not counted when not visible
    assert part_centres_loss(attention, moved, visible).item() < 1e-6

    b = 2
    pred = {"joints3d": torch.randn(b, 24, 3), "cam": torch.tensor([[0.9, 0.0, 0.0]] * b),
            "pose": torch.eye(3).repeat(b, 24, 1, 1), "betas": torch.zeros(b, 10),
            "part_attention": torch.rand(b, 24, 20, 20).flatten(2).softmax(-1).reshape(b, 24, 20, 20)}
    target = {"joints3d": torch.randn(b, 24, 3), "joints2d": torch.rand(b, 24, 2) * 2 - 1,
              "joints2d_visible": torch.ones(b, 24, dtype=torch.bool), "pose": torch.eye(3).repeat(b, 24, 1, 1),
              "betas": torch.zeros(b, 10), "has_3d": torch.ones(b, dtype=torch.bool)}
    assert "part_centres" not in pare_loss(pred, target)
    with_centres = pare_loss(pred, target, LossWeights(part_centres=2.0))
    torch.testing.assert_close(with_centres["total"], pare_loss(pred, target)["total"] + 2.0 * with_centres["part_centres"])
