"""What the tabs share: the image input, error handling, the predictor in use, person
pickers and the attention views laid out alike in every tab."""
from __future__ import annotations

import functools

import gradio as gr

from pare_demo.app.engine import Engine
from pare_demo.app.explorer import ExplorerError
from pare_demo.app.video import VideoError
from pare_demo.body import SMPL_JOINT_NAMES
from pare_demo.images import ImageError


class ImageInput(gr.Image):
    """gr.Image that passes an unreadable upload on as its file path, so that pare-demo's
    own reader says what is wrong with it (Gradio's preprocessing would fail silently)."""

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # noqa: BLE001 - any decoding failure: let load_image explain it
            return getattr(payload, "path", None)


def readable_errors(handler):
    """Our own errors (a bad file, a dataset problem) reach the page as their message."""
    @functools.wraps(handler)  # Gradio reads the signature (gr.Progress) through __wrapped__
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (ExplorerError, ImageError, VideoError) as err:
            raise gr.Error(str(err)) from err
    return wrapped


def loaded_predictor(engine: Engine):
    """The engine's current predictor, or the reason there is none as the page's error."""
    if engine.predictor is None:
        raise gr.Error(engine.error or "No network loaded.")
    return engine.predictor


def person_choices(indices) -> list[tuple[str, int]]:
    """Person pickers show 'person 1', 'person 2', ... and hand the handlers the index."""
    return [(f"person {k + 1}", k) for k in indices]


def person_index(value, count: int) -> int:
    """A person picker's value (None before the first choice), clipped to the people there are."""
    return min(max(int(value or 0), 0), count - 1)


def attention_views():
    """The part picker and the three attention pictures, laid out alike in every tab."""
    part = gr.Dropdown(label="Body part", choices=list(SMPL_JOINT_NAMES), value="left_wrist", interactive=True)
    with gr.Row():
        heatmap = gr.Image(label="Part attention", interactive=False)
        part_map = gr.Image(label="Most likely part per pixel", interactive=False)
    grid = gr.Image(label="All 24 part-attention maps", interactive=False)
    return part, heatmap, part_map, grid
