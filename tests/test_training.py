import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_demo.body import load_body_model
from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.data.pw3d import camera_frame_pose, read_pw3d
from pare_demo.evaluation import evaluate_samples, summarize
from pare_demo.geometry import axis_angle_to_rotmat
from pare_demo.models import PareOutput
from pare_demo.predictor import Predictor
from training import synth
from training.datasets import NO_AUGMENTATION, Augmentation, CropDataset


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synth.generate(root, sequences=2, frames=4, seed=5, size=160, split="train")
    synth.generate(root, sequences=1, frames=4, seed=6, size=160, split="validation")
    return root


@pytest.fixture(scope="module")
def body_model():
    return load_body_model("open")


def test_synthetic_sequences_follow_the_3dpw_layout(synthetic):
    pkl = sorted((synthetic / "sequenceFiles" / "train").glob("*.pkl"))
    assert len(pkl) == 2
    seq = pickle.load(open(pkl[0], "rb"), encoding="latin1")
    for key in ("sequence", "genders", "betas", "poses", "trans", "cam_poses", "cam_intrinsics", "poses2d",
                "jointPositions", "campose_valid", "img_frame_ids"):
        assert key in seq
    assert seq["poses"][0].shape == (4, 72) and seq["cam_poses"].shape == (4, 4, 4)
    assert (synthetic / "imageFiles" / seq["sequence"] / "image_00003.jpg").is_file()
    # The stored 2D keypoints are the projection of the stored 3D joints.
    samples = read_pw3d(synthetic, "train")
    s = next(x for x in samples if x.sequence == seq["sequence"] and x.person == 0 and x.frame == 2)
    coco = seq["poses2d"][0][2]  # (3, 18): x, y, confidence
    for coco_index, name in ((7, "left_wrist"), (10, "right_ankle"), (2, "right_shoulder")):
        assert np.allclose(coco[:2, coco_index], s.joints2d[SMPL_JOINT_NAMES.index(name)], atol=1e-3)
    assert ((s.joints2d > -20) & (s.joints2d < 180)).all()  # the person is in the picture


def test_synthesis_is_deterministic_and_the_pose_set_is_used(tmp_path):
    runs = {"a": "key", "b": "key", "everyday": "everyday"}
    for name, poses in runs.items():
        synth.generate(tmp_path / name, sequences=1, frames=2, seed=9, size=96, split="test", poses=poses)
    pa, pb, pe = (pickle.load(open(next((tmp_path / n / "sequenceFiles" / "test").glob("*.pkl")), "rb")) for n in runs)
    assert np.array_equal(pa["poses"][0], pb["poses"][0]) and np.array_equal(pa["cam_poses"], pb["cam_poses"])
    # Same seed, another set of key poses to move through: other body poses.
    assert not np.allclose(pa["poses"][0][:, 3:], pe["poses"][0][:, 3:])


@pytest.mark.parametrize("lying", [0.0, 1.0])
def test_lying_sets_how_often_bodies_lie_down(tmp_path, lying):
    synth.generate(tmp_path, sequences=3, frames=1, seed=4, size=64, split="test", lying=lying)
    paths = sorted((tmp_path / "sequenceFiles" / "test").glob("*.pkl"))
    assert len(paths) == 3
    for path in paths:
        sequence = pickle.load(open(path, "rb"))
        for poses in sequence["poses"]:
            up = Rotation.from_rotvec(poses[0, :3]).apply([0.0, 1.0, 0.0])  # the body's head-up axis
            # Upright: tilted by at most 10 degrees about each of two axes; lying: turned 90 degrees
            # about one of them, give or take those tilts.
            assert (abs(up[1]) < 0.25) if lying else (up[1] > 0.96)


def test_lying_must_be_a_probability(tmp_path, capsys):
    with pytest.raises(ValueError, match="probability"):
        synth.generate(tmp_path, sequences=1, frames=1, seed=0, size=64, lying=1.5)
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path), "--lying", "-0.1"])
    assert "--lying is a probability" in capsys.readouterr().err
    assert not (tmp_path / "sequenceFiles").exists()   # refused before anything was rendered


def test_heads_have_a_face_and_hair(body_model):
    # Front and back of a head must look different, or a body seen from behind is
    # indistinguishable from one seen from the front.
    rest = body_model.v_template.numpy().astype(np.float64)
    labels = body_model.part_labels.numpy()
    head = labels == SMPL_JOINT_NAMES.index("head")
    x, y, z = (rest - rest[head][np.argmax(rest[head, 2])]).T  # from the nose tip
    for seed in range(6):
        rng = np.random.default_rng(seed)
        colors = synth.clothing_colors(rng, labels, rest)
        skin = colors[head].copy()
        synth.paint_head(rng, colors, rest, labels, hair_prob=1.0)
        eye = head & (np.abs(np.abs(x) - 0.032) < 0.004) & (np.abs(y - 0.034) < 0.003) & (z > -0.05)
        crown = head & (y > 0.1) & (z < -0.12)   # top of the back of the head
        cheek = head & (np.abs(x) > 0.045) & (np.abs(y) < 0.01) & (z > -0.06)
        assert eye.sum() >= 6 and crown.sum() >= 20 and cheek.sum() >= 20
        assert colors[eye].mean(1).max() < skin.mean(1).min()          # eyes darker than the face
        assert np.allclose(colors[crown], colors[crown][0])           # one hair colour ...
        assert not np.allclose(colors[crown][0], skin[0])             # ... that is not the skin
        assert np.allclose(colors[cheek], skin[0])                    # the cheeks stay skin


def _image_angle(vec):
    return np.degrees(np.arctan2(vec[1], vec[0]))


@pytest.mark.parametrize("augment", [NO_AUGMENTATION, Augmentation(flip=1.0, rotation_deg=25, scale=0, translate=0,
                                                                   color=0)])
def test_crop_targets_agree_with_the_3d_pose(synthetic, body_model, augment):
    """After flip and rotation, the 2D joints and the 3D pose still describe the same body:
    the pelvis -> head direction in the crop matches the posed body's, seen by the camera."""
    samples = [s for s in read_pw3d(synthetic, "train") if s.has_3d]
    dataset = CropDataset(samples, 128, augment, seed=1)
    for index in range(0, len(samples), 3):
        item = dataset[index]
        assert item["image"].shape == (3, 128, 128) and bool(item["has_3d"])
        with torch.no_grad():
            out = body_model(betas=item["betas"][None], global_orient=item["pose"][None, :1],
                             body_pose=item["pose"][None, 1:], pose2rot=False)
        j3 = out.joints[0, :24].numpy()
        head, pelvis = SMPL_JOINT_NAMES.index("head"), 0
        in_3d = _image_angle(j3[head, :2] - j3[pelvis, :2])
        in_2d = _image_angle((item["joints2d"][head] - item["joints2d"][pelvis]).numpy())
        assert abs((in_3d - in_2d + 180) % 360 - 180) < 12


@pytest.mark.slow
def test_short_training_lowers_the_loss(synthetic):
    from training.module import PareTraining
    from pare_demo.models import default_config

    torch.manual_seed(0)
    config = default_config("mobilenetv3").to_dict()
    config["input_size"] = 128
    module = PareTraining(config, lr=1e-3)
    samples = [s for s in read_pw3d(synthetic, "train") if s.has_3d][:8]
    batch = torch.utils.data.default_collate([CropDataset(samples, 128, NO_AUGMENTATION)[i] for i in range(8)])
    optimizer = module.configure_optimizers()
    losses = []
    for _ in range(12):
        *_, terms = module._step(batch)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        losses.append(float(terms["total"]))
    assert losses[-1] < 0.5 * losses[0]


def test_crops_use_the_networks_normalisation(synthetic):
    """BlazePose's trunk reads RGB in [0, 1]; the other backbones ImageNet-normalised crops."""
    samples = read_pw3d(synthetic, "train")[:1]
    plain = CropDataset(samples, 64, NO_AUGMENTATION, mean=(0, 0, 0), std=(1, 1, 1))[0]["image"]
    imagenet = CropDataset(samples, 64, NO_AUGMENTATION)[0]["image"]
    assert 0 <= plain.min() and plain.max() <= 1 and plain.max() > 0.5
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(imagenet, (plain - mean[:, None, None]) / std[:, None, None], atol=1e-5, rtol=1e-5)


def test_truncation_blacks_out_the_legs_and_keeps_their_3d_targets(synthetic):
    """truncate=1: every crop is black below a row between the pelvis and the lowest
    joint; the joints under it lose their 2D targets, the pose and shape stay."""
    samples = [s for s in read_pw3d(synthetic, "train") if s.has_3d][:6]
    plain = CropDataset(samples, 96, NO_AUGMENTATION, mean=(0, 0, 0), std=(1, 1, 1))
    cut = CropDataset(samples, 96, Augmentation(flip=0, rotation_deg=0, scale=0, translate=0, color=0,
                                                truncate=1.0), mean=(0, 0, 0), std=(1, 1, 1))
    for a, b in zip(plain, cut):
        # Rows black in the cut crop only (the crop may reach past the picture's edge).
        rows = ((b["image"].abs().sum(dim=(0, 2)) == 0) & (a["image"].abs().sum(dim=(0, 2)) > 0)).nonzero().flatten()
        row = int(rows.min())
        assert (b["image"][:, row:] == 0).all()  # all black from `row` down
        y = (a["joints2d"][:, 1] + 1) * 48  # crop pixels
        assert y[0] - 1 <= row <= y[a["joints2d_visible"]].max() + 1
        assert torch.equal(b["joints2d_visible"], a["joints2d_visible"] & (y < row))
        assert not torch.equal(b["joints2d_visible"], a["joints2d_visible"]) or row >= y.max()
        assert torch.equal(a["image"][:, :row], b["image"][:, :row])
        assert torch.equal(a["pose"], b["pose"]) and torch.equal(a["betas"], b["betas"])


@pytest.mark.slow
def test_a_frozen_backbone_stays_as_it_was(synthetic):
    """backbone_lr_scale=0 trains the head only: the trunk's weights do not move."""
    from training.module import PareTraining
    from pare_demo.models import default_config

    torch.manual_seed(0)
    config = default_config("mobilenetv3").to_dict()
    config["input_size"] = 96
    module = PareTraining(config, lr=1e-3, backbone_lr_scale=0.0)
    trunk = {k: v.clone() for k, v in module.model.backbone.state_dict().items()}
    head = {k: v.clone() for k, v in module.model.head.state_dict().items()}
    samples = [s for s in read_pw3d(synthetic, "train") if s.has_3d][:4]
    batch = torch.utils.data.default_collate([CropDataset(samples, 96, NO_AUGMENTATION)[i] for i in range(4)])
    optimizer = module.configure_optimizers()
    for _ in range(2):
        *_, terms = module._step(batch)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
    after = module.model.backbone.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in trunk.items() if v.is_floating_point())
    assert any(not torch.equal(v, module.model.head.state_dict()[k]) for k, v in head.items())


def tiny_config(synthetic, tmp_path, **train):
    """A training config of two 4-image steps per epoch on the synthetic fixture."""
    import yaml

    config = {
        "model": {"backbone": "mobilenetv3", "body_model": "open", "input_size": 96},
        "data": {"sources": [{"kind": "synthetic", "root": str(synthetic)}], "val_split": "validation", "val_limit": 4},
        "augment": {"flip": 0.5},
        "train": {"run_dir": str(tmp_path / "run"), "batch_size": 4, "lr": 1e-3, "epochs": 2,
                  "samples_per_epoch": 8, "top_k": 1, "workers": 0, "seed": 0, "log_every": 1, **train},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_train_only_source_adds_training_samples_not_validation(synthetic, tmp_path):
    """An extra set with no validation split: `validation: false` keeps it out of validation;
    without it, the missing split is an error naming the folder. MPII (2D only, SPIN's
    .npz layout here) trains and never validates, with no flag."""
    import yaml

    from training.config import TrainingConfig
    from training.train import build_loaders

    extra = tmp_path / "extra"
    synth.generate(extra, sequences=1, frames=3, seed=7, size=160, split="train")
    mpii = tmp_path / "mpii"
    (mpii / "images").mkdir(parents=True)
    np.savez(mpii / "mpii_train.npz", imgname=np.array(["images/a.jpg", "images/b.jpg"]),
             center=np.array([[80.0, 80.0], [60.0, 90.0]]), scale=np.array([0.6, 0.5]),
             part=np.ones((2, 24, 3)))
    config = yaml.safe_load(tiny_config(synthetic, tmp_path).read_text())
    config["train"]["samples_per_epoch"] = None
    config["data"]["sources"].insert(0, {"kind": "mpii", "root": str(mpii)})
    config["data"]["sources"].append({"kind": "synthetic", "root": str(extra), "validation": False})
    train_loader, val_loader = build_loaders(TrainingConfig.from_dict(config))
    train_counts = [len(ds) for ds in train_loader.dataset.datasets]
    assert train_counts == [2, len(read_pw3d(synthetic, "train")), len(read_pw3d(extra, "train"))]
    assert len(val_loader.dataset) == min(4, len(read_pw3d(synthetic, "validation")))
    assert all(s.valid_3d and mpii not in s.image_path.parents for s in val_loader.dataset.samples)
    del config["data"]["sources"][-1]["validation"]
    with pytest.raises(FileNotFoundError, match="validation"):
        build_loaders(TrainingConfig.from_dict(config))


@pytest.mark.slow
def test_top_k_and_resume(synthetic, tmp_path):
    from training.train import main

    path = tiny_config(synthetic, tmp_path)
    assert main(["--config", str(path)]) == 0
    ckpts = tmp_path / "run" / "phase1" / "checkpoints"
    assert (ckpts / "last.ckpt").is_file() and len(list(ckpts.glob("epoch*.ckpt"))) == 1  # top-1 kept
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 1
    # Interrupted? --resume continues from last.ckpt to the new epoch count.
    assert main(["--config", str(path), "train.epochs=3", "--resume"]) == 0
    state = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert state["epoch"] == 2 and state["global_step"] == 3 * 2
    assert (tmp_path / "run" / "best.pt").is_file()

    # Phase 2 starts from phase 1's best kept checkpoint (found by the score in its name,
    # so an interrupted phase 1 works too) at the new learning rate.
    from training.train import best_checkpoint

    best, score = best_checkpoint(tmp_path / "run", "phase1")
    phase1_weights = torch.load(best, weights_only=True)["state_dict"]
    # The override after the options counts too (argparse alone would refuse it).
    assert main(["--config", str(path), "--resume-best", "--lr", "1e-5", "train.epochs=1"]) == 0
    phase2 = tmp_path / "run" / "phase2" / "checkpoints" / "last.ckpt"
    state = torch.load(phase2, weights_only=True)
    assert state["global_step"] == 2 and state["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-5
    moved = [k for k, v in state["state_dict"].items() if v.is_floating_point()
             and not torch.equal(v, phase1_weights[k])]
    assert moved  # trained on from phase 1's weights: a 1e-5 step changes them only a little
    name = next(k for k in moved if k.endswith("weight"))
    assert (state["state_dict"][name] - phase1_weights[name]).abs().max() < 1e-3

    # Export for the app, with held-out results in the checkpoint for the Model tab.
    from pare_demo.checkpoints import load_checkpoint
    from pare_demo.app.engine import training_summary
    from training import evaluate, export

    results = tmp_path / "eval.json"
    assert evaluate.main(["--checkpoint", str(tmp_path / "run" / "best.pt"), "--dataset-root", str(synthetic),
                          "--split", "validation", "--json", str(results)]) == 0
    out = tmp_path / "bundled.pt"
    run_best = (tmp_path / "run" / "best.pt").read_bytes()
    assert export.main(["--config", str(path), "--out", str(out), "--test-json", str(results)]) == 0
    assert (tmp_path / "run" / "best.pt").read_bytes() == run_best  # the run's own export is left alone
    meta = load_checkpoint(out)["meta"]
    best, score = best_checkpoint(tmp_path / "run")
    assert meta["source"] == f"run/{best.parent.parent.name}/{best.name}" and meta["val_pa_mpjpe_mm"] == score
    assert meta["step"] == torch.load(best, weights_only=True)["global_step"]
    measured = json.loads(results.read_text())
    assert meta["test"] == {k: measured[k] for k in ("mpjpe", "pa_mpjpe", "pve", "num_frames", "dataset_root", "split",
                                                     "flip_test", "fit", "ground_truth_body_models")}
    summary = training_summary(meta)
    assert f"PA-MPJPE {measured['pa_mpjpe']:.1f}" in summary and f"{synthetic.name} (validation)" in summary
    assert measured["flip_test"] is True and "with the flip test" in summary


def coco_annotations(samples, path):
    """A COCO keypoint file of synthetic frames: each sample's limb joints as the 12 COCO
    limb keypoints (face points unlabelled), its box as the bbox."""
    from pare_demo.body.joint_names import COCO_LIMB_INDICES, COCO_LIMB_TO_SMPL

    images, annotations = [], []
    for i, s in enumerate(samples):
        images.append({"id": i, "file_name": str(s.image_path), "width": 160, "height": 160})
        keypoints = np.zeros((17, 3))
        keypoints[list(COCO_LIMB_INDICES), :2] = s.joints2d[list(COCO_LIMB_TO_SMPL)]
        keypoints[list(COCO_LIMB_INDICES), 2] = 2
        x0, y0, x1, y1 = (float(v) for v in s.bbox)
        annotations.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "keypoints": keypoints.ravel().tolist(), "num_keypoints": 12})
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


@pytest.mark.slow
def test_photo_validation_scores_every_epoch_and_export_can_select_by_it(synthetic, tmp_path):
    """With data.photos, each validation scores the photos; the best by their PCK are kept
    beside the best by PA-MPJPE, and the export can take one of those and carry the
    photos' figures into the checkpoint the Model tab describes."""
    import yaml

    from pare_demo.checkpoints import load_checkpoint
    from pare_demo.app.engine import training_summary
    from training import evaluate_photos, export
    from training.train import main

    photos = coco_annotations(read_pw3d(synthetic, "validation")[:2], tmp_path / "photos.json")
    path = tiny_config(synthetic, tmp_path)
    config = yaml.safe_load(path.read_text())
    config["data"]["photos"] = str(photos)
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path)]) == 0
    kept = sorted((tmp_path / "run" / "phase1" / "checkpoints").glob("photo-*.ckpt"))
    assert len(kept) == 1  # top_k 1
    score = float(kept[0].name.split("pck")[1][:-5])
    assert 0.0 <= score <= 1.0
    logged = torch.load(kept[0], weights_only=True)["callbacks"]
    assert any("val/photo_pck" in str(k) for k in logged)

    figures = tmp_path / "photos_eval.json"
    assert evaluate_photos.main(["--annotations", str(photos), "--checkpoint", str(tmp_path / "run" / "best.pt"),
                                 "--out", str(figures)]) == 0
    out = tmp_path / "bundled.pt"
    assert export.main(["--config", str(path), "--out", str(out), "--select", "photo_pck",
                        "--photos-json", str(figures)]) == 0
    meta = load_checkpoint(out)["meta"]
    assert meta["val_photo_pck"] == score and meta["source"].endswith(kept[0].name)
    measured = json.loads(figures.read_text())["overall"]
    assert meta["photos"]["overall"] == measured
    assert f"PCK@0.1 {measured['pck_annotated_boxes']['pck@0.1']:.2f} (annotated boxes)" in training_summary(meta)

    # Any kept checkpoint by name (here the PA-MPJPE one, which --select photo_pck passed over).
    by_pa = next((tmp_path / "run" / "phase1" / "checkpoints").glob("epoch*-pa_mpjpe*.ckpt"))
    named = tmp_path / "named.pt"
    assert export.main(["--config", str(path), "--out", str(named), "--checkpoint", by_pa.stem]) == 0
    meta = load_checkpoint(named)["meta"]
    assert meta["source"].endswith(by_pa.name) and meta["val_pa_mpjpe_mm"] == float(by_pa.stem.split("pa_mpjpe")[1])
    assert export.main(["--config", str(path), "--out", str(named), "--checkpoint", "epoch999"]) == 2
    assert export.main(["--config", str(path), "--out", str(named), "--checkpoint", kept[0].name]) == 0
    assert load_checkpoint(named)["meta"]["val_photo_pck"] == score
    # A name in two phases must be told apart.
    phase2 = tmp_path / "run" / "phase2" / "checkpoints"
    phase2.mkdir(parents=True)
    shutil.copy(by_pa, phase2 / by_pa.name)
    assert export.main(["--config", str(path), "--out", str(named), "--checkpoint", by_pa.stem]) == 2
    assert export.main(["--config", str(path), "--out", str(named), "--checkpoint", f"phase1/{by_pa.stem}"]) == 0
    # A results file that is not one: a clear error, nothing written over.
    before = named.read_bytes()
    assert export.main(["--config", str(path), "--out", str(named), "--test-json", str(figures)]) == 2
    assert named.read_bytes() == before


def test_config_overrides_read_exponents_as_numbers(synthetic, tmp_path):
    from training.config import load_config

    config = load_config(tiny_config(synthetic, tmp_path), ["train.min_lr=1e-6", "loss.part_attention=5E-2",
                                                            "train.epochs=3", "train.run_dir=1e-6x"])
    assert config.train.min_lr == 1e-6 and config.loss.part_attention == 0.05
    assert config.train.epochs == 3 and isinstance(config.train.epochs, int)
    assert config.train.run_dir == "1e-6x"


CONFIGS = sorted((Path(__file__).parents[1] / "training" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_bundled_config_loads(path):
    from pare_demo.models import ModelConfig
    from training.config import load_config

    config = load_config(path)
    assert config.data.sources and config.train.run_dir and config.train.lr > 0
    ModelConfig.from_dict(config.network())  # the network it describes can be built


def test_config_defaults_are_the_ones_training_always_had(synthetic, tmp_path):
    """A config of the required keys only: every optional key takes the value train.py
    fell back on before the config had a schema."""
    from pare_demo.models import default_config
    from training.config import DataSection, Source, TrainSection, TrainingConfig
    from training.datasets import Augmentation
    from training.losses import LossWeights

    config = TrainingConfig.from_dict({
        "model": {"backbone": "mobilenetv3"},
        "data": {"sources": [{"kind": "synthetic", "root": "somewhere"}]},
        "train": {"run_dir": "~/run", "batch_size": 4, "lr": 1e-3, "epochs": 2},
    })
    assert config.data == DataSection(sources=[Source(kind="synthetic", root="somewhere", weight=1.0, every=1,
                                                      validation=True)],
                                      val_split="validation", val_limit=None, photos=None)
    assert config.augment == Augmentation() and config.loss == LossWeights()
    assert config.train == TrainSection(run_dir="~/run", batch_size=4, lr=1e-3, epochs=2, init=None,
                                        lr_schedule="constant", min_lr=0.0, backbone_lr_scale=1.0, weight_decay=0.0,
                                        samples_per_epoch=None, top_k=30, workers=1, threads=None, seed=0,
                                        log_every=10, limit_train_batches=None)
    assert config.train.run_path == Path.home() / "run"
    assert config.network() == default_config("mobilenetv3").to_dict()


@pytest.mark.parametrize("override, message", [
    ("train.lerning_rate=1e-4", r"train\.lerning_rate is not a training config key; known: run_dir, .*\blr\b"),
    ("trian.lr=1e-4", r"trian is not a training config key; known: model, data, train, augment, loss"),
    ("augment.flipp=0.5", r"augment\.flipp is not a training config key; known: flip, "),
    ("model.head.skeleton_hiden=8", r"model\.head\.skeleton_hiden is not a training config key; known: .*skeleton_hidden"),
    ("data.sources=[{kind: synthetic, root: x, wieght: 2}]", r"data\.sources\[0\]\.wieght is not a training config key"),
    ("train.epochs=2.5", r"train\.epochs must be an integer, not 2\.5"),
    ("train.lr=fast", r"train\.lr must be a number, not 'fast'"),
    ("train.lr_schedule=linear", r"train\.lr_schedule is 'linear': use constant or cosine"),
    ("data.sources=[{kind: coco, root: x}]", r"data\.sources\[0\]\.kind is 'coco': use pw3d or synthetic or mpii"),
    ("model.backbone=resnet18", r"model\.backbone is 'resnet18': use "),
    ("train.lr.initial=1", r"override 'train\.lr\.initial=1': train\.lr is not a section"),
    ("train.lr", r"override 'train\.lr' is not key=value"),
    ("train.run_dir=[unclosed", r"override 'train\.run_dir=\[unclosed': .*\(line 1, column"),
])
def test_a_typo_in_an_override_is_refused_with_its_dotted_path(synthetic, tmp_path, override, message):
    from training.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message) as error:
        load_config(tiny_config(synthetic, tmp_path), [override])
    assert "\n" not in str(error.value)  # one line, for `error: ...`


def test_unknown_keys_in_the_file_are_refused_at_any_level(synthetic, tmp_path):
    import yaml

    from training.config import ConfigError, TrainingConfig, load_config

    path = tiny_config(synthetic, tmp_path)
    base = yaml.safe_load(path.read_text())
    for where, dotted in ((base, "schedule"), (base["train"], "train.lerning_rate"),
                          (base["data"]["sources"][0], "data.sources[0].wieght"), (base["model"], "model.heads")):
        key = dotted.rsplit(".", 1)[-1].split("]")[-1]
        where[key] = 1
        path.write_text(yaml.safe_dump(base))
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {re.escape(dotted)} is not a training config key"):
            load_config(path)
        with pytest.raises(ConfigError, match=rf"^{re.escape(dotted)} is not a training config key"):
            TrainingConfig.from_dict(base)
        del where[key]
    del base["train"]["lr"]
    with pytest.raises(ConfigError, match=r"train\.lr is missing"):
        TrainingConfig.from_dict(base)


def test_the_training_cli_says_what_is_wrong_in_one_line(synthetic, tmp_path, capsys):
    from training import export
    from training.train import main

    path = tiny_config(synthetic, tmp_path)
    assert main(["--config", str(path), "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train.epoch is not a training config key" in err and err.count("\n") == 1
    assert main(["--config", str(path), "--init", str(tmp_path / "missing.pt")]) == 2
    assert capsys.readouterr().err == f"error: --init {tmp_path / 'missing.pt'}: no such file\n"
    assert main(["--config", str(path), "--resume-best", "--init", str(tmp_path / "x.pt")]) == 2
    assert "choose one" in capsys.readouterr().err
    assert export.main(["--config", str(path), "--out", str(tmp_path / "x.pt")]) == 2  # nothing trained yet
    assert capsys.readouterr().err.startswith(f"error: no scored checkpoints under {tmp_path / 'run'}")


def test_train_init_names_where_phase_1_starts(synthetic, tmp_path):
    """train.init in the config is --init's twin: ~ expanded, relative to the repository,
    the flag wins over it, and phase 2 starts from phase 1's best regardless."""
    from training.config import REPO_ROOT, load_config
    from training.train import starting_weights

    path = tiny_config(synthetic, tmp_path)
    assert load_config(path).train.init_path is None
    assert starting_weights(load_config(path), None, "phase1") is None
    for given, expected in (("~/step1.pt", Path.home() / "step1.pt"), ("assets/step1.pt", REPO_ROOT / "assets/step1.pt"),
                            (str(tmp_path / "step1.pt"), tmp_path / "step1.pt")):
        config = load_config(path, [f"train.init={given}"])
        assert config.train.init_path == expected
        assert starting_weights(config, None, "phase1") == (expected, "train.init")
        assert starting_weights(config, Path("flag.pt"), "phase1") == (Path("flag.pt"), "--init")
        assert starting_weights(config, None, "phase2") is None


@pytest.mark.slow
def test_init_from_a_checkpoint_with_a_cosine_schedule(synthetic, small_checkpoint, tmp_path, capsys):
    import yaml

    from pare_demo.checkpoints import load_checkpoint, save_checkpoint
    from training.train import main

    path = tiny_config(synthetic, tmp_path, epochs=1, lr_schedule="cosine")
    # min_lr as typed on a command line: YAML reads "1e-6" as a string.
    assert main(["--config", str(path), "train.min_lr=1e-6", "--init", str(small_checkpoint)]) == 0
    state = torch.load(tmp_path / "run" / "phase1" / "checkpoints" / "last.ckpt", weights_only=True)
    # Two steps of a two-step cosine: the learning rate has come down to min_lr.
    assert state["global_step"] == 2
    assert state["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-6)
    # The run started from the checkpoint: two Adam steps move a weight by at most ~2 lr.
    start = load_checkpoint(small_checkpoint)["state_dict"]
    weights = [k for k in start if k.endswith("weight")]
    drift = max(float((state["state_dict"][f"model.{k}"] - start[k]).abs().max()) for k in weights)
    assert drift < 2.5e-3

    # Weights that do not fit the config's network: a clear error, not a traceback.
    broken = save_checkpoint(tmp_path / "broken.pt", load_checkpoint(small_checkpoint)["config"],
                             {k: v for k, v in start.items() if k != weights[0]})
    assert main(["--config", str(path), "train.run_dir=" + str(tmp_path / "run2"), "--init", str(broken)]) == 2
    assert re.fullmatch(f"error: --init .*broken.pt: .*missing keys.*{weights[0]}.*\n", capsys.readouterr().err)

    # train.init in the config does what --init does, and the flag wins over it.
    config = yaml.safe_load(path.read_text())
    config["train"]["init"] = str(small_checkpoint)
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "train.min_lr=1e-6", "train.run_dir=" + str(tmp_path / "run4")]) == 0
    from_key = torch.load(tmp_path / "run4" / "phase1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert max(float((from_key["state_dict"][f"model.{k}"] - start[k]).abs().max()) for k in weights) < 2.5e-3
    assert from_key["global_step"] == 2
    assert main(["--config", str(path), "train.run_dir=" + str(tmp_path / "run5"), "--init", str(broken)]) == 2
    assert "error: --init" in capsys.readouterr().err  # the flag's checkpoint was the one loaded
    assert main(["--config", str(path), "train.run_dir=" + str(tmp_path / "run5"), f"train.init={broken}"]) == 2
    assert re.fullmatch("error: train.init .*broken.pt: .*missing keys.*\n", capsys.readouterr().err)

    # A config that adds the zero-started skeleton branch still starts from the checkpoint.
    assert main(["--config", str(path), "train.run_dir=" + str(tmp_path / "run3"), "model.head.skeleton_hidden=8",
                 "--init", str(small_checkpoint)]) == 0
    state = torch.load(tmp_path / "run3" / "phase1" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["model.head.skeleton_mlp.0.weight"].shape == (8, 49)
    assert max(float((state[f"model.{k}"] - start[k]).abs().max()) for k in weights) < 2.5e-3


@pytest.mark.slow
def test_evaluation_of_a_known_perturbation(synthetic, small_checkpoint, body_model):
    """A 'network' that returns the ground truth: all errors zero. Turned 30 degrees about the
    vertical camera axis: PA-MPJPE stays zero, MPJPE is the mean distance between the
    pelvis-centred joints and the same joints turned by 30 degrees, and PVE likewise for
    the vertices. Left elbow bent 90 degrees: only the left arm's eval joints move."""
    predictor = Predictor(small_checkpoint, device="cpu")
    samples = [s for s in read_pw3d(synthetic, "train") if s.has_3d][:4]
    turn = axis_angle_to_rotmat(torch.tensor([0.0, np.pi / 6, 0.0]))

    def network(turned=False, bend=0.0):
        def run(images):
            n = len(images)
            poses = torch.tensor(np.stack([camera_frame_pose(s) for s in samples[:n]]), dtype=torch.float32)
            rotmats = axis_angle_to_rotmat(poses.reshape(n, 24, 3))
            if turned:
                rotmats[:, 0] = turn @ rotmats[:, 0]
            if bend:
                rotmats[:, 18] = rotmats[:, 18] @ axis_angle_to_rotmat(torch.tensor([0.0, -bend, 0.0]))
            betas = torch.tensor(np.stack([s.betas for s in samples[:n]]), dtype=torch.float32)
            # No part maps: the evaluation reads the pose and betas only.
            return PareOutput(pose=rotmats, betas=betas, cam=torch.tensor([[0.9, 0, 0]]).repeat(n, 1),
                              part_logits=None, part_attention=None)
        return run

    predictor.run_network = network()
    exact = summarize(evaluate_samples(predictor, samples, progress=False))
    assert exact["mpjpe"] < 1e-3 and exact["pa_mpjpe"] < 1e-2 and exact["pve"] < 1e-3

    predictor.run_network = network(turned=True)
    for r in evaluate_samples(predictor, samples, progress=False):
        hips = r.gt_eval_joints[[2, 3]].mean(0)
        joints, verts = r.gt_eval_joints - hips, r.gt_vertices - hips
        rot = turn.numpy()
        assert r.pa_mpjpe < 1e-2
        assert abs(r.mpjpe - 1000 * np.linalg.norm(joints @ rot.T - joints, axis=1).mean()) < 1e-2
        assert abs(r.pve - 1000 * np.linalg.norm(verts @ rot.T - verts, axis=1).mean()) < 1e-2

    predictor.run_network = network(bend=np.pi / 2)
    left_arm = [list(body_model.eval_joint_names).index(n) for n in ("left_wrist", "left_elbow")]
    for r in evaluate_samples(predictor, samples, progress=False):
        moved = np.linalg.norm(r.pred_eval_joints - r.gt_eval_joints, axis=1) * 1000
        assert moved[left_arm[0]] > 100 and np.delete(moved, left_arm).max() < 1.0
        assert abs(r.mpjpe - moved.mean()) < 1e-2


@pytest.mark.slow
def test_3dpw_ground_truth_is_posed_with_smpl_s_gendered_models(small_checkpoint, gendered_smpl_dir, tmp_path):
    """As SPIN, VIBE and PARE score 3DPW: men's and women's ground truth posed with SMPL's male
    and female models where their files are found, everyone else's with the network's own;
    the JSON says which. --gt-body-model still poses everyone with the one model."""
    from conftest import FEMALE_FILE

    from pare_demo.evaluation import GroundTruthBodies, score_frames
    from training import evaluate

    root = tmp_path / "pw3d"
    synth.generate(root, sequences=3, frames=2, seed=7, size=96, split="test")
    for path, gender in zip(sorted((root / "sequenceFiles" / "test").glob("*.pkl")), "mfn"):
        seq = pickle.loads(path.read_bytes())
        path.write_bytes(pickle.dumps({**seq, "genders": [gender] * len(seq["poses"])}, protocol=2))
    samples = read_pw3d(root, "test")
    assert {s.gender for s in samples} == {"male", "female", "neutral"}

    predictor = Predictor(small_checkpoint, device="cpu", flip_test=False, fit=False)
    open_model = predictor.body_model
    gt_bodies = GroundTruthBodies.protocol(open_model)
    names = {"male": "SMPL_MALE.npz", "female": FEMALE_FILE, "neutral": "open"}
    assert gt_bodies.names() == names
    posers = {"male": load_body_model(gendered_smpl_dir / "SMPL_MALE.npz"),
              "female": load_body_model(gendered_smpl_dir / FEMALE_FILE), "neutral": open_model}

    def posed(model, s):
        pose = torch.tensor(camera_frame_pose(s)[None], dtype=torch.float32)
        with torch.no_grad():
            return model(betas=torch.tensor(s.betas[None, :10], dtype=torch.float32),
                         global_orient=pose[:, :3], body_pose=pose[:, 3:]).vertices

    # A 'prediction' that is the ground truth posed with the open model: only the neutral
    # person is predicted exactly.
    with_open = torch.cat([posed(open_model, s) for s in samples])
    for i, (s, r) in enumerate(zip(samples, score_frames(samples, with_open, open_model, gt_bodies))):
        expected = posed(posers[s.gender], s)[0].numpy()
        assert np.abs(r.gt_vertices - expected).max() < 1e-5, s.gender
        assert r.gt_body_model == names[s.gender]
        if s.gender == "neutral":
            assert r.mpjpe < 1e-3
        else:  # the male and female stand-ins are 10% larger and smaller: visibly not the open model
            assert np.abs(expected - with_open[i].numpy()).max() > 0.02 and r.mpjpe > 5

    report, override = tmp_path / "eval.json", tmp_path / "eval_open.json"
    switches = ["--checkpoint", str(small_checkpoint), "--dataset-root", str(root), "--device", "cpu",
                "--no-flip-test", "--no-fit"]
    assert evaluate.main(switches + ["--json", str(report)]) == 0
    assert evaluate.main(switches + ["--json", str(override), "--gt-body-model", "open"]) == 0
    report, override = json.loads(report.read_text()), json.loads(override.read_text())
    assert report["ground_truth_body_models"] == names
    assert override["ground_truth_body_models"] == {"male": "open", "female": "open", "neutral": "open"}
    expected = summarize(evaluate_samples(predictor, samples, gt_bodies, progress=False))
    assert report["mpjpe"] == pytest.approx(expected["mpjpe"], abs=1e-3)
    assert report["pa_mpjpe"] == pytest.approx(expected["pa_mpjpe"], abs=1e-3)
    assert abs(report["mpjpe"] - override["mpjpe"]) > 1


@pytest.mark.slow
def test_backbone_comparison_trains_evaluates_and_times_each(synthetic, tmp_path):
    import yaml

    from training.compare_backbones import compare, table

    synth.generate(synthetic, sequences=1, frames=3, seed=7, size=160, split="test")
    config = {
        "model": {"backbone": "mobilenetv3", "body_model": "open", "input_size": 96},
        "data": {"sources": [{"kind": "synthetic", "root": str(synthetic)}], "val_split": "validation", "val_limit": 4},
        "train": {"run_dir": "unused", "batch_size": 4, "lr": 1e-3, "epochs": 5, "workers": 0, "seed": 0},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    rows = compare(str(path), synthetic, tmp_path / "cmp", backbones=("mobilenetv3", "resnet50"), steps=2,
                   batch=2, every=1)
    assert [r["backbone"] for r in rows] == ["mobilenetv3", "resnet50"]
    for r in rows:
        assert (tmp_path / "cmp" / r["backbone"] / "best.pt").is_file()
        assert r["input_size"] == 96 and r["test_frames"] == 3
        assert all(np.isfinite(r[k]) and r[k] > 0 for k in ("mpjpe", "pa_mpjpe", "pve", "network_ms"))
    # A ResNet-50 has several times the parameters of the MobileNetV3 network.
    assert rows[1]["parameters_m"] > 3 * rows[0]["parameters_m"]
    assert table(rows).count("\n") == 3


def test_diagnosis_tells_a_learnt_joint_from_the_average_pose():
    from training.diagnose import joint_report, mean_rotation, rotation_angles

    torch.manual_seed(0)
    truth = axis_angle_to_rotmat(torch.randn(50, 24, 3) * 0.4)
    average = mean_rotation(truth)
    assert torch.allclose(average.transpose(-1, -2) @ average, torch.eye(3).expand(24, 3, 3), atol=1e-5)
    assert torch.allclose(torch.det(average), torch.ones(24), atol=1e-5)
    turn = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, 0.3]))
    assert torch.allclose(rotation_angles(turn, torch.eye(3)), torch.tensor(np.degrees(0.3), dtype=torch.float32))

    joints = torch.rand(50, 24, 2) * 1.6 - 0.8
    visible = torch.ones(50, 24, dtype=torch.bool)
    left_wrist, right_wrist = SMPL_JOINT_NAMES.index("left_wrist"), SMPL_JOINT_NAMES.index("right_wrist")
    joints[:, right_wrist] = joints[:, left_wrist] + torch.tensor([0.0, 0.3])  # 24 px apart
    centres = joints.clone()
    centres[:, left_wrist] = joints[:, right_wrist]    # the left wrist's map sits on the right wrist
    visible[:25, right_wrist] = False                  # half the right wrists unseen: not counted
    centres[:25, right_wrist] = 5.0

    pose = truth.clone()
    pose[:, :12] = average[:12]                        # the lower body: the average pose
    rows = joint_report(pose, truth, centres, joints, visible, crop_size=160)
    for j, row in enumerate(rows):
        if j < 12:
            assert row["rotation_error_deg"] == pytest.approx(row["truth_spread_deg"], rel=1e-4)
            assert row["truth_spread_deg"] > 10
        else:
            assert row["rotation_error_deg"] < 0.1
    assert rows[left_wrist]["nearer_mirrored_joint"] == 1.0 and rows[left_wrist]["centre_error_px_median"] > 20
    assert rows[right_wrist]["nearer_mirrored_joint"] == 0.0 and rows[right_wrist]["centre_error_px_mean"] < 1e-3


@pytest.mark.slow
def test_diagnose_cli(synthetic, small_checkpoint, tmp_path, capsys):
    from training.diagnose import main

    out = tmp_path / "diagnosis.json"
    assert main(["--checkpoint", str(small_checkpoint), "--dataset-root", str(synthetic), "--split", "validation",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["num_frames"] == 4 and [r["joint"] for r in report["joints"]] == list(SMPL_JOINT_NAMES)
    assert all(np.isfinite(r["rotation_error_deg"]) and r["truth_spread_deg"] >= 0 for r in report["joints"])
    assert "left_wrist" in capsys.readouterr().out
    assert main(["--dataset-root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_gpu_check_says_when_there_is_no_gpu(capsys, monkeypatch):
    """Without CUDA the check says so and succeeds; it never pretends to have checked."""
    from training import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert "No CUDA device" in out and "ok" not in out


def test_export_leaves_out_the_trunks_old_landmark_regressor(tmp_path):
    """Runs from before the landmark regressor left the BlazePose trunk saved its weights in
    every Lightning checkpoint; the export keeps only what the network uses, and loads."""
    from pare_demo import paths
    from pare_demo.checkpoints import load_checkpoint
    from pare_demo.models import PARE, default_config, load_model
    from training.train import export_best

    torch.manual_seed(0)
    model = PARE(default_config("blazepose"))
    original = torch.load(paths.BLAZEPOSE_LANDMARKS, map_location="cpu", weights_only=True)["state_dict"]
    legacy = {f"model.backbone.{k}": original[k.removeprefix("net.")] for k in model.backbone.legacy_keys}
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    lightning = tmp_path / "run" / "phase1" / "checkpoints" / "epoch000.ckpt"
    lightning.parent.mkdir(parents=True)
    torch.save({"state_dict": {**state, **legacy}, "global_step": 7}, lightning)
    out = export_best(tmp_path / "run", lightning, model.config.to_dict(), {}, out=tmp_path / "best.pt")
    saved = load_checkpoint(out)
    assert set(saved["state_dict"]) == set(model.state_dict()) and saved["meta"]["step"] == 7
    assert torch.equal(load_model(out).state_dict()["head.cam_regressor.weight"], model.state_dict()["head.cam_regressor.weight"])


def test_trunk_distillation_pulls_a_fine_tuned_trunk_back_to_the_original():
    """loss.trunk_distillation: zero while the trunk is the original network, positive once
    it moved, with a gradient into the trunk; refused with a frozen trunk."""
    from training.module import PareTraining
    from pare_demo.models import default_config

    torch.manual_seed(0)
    config = default_config("blazepose").to_dict()
    module = PareTraining(config, backbone_lr_scale=0.1, loss_weights={"trunk_distillation": 0.1})
    images = torch.rand(2, 3, 256, 256)
    batch = {"image": images, "pose": torch.eye(3).expand(2, 24, 3, 3).clone(), "betas": torch.zeros(2, 10),
             "joints2d": torch.zeros(2, 24, 2), "joints2d_visible": torch.ones(2, 24, dtype=torch.bool),
             "has_3d": torch.ones(2, dtype=torch.bool)}
    losses = module._step(batch)[3]
    assert losses["trunk_distillation"].item() == pytest.approx(0.0, abs=1e-8)
    weight = next(p for n, p in module.model.backbone.named_parameters() if n.endswith("conv.weight"))
    with torch.no_grad():
        weight.mul_(1.5)
    losses = module._step(batch)[3]
    assert losses["trunk_distillation"].item() > 1e-3
    module.zero_grad()
    (module.weights.trunk_distillation * losses["trunk_distillation"]).backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in module.reference_backbone.parameters())
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        PareTraining(config, backbone_lr_scale=0.0, loss_weights={"trunk_distillation": 0.1})


def test_the_mpii_config_fine_tunes_the_bundled_weights_with_2d_from_mpii(synthetic, tmp_path):
    """blazepose_mpii.yaml, for users who bring MPII: it starts from the bundled weights and trains
    the BlazePose network on MPII's 2D joints beside renders (here tiny stand-ins for both)."""
    import shutil

    from pare_demo.checkpoints import load_checkpoint
    from pare_demo.paths import BUNDLED_CHECKPOINT
    from training.config import load_config
    from training.train import main

    mpii = tmp_path / "mpii"
    (mpii / "images").mkdir(parents=True)
    frames = sorted(synthetic.glob("imageFiles/*/image_00000.jpg"))[:2]
    for name, frame in zip("ab", frames):
        shutil.copy(frame, mpii / "images" / f"{name}.jpg")
    rng = np.random.default_rng(0)
    parts = np.concatenate([rng.uniform(40, 120, (2, 24, 2)), np.ones((2, 24, 1))], axis=2)
    np.savez(mpii / "mpii_train.npz", imgname=np.array(["images/a.jpg", "images/b.jpg"]),
             center=np.array([[80.0, 80.0], [80.0, 80.0]]), scale=np.array([0.6, 0.6]), part=parts)
    config = Path(__file__).parents[1] / "training" / "configs" / "blazepose_mpii.yaml"
    # What it trains on: MPII 0.4 and the three render sets 0.2 each, validated on renders only.
    loaded = load_config(config)
    assert [(s.kind, s.weight, s.validation) for s in loaded.data.sources] == [
        ("mpii", 0.4, True), ("synthetic", 0.2, True), ("synthetic", 0.2, False), ("synthetic", 0.2, False)]
    lr = loaded.train.lr
    run = tmp_path / "run"
    # Only MPII in training, so the steps below are MPII's; the renders validate.
    only_mpii = f"data.sources=[{{kind: mpii, root: {mpii}}}, {{kind: synthetic, root: {synthetic}, weight: 0}}]"
    assert main(["--config", str(config), only_mpii, "data.photos=null", "data.val_limit=2",
                 f"train.run_dir={run}", "train.epochs=1", "train.samples_per_epoch=4", "train.batch_size=2",
                 "train.workers=0", "train.top_k=1"]) == 0
    state = torch.load(run / "phase1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 2
    start = load_checkpoint(BUNDLED_CHECKPOINT)["state_dict"]
    moved = {k: float((state["state_dict"][f"model.{k}"] - v).abs().max()) for k, v in start.items()
             if v.is_floating_point() and "running_" not in k and f"model.{k}" in state["state_dict"]}
    # Started from the bundled weights (two Adam steps move a weight by about 2 lr at most;
    # BatchNorm's running statistics, not learnt, are left out) ...
    assert len(moved) > 100 and max(moved.values()) < 3 * lr
    # ... the head learnt from MPII's 2D joints (the renders, weight 0, gave no batch; Adam here
    # has no weight decay) and the trunk is trained too, not frozen.
    assert any(v > 0 for k, v in moved.items() if k.startswith("head."))
    assert any(v > 0 for k, v in moved.items() if k.startswith("backbone."))
