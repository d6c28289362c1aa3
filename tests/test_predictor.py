import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from pare_demo import crop as cropping
from pare_demo.detect import PersonDetector, cached_torchvision_weights
from pare_demo.geometry import perspective_projection
from pare_demo.images import ImageError, load_image, to_rgb_uint8
from pare_demo.predict import main as predict_main
from pare_demo.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(small_checkpoint):
    return Predictor(small_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def test_opencv_detector_finds_the_astronaut(astronaut):
    found = PersonDetector(prefer_torchvision=False, use_blazepose=False)(astronaut)
    assert len(found) == 1 and found[0].source == "face"
    x0, y0, x1, y1 = found[0].box
    # Her face is around x 180-270, y 70-160: the body box contains it and is wider than it.
    assert x0 < 180 and x1 > 270 and y0 < 70 and y1 > 300


def test_no_person_means_whole_image_and_user_box_wins():
    detector = PersonDetector(prefer_torchvision=False)
    coffee = data.coffee()
    found = detector(coffee)
    assert len(found) == 1 and found[0].source == "whole-image"
    assert np.allclose(found[0].box, [0, 0, coffee.shape[1], coffee.shape[0]])
    user = detector(coffee, boxes=[[10, 20, 110, 220]])
    assert user[0].source == "user" and np.allclose(user[0].box, [10, 20, 110, 220])


def test_torchvision_detector_used_when_its_weights_are_cached(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert cached_torchvision_weights() is None
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "fasterrcnn_mobilenet_v3_large_320_fpn_coco-abc.pth")
    detector = PersonDetector()
    assert "torchvision" in detector.name
    # Untrained weights find nobody: the whole image stands in.
    assert detector(data.astronaut())[0].source in ("torchvision", "whole-image")


def test_crop_round_trip_within_half_a_pixel():
    rng = np.random.default_rng(0)
    center, side = cropping.square_around([100.5, 40.0, 300.0, 420.0])
    crop = cropping.make_crop(center, side, 224)
    points = rng.uniform([100, 40], [300, 420], size=(50, 2))
    in_crop = cropping.apply_affine(points, crop.affine)
    assert np.abs(cropping.crop_to_image_points(in_crop, crop) - points).max() < 0.5
    # The box centre lands at the crop centre; the box's long side spans 224 / 1.2 px.
    assert np.allclose(cropping.apply_affine(center, crop.affine), [112, 112])
    image = np.zeros((480, 640, 3), np.uint8)
    image[200, 200] = 255
    patch = cropping.crop_image(image, crop)
    v, u = np.unravel_index(patch[..., 0].argmax(), patch.shape[:2])
    assert np.abs(cropping.crop_to_image_points(np.array([u, v], float), crop) - [200, 200]).max() < 1.0


def test_predictor_on_a_real_photo(predictor, astronaut):
    result = predictor.predict(astronaut)
    assert len(result.people) == 1 and not result.nobody_found
    p = result.people[0]
    h, w = astronaut.shape[:2]
    assert result.image_size == (w, h) and np.allclose(result.principal_point, [w / 2, h / 2])
    # BlazePose's box is the square around the whole body, legs below the picture included:
    # it holds her face and is centred within the picture's width.
    x0, y0, x1, y1 = p.bbox
    assert x0 < 230 < x1 and y0 < 130 < y1 and 0 < (x0 + x1) / 2 < w and (x1 - x0) == pytest.approx(y1 - y0)
    for name in ("pose", "betas", "cam_crop", "cam_translation", "vertices", "joints3d", "joints2d",
                 "eval_joints3d", "keypoints3d", "part_attention"):
        assert np.isfinite(getattr(p, name)).all(), name
    assert p.pose.shape == (24, 3, 3) and p.pose_axis_angle.shape == (72,)
    assert p.vertices.shape == (13348, 3) and p.joints3d.shape == (24, 3) and p.eval_joints3d.shape == (14, 3)
    assert np.allclose(p.part_attention.sum(axis=(1, 2)), 1, atol=1e-4)
    # joints2d is the projection of joints3d with the full-image camera, and the joints
    # lie among the projected mesh vertices.
    project = lambda x: perspective_projection(  # noqa: E731
        torch.from_numpy(x)[None], torch.from_numpy(p.cam_translation)[None], result.focal_length,
        torch.from_numpy(result.principal_point).float())[0].numpy()
    assert np.abs(project(p.joints3d) - p.joints2d).max() < 1e-2
    mesh2d = project(p.vertices)
    assert (p.joints2d.min(0) >= mesh2d.min(0) - 1).all() and (p.joints2d.max(0) <= mesh2d.max(0) + 1).all()
    # The root projects to where the crop camera puts it: the crop centre shifted by (tx, ty).
    s, tx, ty = p.cam_crop
    root_in_crop = 112 + 112 * s * (p.joints3d[0, :2] + [tx, ty]) / (1 + p.joints3d[0, 2] * s * 224 / 10000)
    root_in_image = cropping.crop_to_image_points(root_in_crop, p.crop)
    assert np.abs(root_in_image - p.joints2d[0]).max() < 2.0
    assert set(result.timings) >= {"detect", "crop", "network", "body_model", "camera"}
    maps = p.part_attention_on_image(result.image_size, max_side=256)
    assert maps.shape == (24, 256, 256) and np.isclose(maps.max(), 1.0)


def test_odd_inputs(predictor, astronaut, tmp_path):
    gray = astronaut.mean(axis=2).astype(np.uint8)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    sixteen = astronaut.astype(np.uint16) * 257
    for odd in (gray, rgba, sixteen):
        people = predictor.predict(odd).people
        assert len(people) >= 1 and np.isfinite(people[0].vertices).all()
    assert np.array_equal(to_rgb_uint8(sixteen), astronaut)
    tiny = predictor.predict(np.full((10, 10, 3), 128, np.uint8))
    assert tiny.nobody_found and len(tiny.people) == 1  # the whole image stands in, to show a body
    assert np.allclose(tiny.people[0].bbox, [0, 0, 10, 10])
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ImageError, match="notes.png is not an image"):
        load_image(text)
    with pytest.raises(ImageError):
        to_rgb_uint8(np.zeros((5, 5, 7)))


def test_exif_rotation_is_applied(tmp_path, astronaut):
    img = Image.fromarray(astronaut[:, :400])  # 512 high, 400 wide
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert load_image(path).shape[:2] == (400, 512)


def test_huge_images_are_downscaled_and_results_mapped_back(predictor, monkeypatch, astronaut):
    import pare_demo.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 200_000)
    monkeypatch.setattr(images, "TARGET_PIXELS_WHEN_HUGE", 100_000)
    big = np.kron(astronaut, np.ones((2, 2, 1), np.uint8))  # 1024 x 1024 > 200k pixels
    result = predictor.predict(big, boxes=[[76, 40, 820, 1024]])
    person = result.people[0]
    assert result.image_size == (1024, 1024) and not result.nobody_found
    assert np.allclose(person.bbox, [76, 40, 820, 1024], atol=1.0)


@pytest.fixture(scope="module")
def eager(small_checkpoint):
    return Predictor(small_checkpoint, device="cpu", backend="torch")


def test_default_backend_is_the_fastest_measured(predictor):
    assert predictor.backend == "onnx"  # on a CPU with onnxruntime, see pare_demo.benchmark
    assert predictor.torch_threads == 1  # PyTorch only handles small tensors then
    with pytest.raises(ValueError, match="backend"):
        Predictor(device="cpu", backend="tensorrt")


@pytest.mark.parametrize("checkpoint", ["small_checkpoint", "skeleton_checkpoint"])
@pytest.mark.parametrize("backend", ["optimized", "onnx"])
def test_fast_backends_match_eager_fp32(eager, request, astronaut, backend, checkpoint):
    path = request.getfixturevalue(checkpoint)
    reference = eager if checkpoint == "small_checkpoint" else Predictor(path, device="cpu", backend="torch",
                                                                         detector=eager.detector)
    fast = Predictor(path, device="cpu", backend=backend, detector=eager.detector)
    a, b = reference.predict(astronaut).people[0], fast.predict(astronaut).people[0]
    for name in ("pose", "betas", "cam_crop", "part_attention", "part_logits", "vertices", "joints2d"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.abs(x - y).max() <= 1e-3 * max(1.0, np.abs(x).max()), name


def test_predict_cli(small_checkpoint, tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    (folder / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    status = predict_main([str(folder), "--out", str(out), "--checkpoint", str(small_checkpoint), "--device", "cpu"])
    assert status == 1  # one file failed
    saved = np.load(out / "astronaut_person0.npz")
    assert saved["vertices"].shape == (13348, 3) and saved["joints2d"].shape == (24, 2)
    assert not (out / "broken_person0.npz").exists()
    for picture in ("overlay.png", "side.png", "attention.png", "keypoints.png", "mesh.glb"):
        assert (out / f"astronaut_{picture}").stat().st_size > 1000, picture


def test_refinement_recentres_a_poor_box_on_the_person(astronaut):
    """With the bundled (BlazePose) weights, a box shifted off the astronaut gives nearly the
    crop her own box gives once refined, and the network then sees her as it should."""
    detected = Predictor(device="cpu", flip_test=False, fit=False, refine=False).detector(astronaut)[0].box
    shift = np.array([0.25, 0.1, 0.25, 0.1]) * (detected[2] - detected[0])
    crops = {}
    for refine in (False, True):
        predictor = Predictor(device="cpu", flip_test=False, fit=False, refine=refine, detector=None)
        for name, box in (("good", detected), ("shifted", detected + shift)):
            crops[refine, name] = predictor.predict(astronaut, boxes=box[None]).people[0].crop
    gap = {refine: np.linalg.norm(crops[refine, "good"].center - crops[refine, "shifted"].center)
           / crops[refine, "good"].size for refine in (False, True)}
    assert gap[False] > 0.2 and gap[True] < 0.05
    assert crops[True, "good"].size == pytest.approx(crops[True, "shifted"].size, rel=0.05)
