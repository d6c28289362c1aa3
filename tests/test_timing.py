import time

import pytest

from pare_demo.timing import StageTimer


def test_laps_and_stages_add_up_per_name():
    timer = StageTimer()
    time.sleep(0.02)
    timer.lap("first")
    with timer.stage("block"):
        time.sleep(0.03)
    time.sleep(0.01)
    timer.lap("second")  # since the block ended, not since "first"
    with timer.stage("block"):
        time.sleep(0.01)
    assert list(timer.ms) == ["first", "block", "second"]
    assert timer.ms["first"] == pytest.approx(20, abs=15) and timer.ms["block"] == pytest.approx(40, abs=15)
    assert timer.ms["second"] == pytest.approx(10, abs=8)
    assert timer.total_ms() >= sum(timer.ms.values()) - 1e-6
