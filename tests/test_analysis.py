"""What the app computes per image, and the engine that switches models under it."""
import json
import re

import numpy as np
import pytest

from pare_demo.app.analysis import DISPLAY_MAX_SIDE, analyse_image
from pare_demo.checkpoints import load_checkpoint, save_checkpoint
from pare_demo.app.engine import OUTPUT_SLOTS, Engine, training_summary
from pare_demo.images import ImageError


@pytest.fixture(scope="module")
def engine(small_checkpoint):
    engine = Engine(small_checkpoint)
    yield engine
    engine.close()


def test_tiny_images_are_refused_with_a_reason(engine):
    with pytest.raises(ImageError, match="10x10 pixels: too small"):
        analyse_image(engine.predictor, engine.renderer, np.zeros((10, 10, 3), np.uint8))


def test_a_60_megapixel_photo_is_drawn_at_display_size(engine, tmp_path):
    image = np.zeros((6000, 10000, 3), np.uint8)
    image[:, :, 1] = np.linspace(0, 255, 10000, dtype=np.uint8)  # something to look at
    box = np.array([[3000, 1000, 6000, 5800]])
    analysis = analyse_image(engine.predictor, engine.renderer, image, boxes=box, out_dir=tmp_path)
    person = analysis.people[0]
    assert analysis.result.image_size == (10000, 6000)
    np.testing.assert_allclose(person.bbox, box[0], atol=1e-6)  # full-image coordinates
    assert analysis.overlay.shape == analysis.keypoints.shape == (960, DISPLAY_MAX_SIDE, 3)
    # The display picture is the photo shrunk, so its colour ramp is unchanged in proportion.
    assert abs(int(analysis.image[480, 800, 1]) - 127) <= 2
    small = analysis.small_image()
    assert analysis.part_heatmap(0, "head").shape == small.shape == analysis.part_map(0).shape
    assert set(analysis.files) == {"glb", "obj", "json"} and all(p.parent == tmp_path for p in analysis.files.values())
    # The parameters name the body model their betas are for: the open model's are not SMPL's.
    params = json.loads(analysis.files["json"].read_text())
    assert [p["body_model"] for p in params] == ["open"] and params[0]["betas"] == pytest.approx(person.betas.tolist())


def test_engine_keeps_its_model_when_a_switch_fails(engine, tmp_path):
    before = engine.predictor
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert engine.load(broken) is False
    assert engine.predictor is before and "broken.pt" in engine.error
    assert "Could not switch" in engine.describe()


def test_engine_says_what_is_wrong_with_each_file_and_keeps_its_model(engine, malformed_checkpoints,
                                                                       hostile_checkpoints, small_checkpoint, tmp_path):
    before = engine.predictor
    hostile, marker = hostile_checkpoints
    # Reads as a checkpoint, but its network cannot run: the normalisation has one value, not three.
    config = dict(load_checkpoint(small_checkpoint)["config"], mean=[0.5])
    odd_mean = save_checkpoint(tmp_path / "odd_mean.pt", config, load_checkpoint(small_checkpoint)["state_dict"])
    cases = [*malformed_checkpoints, *[(path, "refusing to run code in it") for path in hostile],
             (odd_mean, "odd_mean.pt: RuntimeError")]
    for path, reason in cases:
        assert engine.load(path) is False, path.name
        assert engine.predictor is before
        assert re.search(reason, engine.error), (path.name, engine.error)
        assert "Could not switch" in engine.describe()
    assert not marker.exists()


def test_training_summary_says_what_the_checkpoint_meta_knows(engine):
    meta = {"source": "cpu_synthetic/phase2/epoch004-pa_mpjpe113.70.ckpt", "step": 4200, "val_pa_mpjpe_mm": 113.7,
            "test": {"mpjpe": 250.04, "pa_mpjpe": 110.26, "pve": 300.5, "num_frames": 1050,
                     "dataset_root": "/data/synth-test", "split": "test"}}
    assert training_summary(meta) == (
        "Trained: cpu_synthetic/phase2/epoch004-pa_mpjpe113.70.ckpt at step 4,200; validation PA-MPJPE 113.7 mm; "
        "on synth-test (test), 1,050 frames: MPJPE 250.0, PA-MPJPE 110.3, PVE 300.5 mm.")
    assert training_summary({"note": "untrained"}) == ""
    assert "Trained" not in engine.describe()  # the test checkpoint says nothing about training
    meta["test"]["flip_test"] = True
    assert "1,050 frames with the flip test: MPJPE 250.0" in training_summary(meta)


def test_flip_test_switch_holds_across_model_switches(engine, small_checkpoint):
    assert engine.predictor.flip_test and "flip test on" in engine.describe()
    try:
        engine.set_flip_test(False)
        assert not engine.predictor.flip_test and "flip test off" in engine.describe()
        assert engine.load(small_checkpoint) and not engine.predictor.flip_test
    finally:
        engine.set_flip_test(True)
    assert engine.predictor.flip_test


def test_engine_output_folders_rotate_and_start_empty(engine):
    first = engine.output_dir()
    (first / "old.glb").write_bytes(b"x")
    folders = [engine.output_dir() for _ in range(OUTPUT_SLOTS - 1)]
    assert first not in folders and len(set(folders)) == OUTPUT_SLOTS - 1
    again = engine.output_dir()  # the ring comes round: the old files are gone
    assert again == first and not any(again.iterdir())


def test_3d_keypoints_figure_shows_an_upright_person_head_up():
    """Predictions live in the camera frame (y down); the figure's vertical axis must be up."""
    from types import SimpleNamespace

    import torch

    from pare_demo.app.analysis import ImageAnalysis
    from pare_demo.body import SMPL_JOINT_NAMES, load_body_model

    body = load_body_model("open")
    # An upright person facing the camera, as the camera frame sees them: turned 180 degrees about x.
    joints = body(global_orient=torch.tensor([[np.pi, 0.0, 0.0]])).joints[0, :24].detach().numpy()
    result = SimpleNamespace(people=[SimpleNamespace(joints3d=joints)])
    analysis = ImageAnalysis(None, result, None, None, None, None, {}, "CPU")
    figure = analysis.skeleton_3d(0)
    markers = next(t for t in figure.data if t.mode == "markers")
    up = np.asarray(markers.z)  # plotly's vertical axis
    head, pelvis = SMPL_JOINT_NAMES.index("head"), SMPL_JOINT_NAMES.index("pelvis")
    assert up[head] - up[pelvis] > 0.3
    # A rotation, not a mirror: the person's left hand stays on the viewer's right.
    across = np.asarray(markers.x)
    assert across[SMPL_JOINT_NAMES.index("left_wrist")] > across[SMPL_JOINT_NAMES.index("right_wrist")]


def test_checkpoints_offered_come_from_the_checkpoint_folders(tmp_path, monkeypatch, small_checkpoint):
    import shutil

    from pare_demo import paths
    from pare_demo.app.engine import BUNDLED, available_checkpoints

    monkeypatch.setenv(paths.CHECKPOINTS_DIR_ENV, str(tmp_path))
    shutil.copyfile(small_checkpoint, tmp_path / "mine.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    found = available_checkpoints(extra=small_checkpoint)
    assert found["mine.pt"] == tmp_path / "mine.pt" and "notes.txt" not in found
    assert found[small_checkpoint.name] == small_checkpoint
    assert (BUNDLED in found) == paths.BUNDLED_CHECKPOINT.is_file()
    monkeypatch.delenv(paths.CHECKPOINTS_DIR_ENV)
    assert "mine.pt" not in available_checkpoints()
