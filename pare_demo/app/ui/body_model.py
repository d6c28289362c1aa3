"""The Body model tab: the open body model, reshaped with sliders."""
from __future__ import annotations

import gradio as gr

from pare_demo.body import load_body_model
from pare_demo.body.preview import body_figure


def body_model_tab(demo: gr.Blocks) -> None:
    body_model = load_body_model("open")
    gr.Markdown("The open SMPL-format body model (CC0 MakeHuman data): move the sliders to change its shape.")
    with gr.Row():
        with gr.Column(scale=1):
            sliders = [gr.Slider(-3, 3, value=0, step=0.5, label=f"beta {i}") for i in range(4)]
        with gr.Column(scale=2):
            body_plot = gr.Plot(label="Front and side")

    def show_body(*betas):
        return body_figure(body_model, list(betas))

    for slider in sliders:
        slider.release(show_body, inputs=sliders, outputs=body_plot, api_name=False)
    demo.load(show_body, inputs=sliders, outputs=body_plot, api_name=False)
