import os
import pickle

import pytest
import torch

from pare_demo import paths
from pare_demo.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from pare_demo.models import PARE, default_config, load_model


@pytest.mark.parametrize("backbone, size", [("mobilenetv3", 28), ("resnet50", 56)])
def test_output_shapes_and_ranges(backbone, size):
    torch.manual_seed(0)
    model = PARE(default_config(backbone)).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 224, 224))
    assert out.pose.shape == (2, 24, 3, 3) and out.betas.shape == (2, 10) and out.cam.shape == (2, 3)
    assert out.part_logits.shape == (2, 25, size, size)
    assert out.part_attention.shape == (2, 24, size, size)
    eye = torch.eye(3).expand(2, 24, 3, 3)
    assert torch.allclose(out.pose.transpose(-1, -2) @ out.pose, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(out.pose), torch.ones(2, 24), atol=1e-5)
    assert torch.allclose(out.part_attention.sum(dim=(2, 3)), torch.ones(2, 24), atol=1e-5)
    assert (out.part_attention >= 0).all()


def test_study_variant_pools_shape_from_downsampled_maps():
    torch.manual_seed(0)
    official = PARE(default_config("mobilenetv3")).eval()
    cheaper = PARE(default_config("mobilenetv3", shape_pool_factor=2)).eval()
    cheaper.load_state_dict(official.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        a, b = official(x), cheaper(x)
    assert torch.equal(a.pose, b.pose)  # pose keeps the full-resolution attention
    assert not torch.allclose(a.betas, b.betas)


def test_checkpoint_round_trip(tmp_path, small_checkpoint):
    model = load_model(small_checkpoint)
    assert not model.training and model.config.backbone == "mobilenetv3"
    again = tmp_path / "again.pt"
    save_checkpoint(again, model.config.to_dict(), model.state_dict())
    reloaded = load_model(again)
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(model(x).pose, reloaded(x).pose)


class RunsCode:
    def __reduce__(self):
        return (exec, ("import builtins; builtins._pare_demo_pwned = True",))


def test_safe_loading_refuses_pickled_code(tmp_path):
    import builtins

    path = tmp_path / "evil.pt"
    torch.save({"format": "pare-demo-checkpoint", "version": 1, "config": RunsCode(), "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="would need code"):
        load_checkpoint(path)
    assert not getattr(builtins, "_pare_demo_pwned", False)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    assert not getattr(builtins, "_pare_demo_pwned", False)


def test_hostile_checkpoint_is_refused_as_code(hostile_checkpoints):
    """torch 2.14 words a blocked module ('posix') differently from another global: both are code."""
    files, marker = hostile_checkpoints
    for path in files:
        with pytest.raises(CheckpointError, match="refusing to run code in it") as err:
            load_checkpoint(path)
        assert f"{os.system.__module__}.system" in str(err.value) and "truncated" not in str(err.value)
    assert not marker.exists()


def test_malformed_checkpoints_say_what_is_wrong(malformed_checkpoints):
    for path, reason in malformed_checkpoints:
        with pytest.raises(CheckpointError, match=reason):
            load_model(path)


def test_corrupt_truncated_and_wrong_kind(tmp_path, small_checkpoint):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(small_checkpoint.read_bytes()[:20000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    empty, text = tmp_path / "empty.pt", tmp_path / "text.pt"
    empty.write_bytes(b"")
    text.write_text("not a checkpoint")
    for path in (empty, text):
        with pytest.raises(CheckpointError, match="truncated or not a PyTorch file") as err:
            load_checkpoint(path)
        assert "weights_only" not in str(err.value)  # torch's advice to load it unsafely is left out
    wrong = tmp_path / "weights_only.pt"
    torch.save({"state_dict": {}, "pytorch-lightning_version": "1.1.8"}, wrong)
    with pytest.raises(CheckpointError, match="convert_official"):
        load_checkpoint(wrong)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_mismatched_weights_are_reported(tmp_path, small_checkpoint):
    ckpt = load_checkpoint(small_checkpoint)
    config = dict(ckpt["config"], backbone="resnet50")
    bad = tmp_path / "mismatch.pt"
    save_checkpoint(bad, config, ckpt["state_dict"])
    with pytest.raises(CheckpointError, match="does not fit a resnet50 PARE"):
        load_model(bad)


def test_checkpoints_with_the_trunks_old_landmark_regressor_still_load(tmp_path):
    """BlazePose PAREs saved while the trunk carried the landmark regressor (the step-2
    bundled weights) load: those tensors are ignored; any other stray or missing tensor is
    still refused."""
    torch.manual_seed(0)
    model = PARE(default_config("blazepose"))
    legacy = {f"backbone.{k}" for k in model.backbone.legacy_keys}
    assert legacy and not legacy & set(model.state_dict())
    original = torch.load(paths.BLAZEPOSE_LANDMARKS, map_location="cpu", weights_only=True)["state_dict"]
    state = dict(model.state_dict(), **{k: original[k.removeprefix("backbone.net.")] for k in legacy})
    loaded = load_model(save_checkpoint(tmp_path / "old.pt", model.config.to_dict(), state))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    stray = dict(state, **{"backbone.net.ops.op999.conv.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="1 unexpected"):
        load_model(save_checkpoint(tmp_path / "stray.pt", model.config.to_dict(), stray))
    del state["head.cam_regressor.weight"]
    with pytest.raises(CheckpointError, match="1 missing tensors"):
        load_model(save_checkpoint(tmp_path / "broken.pt", model.config.to_dict(), state))


def test_pose_bias_starts_from_an_upright_person():
    torch.manual_seed(0)
    model = PARE(default_config("mobilenetv3", pose_bias=True)).eval()
    with torch.no_grad():
        model.head.pose_weight.zero_()
        out = model(torch.randn(1, 3, 224, 224))
    assert torch.allclose(out.pose[0, 0], torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-6)
    assert torch.allclose(out.pose[0, 1:], torch.eye(3).expand(23, 3, 3), atol=1e-6)
    # Without the flag the head keeps the official layout (no extra tensor).
    assert "head.pose_bias" not in PARE(default_config("mobilenetv3")).state_dict()


def test_attention_centres_are_each_maps_centre_of_mass():
    from pare_demo.models.head import attention_centres

    attention = torch.zeros(1, 2, 4, 8)
    attention[0, 0, 1, 6] = 1.0                                   # one cell: its pixel centre
    attention[0, 1, 0, 0] = attention[0, 1, 3, 2] = 0.5           # two cells: halfway
    centres = attention_centres(attention)[0]
    assert torch.allclose(centres[0], torch.tensor([(6.5 * 2 / 8) - 1, (1.5 * 2 / 4) - 1]))
    assert torch.allclose(centres[1], torch.tensor([(1.5 * 2 / 8) - 1, (2.0 * 2 / 4) - 1]))


def test_skeleton_features_keep_the_pose_apart_from_place_and_size():
    from pare_demo.models.head import skeleton_features

    torch.manual_seed(0)
    centres = torch.rand(3, 24, 2) - 0.5
    moved = centres * 0.5 + torch.tensor([0.2, -0.1])
    a, b = skeleton_features(centres), skeleton_features(moved)
    assert torch.allclose(a[:, :48], b[:, :48], atol=1e-5)
    assert torch.allclose(b[:, 48], a[:, 48] * 0.5)
    mirrored = skeleton_features(centres * torch.tensor([-1.0, 1.0]))
    assert not torch.allclose(a[:, :48], mirrored[:, :48])


def test_skeleton_branch_starts_at_zero_and_then_reads_the_part_centres(monkeypatch):
    """Added to trained weights it changes nothing until trained; once trained, the pose
    follows the part centres."""
    import pare_demo.models.head as head

    torch.manual_seed(0)
    plain = PARE(default_config("mobilenetv3", pose_bias=True)).eval()
    with_branch = PARE(default_config("mobilenetv3", pose_bias=True, skeleton_hidden=32)).eval()
    missing, unexpected = with_branch.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("head.skeleton_mlp.") for k in missing)
    images = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(plain(images).pose, with_branch(images).pose, atol=1e-6)
        with_branch.head.skeleton_mlp[-1].weight.normal_(0, 0.1)
        before, plain_before = with_branch(images).pose, plain(images).pose
        centres = head.attention_centres
        monkeypatch.setattr(head, "attention_centres", lambda a: centres(a) * torch.linspace(0.5, 1.5, 24)[:, None])
        after, plain_after = with_branch(images).pose, plain(images).pose
    assert not torch.allclose(before, after, atol=1e-4)
    assert torch.equal(plain_before, plain_after)
