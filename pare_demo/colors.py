"""Colours used in every picture: one place, so a heatmap's part matches the mesh's part."""
from __future__ import annotations

import colorsys

import numpy as np


def _spread_hues(n: int, saturation: float, value: float, offset: float = 0.0) -> np.ndarray:
    """n well-separated RGB colours (0-1): hues stepped by the golden ratio."""
    hues = (offset + np.arange(n) * 0.618033988749895) % 1.0
    return np.array([colorsys.hsv_to_rgb(h, saturation, value) for h in hues])


# One colour per SMPL part (the 24 joints' parts), for part maps and part-coloured meshes.
PART_COLORS = _spread_hues(24, 0.75, 0.95)
# One colour per tracked person.
PERSON_COLORS = np.array([
    [0.65, 0.74, 0.86], [0.93, 0.62, 0.46], [0.60, 0.84, 0.60], [0.86, 0.62, 0.86],
    [0.95, 0.85, 0.45], [0.55, 0.82, 0.85], [0.85, 0.55, 0.55], [0.75, 0.75, 0.75],
])
PREDICTION_COLOR = np.array([0.65, 0.74, 0.86])
GROUND_TRUTH_COLOR = np.array([0.55, 0.85, 0.45])
# Skeletons: the body's left side, right side and centre line.
LEFT_COLOR = np.array([0.20, 0.55, 1.00])
RIGHT_COLOR = np.array([1.00, 0.35, 0.25])
CENTER_COLOR = np.array([0.95, 0.85, 0.30])


def person_color(index: int) -> np.ndarray:
    return PERSON_COLORS[index % len(PERSON_COLORS)]


def to_uint8(rgb: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(c * 255)) for c in np.asarray(rgb)[:3])
