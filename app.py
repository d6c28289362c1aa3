"""pare-demo's Gradio app. Only UI wiring lives here; the model logic is in pare_demo/.

    python app.py [--host 127.0.0.1] [--port 7860] [--share]

Until the network and the predictor land, the page shows the open body model that
everything else is built on, with sliders for its shape components.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from pare_demo.body import load_body_model  # noqa: E402
from pare_demo.body.preview import body_figure  # noqa: E402

COMING = """
# pare-demo
See how a monocular 3D human mesh regressor (PARE, Part Attention Regressor) thinks.

**Coming next:** image and webcam inference with the mesh overlay, the 24 part-attention
maps and 2D/3D keypoints side by side, and a 3DPW explorer with ground truth next to the
predictions. Today this page shows the open SMPL-format body model that the network
regresses: move the sliders to change its shape.
"""


def build_ui() -> gr.Blocks:
    model = load_body_model("open")
    with gr.Blocks(title="pare-demo") as demo:
        gr.Markdown(COMING)
        with gr.Row():
            with gr.Column(scale=1):
                sliders = [gr.Slider(-3, 3, value=0, step=0.5, label=f"beta {i}") for i in range(4)]
            with gr.Column(scale=2):
                plot = gr.Plot(label="Open body model (front and side)")

        def show(*betas):
            return body_figure(model, list(betas))

        for slider in sliders:
            slider.release(show, inputs=sliders, outputs=plot)
        demo.load(show, inputs=sliders, outputs=plot)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="pare-demo web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public link")
    args = parser.parse_args()
    build_ui().queue().launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
