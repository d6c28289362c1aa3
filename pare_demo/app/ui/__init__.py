"""pare-demo's Gradio page: one module per tab, what they share in common.py.

    demo = build_ui(engine)        # a gr.Blocks; app.py launches it
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported

import gradio as gr  # noqa: E402

from pare_demo.app.engine import Engine  # noqa: E402
from pare_demo.app.ui.body_model import body_model_tab  # noqa: E402
from pare_demo.app.ui.explorer import explorer_tab  # noqa: E402
from pare_demo.app.ui.image import image_tab  # noqa: E402
from pare_demo.app.ui.model import model_tab  # noqa: E402
from pare_demo.app.ui.video import video_tab  # noqa: E402
from pare_demo.app.ui.webcam import webcam_tab  # noqa: E402


INTRO = """# pare-demo
See how a monocular 3D human mesh regressor thinks: PARE (Part Attention Regressor)
finds each body part's evidence with an attention map, then regresses that part's
rotation from what the map looks at. Upload a photo to see the mesh, the 24 part maps
and the keypoints side by side."""


def build_ui(engine: Engine) -> gr.Blocks:
    # delete_cache: Gradio's copies of our outputs go after an hour (checked every 30 minutes).
    with gr.Blocks(title="pare-demo", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Image"):
            image_tab(engine)
        with gr.Tab("Webcam"):
            webcam_tab(engine)
        with gr.Tab("Video"):
            video_tab(engine)
        with gr.Tab("3DPW explorer") as explorer:
            explorer_tab(engine, explorer)
        with gr.Tab("Body model"):
            body_model_tab(demo)
        with gr.Tab("Model"):
            model_tab(engine)
    return demo
