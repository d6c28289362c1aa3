"""Square crops around person boxes, and the way back to the full image.

A crop is an affine map from full-image pixels to crop pixels (2 x 3). Points, 2D
joints and attention maps go back through its inverse.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_SCALE = 1.2  # the crop side is this much larger than the box's longer side


@dataclass(frozen=True)
class Crop:
    center: np.ndarray   # (2,) full-image pixels
    size: float          # side of the square, full-image pixels
    out_size: int        # side of the crop in pixels
    affine: np.ndarray   # (2, 3) full image -> crop

    @property
    def inverse(self) -> np.ndarray:
        """(2, 3) crop -> full image."""
        return cv2.invertAffineTransform(self.affine)

    def scaled(self, factor: float) -> "Crop":
        """The same crop of the image resized by `factor`."""
        return make_crop(self.center * factor, self.size * factor, self.out_size)


def square_around(box, scale: float = DEFAULT_SCALE) -> tuple[np.ndarray, float]:
    """Centre and side of the square crop for box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return center, max(x1 - x0, y1 - y0, 1.0) * scale


def make_crop(center, size: float, out_size: int) -> Crop:
    s = out_size / size
    affine = np.array([[s, 0.0, out_size / 2 - s * center[0]],
                       [0.0, s, out_size / 2 - s * center[1]]])
    return Crop(np.asarray(center, dtype=np.float64), float(size), out_size, affine)


def crop_image(image: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop's pixels; outside the image is black (what PARE was trained with)."""
    return cv2.warpAffine(image, crop.affine, (crop.out_size, crop.out_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(..., 2) points through a 2 x 3 affine map."""
    return points @ affine[:, :2].T + affine[:, 2]


def crop_to_image_points(points: np.ndarray, crop: Crop) -> np.ndarray:
    return apply_affine(points, crop.inverse)


def crop_map_to_image(maps: np.ndarray, crop: Crop, image_shape: tuple[int, int]) -> np.ndarray:
    """(K, h, w) maps over the crop (any resolution) -> (K, H, W) over the full image,
    zero outside the crop."""
    k, h, w = maps.shape
    # Map pixel centres: crop pixel (u, v) of an h x w map sits at ((u + .5) * S / w - .5) in the crop.
    to_crop = np.array([[crop.out_size / w, 0, 0.5 * crop.out_size / w - 0.5],
                        [0, crop.out_size / h, 0.5 * crop.out_size / h - 0.5], [0, 0, 1]])
    inv = np.vstack([crop.inverse, [0, 0, 1]])
    full = (inv @ to_crop)[:2]
    height, width = image_shape
    out = np.empty((k, height, width), dtype=np.float32)
    for i in range(k):  # warpAffine handles at most 4 channels at a time
        out[i] = cv2.warpAffine(maps[i].astype(np.float32), full, (width, height),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out
