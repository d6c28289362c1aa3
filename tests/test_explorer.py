"""The 3DPW explorer on a tiny synthetic set, with an untrained network: numbers are checked
against independent computations, not against expected values."""
import pickle
import shutil

import cv2
import numpy as np
import pytest
import torch

from pare_demo import metrics
from pare_demo.crop import crop_image, make_crop, square_around
from pare_demo.data.pw3d import read_pw3d, read_sequence_file
from pare_demo.evaluation import evaluate_samples
from pare_demo.app.explorer import GREY, Explorer, ExplorerError, ground_truth_body_model
from pare_demo.images import load_image
from pare_demo.predictor import Predictor
from pare_demo.render import Renderer
from training import synth

# Each test evaluates the network on several frames, over a synthetic set made for the module.
pytestmark = pytest.mark.slow

SEQ, TWO_PEOPLE = "synth_s15_0000", "synth_s15_0001"  # seed 15: the second sequence has two people


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pw3d")
    synth.generate(root, sequences=2, frames=4, seed=15, size=256, split="test")
    return root


@pytest.fixture(scope="module")
def predictor(small_checkpoint):
    return Predictor(small_checkpoint)


@pytest.fixture(scope="module")
def explorer(predictor, root):
    renderer = Renderer(256, 256)
    yield Explorer(predictor, renderer, root)
    renderer.close()


def reference(predictor, root, sequence, person):
    """evaluate_samples run directly on the reader's samples, as the evaluate CLI does."""
    samples = [s for s in read_pw3d(root, "test", [sequence]) if s.person == person]
    return {r.sample.frame: r for r in evaluate_samples(predictor, samples, batch_size=16, progress=False)}


def test_listing(explorer):
    assert explorer.sequences() == {SEQ: "test", TWO_PEOPLE: "test"}
    assert explorer.persons(SEQ) == [0] and explorer.persons(TWO_PEOPLE) == [0, 1]
    assert explorer.frames(SEQ) == [0, 1, 2, 3] == explorer.frames(TWO_PEOPLE, person=1)


def test_frame_view_matches_evaluation_and_ground_truth(explorer, predictor, root):
    view = explorer.frame_view(TWO_PEOPLE, 2, person=1)
    ref = reference(predictor, root, TWO_PEOPLE, 1)[2]
    assert view.metrics == pytest.approx({"mpjpe": ref.mpjpe, "pa_mpjpe": ref.pa_mpjpe, "pve": ref.pve}, abs=1e-3)
    # The Predictor ran on the same crop as the evaluation.
    assert np.abs(view.prediction.vertices - ref.pred_vertices).max() < 1e-4

    # Per-joint bars: MPJPE bars average to the frame's MPJPE, PA-MPJPE bars are the evaluation's.
    mpjpe_bars, pa_bars = (np.array(t.y) for t in view.joint_errors_figure.data)
    assert len(mpjpe_bars) == 14 and mpjpe_bars.mean() == pytest.approx(ref.mpjpe, abs=1e-3)
    assert np.allclose(pa_bars, ref.joint_errors)

    # 3D plot: the ground truth is the dataset's joints seen by its camera, root-aligned, turned
    # 180 degrees about x so y is up (plot axes x, z, y).
    seq = read_sequence_file(root / "sequenceFiles" / "test" / f"{TWO_PEOPLE}.pkl")
    world = seq["jointPositions"][1][2].reshape(24, 3)
    cam = world @ seq["cam_poses"][2][:3, :3].T + seq["cam_poses"][2][:3, 3]
    expected = (cam - cam[0]) * [1, -1, -1]
    gt = next(t for t in view.skeleton_3d.data if t.name == "ground truth" and t.mode == "markers")
    assert np.abs(np.stack([gt.x, gt.z, gt.y], 1) - expected).max() < 1e-4
    assert any(t.name == "error" for t in view.skeleton_3d.data)

    assert view.attention.grid().ndim == 3 and view.attention.part_map().shape == view.image.shape
    assert view.attention.heatmap("head").shape == view.image.shape

    # Overlay: the meshes cover the ground-truth torso joints; far from the person and the crop
    # nothing is drawn. (The one-person sequence: the second person above nearly fills the frame.)
    view = explorer.frame_view(SEQ, 2, person=0)
    changed = np.abs(view.overlay.astype(int) - view.image.astype(int)).sum(2) > 0
    for name in (0, 3, 6, 9):  # pelvis, spine1-3
        x, y = np.round(view.sample.joints2d[name]).astype(int)
        assert changed[y, x]
    center, side = square_around(view.sample.bbox)
    yy, xx = np.mgrid[:changed.shape[0], :changed.shape[1]]
    far = np.maximum(np.abs(xx - center[0]), np.abs(yy - center[1])) > 0.75 * side  # 1.5 x the crop
    assert far.sum() > 1000 and not changed[far].any()


def test_sequence_errors(explorer, predictor, root):
    calls = []
    errors = explorer.sequence_errors(SEQ, 0, progress=lambda done, total: calls.append((done, total)),
                                      batch_size=3)
    ref = reference(predictor, root, SEQ, 0)
    assert calls == [(3, 4), (4, 4)]
    assert list(errors.frames) == explorer.frames(SEQ) == sorted(ref)
    assert np.allclose(errors.pa_mpjpe, [ref[f].pa_mpjpe for f in errors.frames], atol=1e-3)
    assert np.allclose(errors.pve, [ref[f].pve for f in errors.frames], atol=1e-3)
    worst = errors.worst(3)
    assert [e for _, e in worst] == sorted(errors.pa_mpjpe, reverse=True)[:3]
    assert all(errors.pa_mpjpe[list(errors.frames).index(f)] == e for f, e in worst)
    assert [t.name for t in errors.figure.data] == ["MPJPE", "PA-MPJPE", "PVE"]
    assert explorer.sequence_errors(SEQ, 0) is errors  # cached
    # Switching the flip test off gives the network's own errors, not the cached ones.
    try:
        predictor.flip_test = False
        alone = explorer.sequence_errors(SEQ, 0)
        assert alone is not errors and not np.allclose(alone.mpjpe, errors.mpjpe, atol=1e-3)
    finally:
        predictor.flip_test = True
    assert explorer.sequence_errors(SEQ, 0) is errors


def test_occlusion_sensitivity(explorer, predictor, root):
    size = predictor.config.input_size
    patch, stride = size // 2, size // 4
    calls = []
    occ = explorer.occlusion_sensitivity(SEQ, 1, 0, patch=patch, stride=stride, batch_size=4,
                                         progress=lambda done, total: calls.append((done, total)))
    assert occ.error.shape == (3, 3) and np.isfinite(occ.error).all()
    assert calls[-1] == (10, 10) and len(calls) == 3
    ref = reference(predictor, root, SEQ, 0)[1]
    assert occ.base_error == pytest.approx(ref.mpjpe, abs=0.05)
    assert (occ.min, occ.max) == (occ.increase.min(), occ.increase.max())
    assert occ.picture.dtype == np.uint8 and occ.picture.shape[1] == 320

    # Cell (row 2, column 1) recomputed by hand: the patch at rows 2*stride.., columns stride..
    center, side = square_around(ref.sample.bbox)
    crop = crop_image(load_image(ref.sample.image_path), make_crop(center, side, size))
    crop[2 * stride:2 * stride + patch, stride:stride + patch] = GREY
    with torch.inference_mode():
        net = predictor.run_network(predictor.normalise(crop[None]))
        body = predictor.body_model(betas=net.betas, global_orient=net.pose[:, :1],
                                    body_pose=net.pose[:, 1:], pose2rot=False)
        error = metrics.mpjpe(predictor.body_model.eval_joints(body.vertices),
                              torch.from_numpy(ref.gt_eval_joints[None]))
    assert occ.error[2, 1] == pytest.approx(float(error), abs=0.05)


def test_occluding_grey_with_grey_changes_nothing(predictor, root, tmp_path):
    """On a uniformly grey image, wherever the crop lies inside the image the patch covers
    grey with grey: the input, and so the error, does not change."""
    copy = tmp_path / "grey"
    shutil.copytree(root, copy)
    image = copy / "imageFiles" / SEQ / "image_00001.jpg"
    cv2.imwrite(str(image), np.full((256, 256, 3), GREY, np.uint8))
    explorer = Explorer(predictor, None, copy)
    size = predictor.config.input_size
    occ = explorer.occlusion_sensitivity(SEQ, 1, 0, patch=size // 2, stride=size // 2)
    assert (occ.crop == GREY).all()  # precondition: the crop lies inside the image
    assert np.abs(occ.increase).max() < 1e-3


def test_errors_say_what_is_wrong(explorer, predictor, root, tmp_path):
    with pytest.raises(ExplorerError, match="does not exist.*sequenceFiles.*virtualhumans.mpi-inf.mpg.de/3DPW"):
        Explorer(predictor, None, tmp_path / "nowhere")
    with pytest.raises(ExplorerError, match=r"not in 3DPW's layout.*imageFiles/<sequence>/image_XXXXX\.jpg"):
        Explorer(predictor, None, tmp_path)
    with pytest.raises(ExplorerError, match="No sequence 'nope'"):
        explorer.frame_view("nope", 0)
    with pytest.raises(ExplorerError, match="no ground truth for person 1 in frame 99"):
        explorer.frame_view(SEQ, 99)
    with pytest.raises(ExplorerError, match="no ground truth for person 2"):
        explorer.frame_view(SEQ, 0, person=1)

    # A sequence file naming another folder, and one whose images are missing.
    bad = tmp_path / "bad"
    (bad / "sequenceFiles" / "train").mkdir(parents=True)
    seq = read_sequence_file(root / "sequenceFiles" / "test" / f"{SEQ}.pkl")
    for name, folder in (("escape", "../../outside"), ("missing", "no_images_here")):
        with open(bad / "sequenceFiles" / "train" / f"{name}.pkl", "wb") as f:
            pickle.dump({**seq, "sequence": folder}, f, protocol=2)
    bad_explorer = Explorer(predictor, None, bad)
    assert bad_explorer.sequences() == {"escape": "train", "missing": "train"}
    with pytest.raises(ExplorerError, match="outside"):
        bad_explorer.frame_view("escape", 0)
    with pytest.raises(ExplorerError, match="image .*image_00000.jpg is missing"):
        bad_explorer.sequence_errors("missing", 0)


def test_symlinks_out_of_the_dataset_are_refused(predictor, root, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(root / "imageFiles", outside)
    linked = tmp_path / "linked"  # imageFiles itself links out
    shutil.copytree(root / "sequenceFiles", linked / "sequenceFiles")
    (linked / "imageFiles").symlink_to(outside, target_is_directory=True)
    nested = tmp_path / "nested"  # one sequence's folder links out
    shutil.copytree(root / "sequenceFiles", nested / "sequenceFiles")
    (nested / "imageFiles").mkdir()
    (nested / "imageFiles" / SEQ).symlink_to(outside / SEQ, target_is_directory=True)
    for dataset in (linked, nested):
        assert (dataset / "imageFiles" / SEQ / "image_00000.jpg").is_file()  # the link works
        with pytest.raises(ExplorerError, match="outside"):
            Explorer(predictor, None, dataset).sample(SEQ, 0)
    # The dataset folder itself may be a link: its images are inside it.
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert Explorer(predictor, None, alias).sample(SEQ, 0).image_path.is_file()


def test_men_and_women_are_posed_with_smpl_s_gendered_models(explorer, predictor, root, gendered_smpl_dir,
                                                              tmp_path):
    """Where SMPL's male and female files are found, the ground truth of men and women is
    posed with them (and drawn with their faces), the rest with the neutral model; the
    text says which posed each person."""
    from conftest import FEMALE_FILE

    from pare_demo.body import load_body_model
    from pare_demo.data.pw3d import camera_frame_pose

    copy = tmp_path / "gendered"
    shutil.copytree(root, copy)
    for name, genders in ((TWO_PEOPLE, ["m", "f"]), (SEQ, ["n"])):
        path = copy / "sequenceFiles" / "test" / f"{name}.pkl"
        path.write_bytes(pickle.dumps({**read_sequence_file(path), "genders": genders}, protocol=2))
    gendered = Explorer(predictor, explorer.renderer, copy)
    assert gendered.gt_bodies.names() == {"male": "SMPL_MALE.npz", "female": FEMALE_FILE, "neutral": "open"}

    posers = {"male": load_body_model(gendered_smpl_dir / "SMPL_MALE.npz"),
              "female": load_body_model(gendered_smpl_dir / FEMALE_FILE), "neutral": predictor.body_model}
    for sequence, person, gender, label in ((TWO_PEOPLE, 0, "male", "SMPL_MALE.npz"),
                                            (TWO_PEOPLE, 1, "female", FEMALE_FILE), (SEQ, 0, "neutral", "open")):
        view = gendered.frame_view(sequence, 2, person)
        s = view.sample
        pose = torch.tensor(camera_frame_pose(s)[None], dtype=torch.float32)
        with torch.no_grad():
            expected = posers[gender](betas=torch.tensor(s.betas[None], dtype=torch.float32),
                                      global_orient=pose[:, :3], body_pose=pose[:, 3:]).vertices[0].numpy()
        assert s.gender == gender and np.abs(view.result.gt_vertices - expected).max() < 1e-5
        assert f"ground truth posed with {label}, {gender}" in view.metrics_text()
        plain = explorer.frame_view(sequence, 2, person)  # the same frame, all posed with the open model
        assert "ground truth posed with open, neutral" in plain.metrics_text()
        changed = np.abs(view.result.gt_vertices - plain.result.gt_vertices).max() > 0.02
        assert changed == (gender != "neutral"), gender

    # The whole sequence's errors use the same models as its frames.
    errors = gendered.sequence_errors(TWO_PEOPLE, 1)
    frame = gendered.frame_view(TWO_PEOPLE, 2, 1).result
    assert errors.pa_mpjpe[list(errors.frames).index(2)] == pytest.approx(frame.pa_mpjpe, abs=1e-3)
    assert not np.allclose(errors.mpjpe, explorer.sequence_errors(TWO_PEOPLE, 1).mpjpe, atol=1)


def test_ground_truth_body_model_follows_the_dataset(predictor, root, tmp_path):
    """The bundled sample set (made with the open model) is posed with the open model, even
    through a symlink; another dataset with SMPL when the user has it, else the network's."""
    from pare_demo import paths

    link = tmp_path / "sample_link"
    link.symlink_to(paths.SAMPLE_PW3D_DIR)
    for sample_root in (paths.SAMPLE_PW3D_DIR, link):
        model = ground_truth_body_model(sample_root, predictor, smpl_available=False)
        assert model is predictor.body_model and model.model_name == "open"
    assert ground_truth_body_model(root, predictor, smpl_available=False) is None


def test_frame_view_with_the_bundled_weights_is_not_refined(root):
    """The bundled (BlazePose) weights refine a photo's crops; the explorer's frame view
    crops the ground-truth box exactly as the evaluation does (square_around, no refining),
    and so gives the evaluation's numbers (with the fit: each body is fitted alone)."""
    bundled = Predictor()
    assert bundled.can_refine and "crops refined on" in bundled.description
    sample = [s for s in read_pw3d(root, "test", [SEQ]) if s.frame == 1][0]
    renderer = Renderer(256, 256)
    try:
        view = Explorer(bundled, renderer, root).frame_view(SEQ, 1)
    finally:
        renderer.close()
    ref = reference(bundled, root, SEQ, 0)[1]
    assert view.metrics == pytest.approx({"mpjpe": ref.mpjpe, "pa_mpjpe": ref.pa_mpjpe, "pve": ref.pve}, abs=1e-3)
    center, side = square_around(sample.bbox)
    np.testing.assert_allclose(view.prediction.crop.center, center)
    assert view.prediction.crop.size == pytest.approx(side)
    refined = bundled.predict(load_image(sample.image_path), boxes=sample.bbox[None]).people[0]
    assert np.linalg.norm(refined.crop.center - center) > 1.0  # refining would have moved it


def test_small_network_does_not_claim_refined_crops(predictor):
    assert not predictor.can_refine and "crops refined off" in predictor.description
