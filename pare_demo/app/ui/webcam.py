"""The Webcam tab: the camera's frames streamed through pare_demo.app.live, one
LiveSession per browser tab."""
from __future__ import annotations

import gradio as gr

from pare_demo.app.engine import Engine
from pare_demo.app.live import DRAWABLE, LiveSession
from pare_demo.body import SMPL_JOINT_NAMES
from pare_demo.images import ImageError


def webcam_tab(engine: Engine) -> None:
    gr.Markdown("Allow the camera, then press the record button: each frame comes back with the mesh "
                "(and, if you like, the 2D keypoints or one part's attention) as fast as this machine "
                "allows. Frames that arrive while one is being processed are dropped, not queued.")
    session = gr.State(None)  # one LiveSession per browser tab: it follows that tab's people
    with gr.Row():
        camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy")
        live = gr.Image(label="Live result", interactive=False)
    with gr.Row():
        draw = gr.CheckboxGroup(list(DRAWABLE), value=["mesh"], label="Draw")
        part = gr.Dropdown(label="Body part (heatmap)", choices=list(SMPL_JOINT_NAMES), value="left_wrist")
    info = gr.Markdown()

    def on_frame(frame, what, part_name, current):
        predictor = engine.predictor
        if frame is None or predictor is None:
            return gr.update(), engine.error or "", current
        if current is None or current.predictor is not predictor:  # first frame, or the model was switched
            current = LiveSession(predictor, engine.renderer)
        try:
            image, text = current.process(frame, draw=tuple(what or ()), part=part_name or "left_wrist")
        except ImageError as err:
            return gr.update(), str(err), current
        return image, text, current

    # The browser sends the next frame only once the last one is answered, so frames that
    # arrive meanwhile are dropped (measured: a 0.5 s handler leaves no backlog behind).
    # (trigger_mode="always_last" stops a webcam stream after its first frame in Gradio 6.31.)
    camera.stream(on_frame, inputs=[camera, draw, part, session], outputs=[live, info, session],
                  stream_every=0.1, time_limit=300, concurrency_limit=1, show_progress="hidden", api_name=False)
