"""BlazePose's landmark network in the role MediaPipe gives it right after detection.

MediaPipe's pose pipeline crops each detected person and runs the landmark network there:
a presence flag below min_tracking_confidence means nobody is there, and the landmarks
give the next crop (hip centre, body-scale point). Here both serve still photos:

- the presence check lets the detector keep its weaker candidates (tiles find small people)
  without keeping false ones: pare_demo.blazepose.detector;
- the landmarks' region becomes the crop the PARE network sees: the predictor's refined crops.

It is always the original network (the converted weights in assets/blazepose), never the
trunk a BlazePose PARE backbone carries, which training may fine-tune.

    look = PoseLandmarkNetwork().look(image_rgb_uint8, person_box)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pare_demo.blazepose.landmarks import roi_from_landmarks
from pare_demo.crop import Crop, crop_image, crop_to_image_points, make_crop, square_around

INPUT_SIZE = 256          # RGB in [0, 1]
MIN_PRESENCE = 0.5        # MediaPipe's min_tracking_confidence default, for the presence flag
MIN_LANDMARK_PRESENCE = 0.5  # mean landmark presence below which their region is not trusted
OUTPUTS = ("landmarks", "presence")


@dataclass(frozen=True)
class LandmarkLook:
    presence: float            # the network's pose presence flag: probability that a person is there
    landmarks: np.ndarray      # (39, 4): x, y in image pixels, visibility, presence (probabilities)
    # The next crop (MediaPipe's landmarks-to-ROI, unrotated), or the one it looked in where
    # the landmarks are not trusted.
    region: Crop


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # 1 / (1 + e^-x), without overflow


def landmark_region(crop: Crop, points: np.ndarray, landmark_presence: np.ndarray) -> Crop | None:
    """The square the landmark network would look at next, as a crop like `crop`, from its
    (39, 2) landmarks in image pixels; None where they are not trusted: mostly absent, or a
    region three times larger or smaller than the crop they were found in (a wild guess)."""
    if landmark_presence.mean() < MIN_LANDMARK_PRESENCE:
        return None
    centre, side = roi_from_landmarks(points)
    if not (crop.size / 3 <= side <= crop.size * 3):
        return None
    return make_crop(centre, side, crop.out_size)


class PoseLandmarkNetwork:
    """backend: "torch", "onnx" or "auto", as pare_demo.blazepose.runtime.load_network."""

    def __init__(self, weights: str | Path | None = None, backend: str = "auto"):
        from pare_demo import paths
        from pare_demo.blazepose.runtime import load_network

        self.network = load_network(Path(weights) if weights else paths.BLAZEPOSE_LANDMARKS, backend, OUTPUTS)

    @property
    def backend(self) -> str:
        return self.network.backend

    def look(self, image: np.ndarray, box: np.ndarray) -> LandmarkLook:
        """Run on the square the predictor crops around `box` (x0, y0, x1, y1 in pixels of
        the RGB uint8 `image`)."""
        centre, side = square_around(box)
        crop = make_crop(centre, side, INPUT_SIZE)
        pixels = crop_image(image, crop).astype(np.float32) / 255.0
        out = self.network(pixels.transpose(2, 0, 1)[None])
        raw = out["landmarks"].reshape(-1, 5)
        # x, y are in the crop's continuous pixel coordinates (a pixel's centre at i + 0.5).
        points = crop_to_image_points(raw[:, :2] - 0.5, crop)
        probabilities = sigmoid(raw[:, 3:5])
        region = landmark_region(crop, points, probabilities[:, 1]) or crop
        return LandmarkLook(presence=float(out["presence"].reshape(-1)[0]),
                            landmarks=np.concatenate([points, probabilities], axis=1), region=region)
