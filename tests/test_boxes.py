import numpy as np
import pytest

from pare_demo.boxes import box_iou, box_overlap


def test_iou_and_overlap_of_box_sets():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 120]])
    b = np.array([[5, 0, 15, 10], [2, 2, 4, 4], [50, 50, 60, 60]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[0, 1] == pytest.approx(4 / 100)
    assert (iou[1] == 0).all() and iou[0, 2] == 0
    inside = box_overlap(a, b)
    assert inside[0, 1] == pytest.approx(1.0) and inside[0, 0] == pytest.approx(0.5)
    assert box_iou(a[0], a[0])[0, 0] == pytest.approx(1.0)  # a single (4,) box is one row
