import pytest

from pare_demo import timing
from pare_demo.timing import StageTimer


def test_laps_and_stages_add_up_per_name(monkeypatch):
    """On a fake clock (seconds): a lap counts from the last lap or block, a block its inside."""
    now = [100.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    timer = StageTimer()
    now[0] += 0.020
    timer.lap("first")
    with timer.stage("block"):
        now[0] += 0.030
    now[0] += 0.010
    timer.lap("second")  # since the block ended, not since "first"
    with timer.stage("block"):
        now[0] += 0.005
    assert list(timer.ms) == ["first", "block", "second"]
    assert timer.ms == pytest.approx({"first": 20.0, "block": 35.0, "second": 10.0})
    assert timer.total_ms() == pytest.approx(65.0)
