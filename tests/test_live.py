import cv2
import numpy as np
import pytest
from skimage import data

from pare_demo.detect import PersonDetector
from pare_demo.app.live import LiveSession, follow
from pare_demo.predictor import Predictor


class CountingDetector(PersonDetector):
    """The real OpenCV detector, counting the times it actually looks for people."""

    def __init__(self):
        super().__init__(prefer_torchvision=False, use_blazepose=False)
        self.searches = 0
        self.fast_searches = 0

    def __call__(self, image, boxes=None, fast=False):
        if boxes is None or not len(boxes):
            self.searches += 1
            self.fast_searches += fast
        return super().__call__(image, boxes, fast)


@pytest.fixture(scope="module")
def predictor():
    # The bundled weights put a body on the person, so the tracked box stays on her.
    return Predictor(device="cpu", detector=CountingDetector())


@pytest.fixture(scope="module")
def frame():
    return cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)


@pytest.mark.slow
def test_detector_runs_only_every_n_frames(predictor, renderer, frame):
    detector = predictor.detector
    detected = detector(frame, fast=True)[0].box
    session = LiveSession(predictor, renderer, detect_every=4)
    before, before_fast = detector.searches, detector.fast_searches
    for _ in range(4):
        image, info = session.process(frame, draw=("keypoints",))
        assert image.shape == frame.shape and "fps" in info and "network" in info
    assert detector.searches - before == 1 and session.detector_runs == 1
    # A still frame: the person has not moved, so the detected box is kept as it is.
    assert np.allclose(session._boxes[0], detected)
    session.process(frame, draw=())  # the 5th frame: time to look again
    assert detector.searches - before == 2 and session.frames == 5
    # Video frames get the detector's single whole-image look, not the tiled one for photos.
    assert detector.fast_searches - before_fast == 2


@pytest.mark.slow
def test_toggles_change_the_output_and_sizes_may_change(predictor, renderer, frame):
    session = LiveSession(predictor, renderer)
    plain, _ = session.process(frame, draw=())
    assert np.array_equal(plain, frame)
    outputs = {}
    for draw in (("mesh",), ("keypoints",), ("heatmap",), ("mesh", "keypoints", "heatmap")):
        image, info = session.process(frame, draw=draw, part="left_wrist")
        assert image.shape == frame.shape and image.dtype == np.uint8
        assert not np.array_equal(image, frame), draw
        outputs[draw] = image
    assert "render" in info and "heatmap" in info
    assert len({o.tobytes() for o in outputs.values()}) == len(outputs)
    # Another part's heatmap is another picture; pixels far outside the crop are untouched.
    other, _ = session.process(frame, draw=("heatmap",), part="head")
    assert not np.array_equal(other, outputs[("heatmap",)])
    assert np.array_equal(other[:, -40:], frame[:, -40:])
    # A frame of another size: detect again, same size out.
    runs = session.detector_runs
    small = cv2.resize(frame, (320, 240))
    image, _ = session.process(small, draw=("mesh", "heatmap"))
    assert image.shape == small.shape and session.detector_runs == runs + 1
    with pytest.raises(ValueError):
        session.process(frame, draw=("wireframe",))


def test_boxes_follow_the_joints_until_the_person_is_lost():
    box = np.array([100.0, 50.0, 300.0, 450.0])
    joints = np.random.default_rng(0).uniform([120, 60], [280, 440], size=(24, 2))
    assert np.allclose(follow(box, joints, joints + [30, -10], (640, 480)), box + [30, -10, 30, -10])
    assert follow(box, joints, joints + [500, 0], (640, 480)) is None      # walked out of the frame
    assert follow(box, joints, joints * np.nan, (640, 480)) is None        # no usable prediction
    # Cut by the frame's bottom edge: the box's centre is below it, the body is still seen.
    tall = np.array([-300.0, 5.0, 720.0, 1030.0])
    upper_body = np.random.default_rng(1).uniform([150, 100], [450, 470], size=(24, 2))
    assert np.allclose(follow(tall, upper_body, upper_body + [5, 0], (640, 480)), tall + [5, 0, 5, 0])


@pytest.mark.slow
def test_a_person_cut_by_the_frame_is_followed_not_detected_again(renderer, frame):
    """BlazePose's box of the astronaut (cut at the waist) reaches far below the frame: the
    session still follows her between detections."""
    predictor = Predictor(device="cpu")
    session = LiveSession(predictor, renderer, detect_every=5)
    for _ in range(5):
        session.process(frame, draw=())
    assert predictor.detector.name.startswith("blazepose")
    assert session._boxes[0][3] > frame.shape[0] and session.detector_runs == 1
