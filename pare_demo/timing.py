"""Milliseconds per named stage: the one way the predictor, the app's paths and the video
pipeline time their work (the benchmark repeats whole calls, see pare_demo.benchmark)."""
from __future__ import annotations

import time
from contextlib import contextmanager


class StageTimer:
    """Stages in the order first timed; a stage timed again adds up.

        timer = StageTimer()
        ...; timer.lap("crop")          # the time since the last lap (or since start)
        with timer.stage("render"): ... # the time inside the block
    """

    def __init__(self):
        self.ms: dict[str, float] = {}
        self.started = self._clock = time.perf_counter()

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.add(name, (now - self._clock) * 1000)
        self._clock = now

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - start) * 1000)
            self._clock = time.perf_counter()

    def total_ms(self) -> float:
        """Since the timer started."""
        return (time.perf_counter() - self.started) * 1000
