"""The Video tab: a clip in, the tracked people's meshes over it and the per-frame results
out (pare_demo.app.video)."""
from __future__ import annotations

import gradio as gr

from pare_demo.app.engine import Engine
from pare_demo.app.ui.common import loaded_predictor
from pare_demo.app.video import VideoError, process_video


def video_tab(engine: Engine) -> None:
    gr.Markdown("Upload a clip: every frame is analysed, people are tracked with a stable colour each, and "
                "their pose, shape and camera can be smoothed over time. On a 2-core CPU expect about a "
                "second per frame.")
    with gr.Row():
        with gr.Column(scale=1):
            clip = gr.Video(label="Clip", sources=["upload"], format=None)
            smoothing = gr.Checkbox(label="Temporal smoothing", value=True)
            max_frames = gr.Slider(10, 600, value=120, step=10, label="Frames to process at most")
            run = gr.Button("Process video", variant="primary")
        with gr.Column(scale=2):
            result = gr.Video(label="Meshes over the clip", format=None, interactive=False)
            summary = gr.Markdown()
            files = gr.File(label="Per-frame results (.npz, .json)", file_count="multiple")

    def run_video(path, smooth, limit, progress=gr.Progress()):
        predictor = loaded_predictor(engine)
        if not path:
            raise gr.Error("Please upload a video first.")
        try:
            done = process_video(predictor, engine.renderer, path, engine.output_dir(), smoothing=smooth,
                                 max_frames=int(limit), progress=lambda i, n: progress(i / max(n, 1), desc="frames"))
        except VideoError as err:
            raise gr.Error(str(err)) from err
        return str(done.video_path), done.message, [str(done.npz_path), str(done.json_path)]

    run.click(run_video, inputs=[clip, smoothing, max_frames], outputs=[result, summary, files], api_name=False)
