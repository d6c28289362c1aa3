"""The Video tab's pipeline, one concern per module: reading a clip (reader), following
people across frames (tracking), smoothing each track over time (smoothing), and the two
passes that turn a clip into the overlay clip and per-frame results (pipeline).

    result = process_video(predictor, renderer, "clip.mp4", "out/")
"""
from pare_demo.app.video.pipeline import FOURCC, SUFFIX, VideoResult, process_video
from pare_demo.app.video.reader import MAX_FRAMES, VideoError, VideoReader
from pare_demo.app.video.smoothing import Smoother
from pare_demo.app.video.tracking import Tracker

__all__ = ["FOURCC", "MAX_FRAMES", "SUFFIX", "Smoother", "Tracker", "VideoError", "VideoReader", "VideoResult",
           "process_video"]
