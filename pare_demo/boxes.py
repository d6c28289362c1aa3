"""Boxes x0, y0, x1, y1 in pixels: how much two of them overlap."""
from __future__ import annotations

import numpy as np


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _intersection(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 1, 4) and (1, M, 4) boxes from any (..., 4) inputs, and their (N, M) intersections."""
    a, b = np.asarray(a, float).reshape(-1, 1, 4), np.asarray(b, float).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return a, b, w * h


def box_iou(a, b) -> np.ndarray:
    """(N, 4) (or (4,)) and (M, 4) boxes -> (N, M) intersection over union; 0 without overlap."""
    a, b, inter = _intersection(a, b)
    return inter / np.maximum(_area(a) + _area(b) - inter, 1e-9)


def box_overlap(a, b) -> np.ndarray:
    """(N, 4) and (M, 4) boxes -> (N, M) intersection over the smaller box's area: 1 when one
    box lies inside the other."""
    a, b, inter = _intersection(a, b)
    return inter / np.maximum(np.minimum(_area(a), _area(b)), 1e-9)
