"""BlazePose's landmark network after detection: its presence flag and the region its
landmarks give (pare_demo.blazepose.pose_landmarks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from pare_demo import paths
from pare_demo.blazepose.graph import load_graph
from pare_demo.blazepose.pose_landmarks import INPUT_SIZE, MIN_PRESENCE, PoseLandmarkNetwork, landmark_region
from pare_demo.crop import crop_image, make_crop, square_around

needs_weights = pytest.mark.skipif(not paths.BLAZEPOSE_LANDMARKS.exists(), reason="no converted BlazePose weights")
ASTRONAUT_BOX = np.array([120.0, 20.0, 400.0, 512.0])  # her head and upper body


@pytest.fixture(scope="module")
def network():
    return PoseLandmarkNetwork(backend="torch")


def test_landmark_region_is_mediapipes_roi_or_none():
    """Centred on the hip centre (landmark 33), side 2 x 1.25 x its distance to the
    body-scale point (34); None when the landmarks are mostly absent or the region absurd."""
    crop = make_crop(np.array([100.0, 200.0]), 80.0, 256)
    points = np.zeros((39, 2))
    points[33] = [110.0, 180.0]
    points[34] = [110.0, 195.0]  # 15 px below it
    present = np.full(39, 0.9)
    region = landmark_region(crop, points, present)
    np.testing.assert_allclose(region.center, [110.0, 180.0])
    assert region.size == pytest.approx(2 * 1.25 * 15.0) and region.out_size == 256
    assert landmark_region(crop, points, np.full(39, 0.1)) is None
    far = points.copy()
    far[34] = [600.0, 700.0]
    assert landmark_region(crop, far, present) is None


@needs_weights
def test_look_reads_the_graphs_outputs_in_image_pixels(network):
    """The landmarks are the graph's, moved from crop pixels to the image's; the presence
    flag is the graph's own probability."""
    image = data.astronaut()
    look = network.look(image, ASTRONAUT_BOX)
    centre, side = square_around(ASTRONAUT_BOX)
    crop = make_crop(centre, side, INPUT_SIZE)
    x = torch.from_numpy(crop_image(image, crop)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        out = load_graph(paths.BLAZEPOSE_LANDMARKS, outputs=["landmarks", "presence"])(x)
    raw = out["landmarks"].reshape(39, 5).numpy()
    scale = side / INPUT_SIZE  # crop pixels -> image pixels
    # The graph's x, y put a pixel's centre at i + 0.5; the crop's affine (OpenCV's) at i.
    index = raw[:, :2] - 0.5
    np.testing.assert_allclose(look.landmarks[:, :2], centre + (index - INPUT_SIZE / 2) * scale, atol=0.02 * scale)
    np.testing.assert_allclose(look.landmarks[:, 3], 1 / (1 + np.exp(-raw[:, 4])), atol=1e-6)
    assert look.presence == pytest.approx(float(out["presence"]), abs=1e-6)


@needs_weights
def test_presence_tells_a_person_from_none(network):
    """The astronaut is there; in the coffee cup and the text page nobody is."""
    astronaut = network.look(data.astronaut(), ASTRONAUT_BOX)
    assert astronaut.presence > 0.9
    nose = astronaut.landmarks[0, :2]
    assert 200 < nose[0] < 260 and 90 < nose[1] < 150  # her nose, about (232, 122)
    # The region is centred on her hips, well below her nose, and holds her whole body.
    region = astronaut.region
    assert region.center[1] > nose[1] + 150 and abs(region.center[0] - nose[0]) < 60
    assert region.size > 2 * (region.center[1] - nose[1]) and region.out_size == INPUT_SIZE
    for empty in (data.coffee(), np.dstack([data.text()] * 3)):
        h, w = empty.shape[:2]
        assert network.look(empty, np.array([w * 0.2, h * 0.1, w * 0.8, h * 0.9])).presence < MIN_PRESENCE


@needs_weights
def test_onnx_backend_looks_the_same(network):
    pytest.importorskip("onnxruntime")
    onnx = PoseLandmarkNetwork(backend="onnx")
    assert onnx.backend == "onnx"
    a, b = network.look(data.astronaut(), ASTRONAUT_BOX), onnx.look(data.astronaut(), ASTRONAUT_BOX)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.05)
    assert a.presence == pytest.approx(b.presence, abs=1e-3)
    np.testing.assert_allclose(a.region.center, b.region.center, atol=0.1)
