"""The Model tab: which checkpoint and body model the app runs, switchable without a
restart, the flip test and the fit to attention, and the user's own files it can use."""
from __future__ import annotations

import gradio as gr

from pare_demo import paths
from pare_demo.app.engine import Engine, available_body_models, available_checkpoints

UNLOCKS = f"""### Your own files
- **SMPL** (`SMPL_NEUTRAL.pkl` from smpl.is.tue.mpg.de) in `{paths.SMPL_DIR}` or `$PARE_SMPL_DIR`:
  the body model official PARE and 3DPW use (`--body-model smpl`).
- **Official PARE checkpoint**: convert with `python -m pare_demo.convert_official IN.ckpt
  --out {paths.CHECKPOINTS_DIR}/pare_official.pt`, then start with `--checkpoint` pointing at it.
- **3DPW** (virtualhumans.mpi-inf.mpg.de/3DPW): open its folder in the 3DPW explorer tab, or
  evaluate with `python -m training.evaluate --dataset-root ROOT`. Its ground truth is drawn with
  SMPL when SMPL is present (with the open body model otherwise, which is only approximate).
"""


def model_tab(engine: Engine) -> None:
    model_text = gr.Markdown(engine.describe())
    with gr.Row():
        checkpoints = available_checkpoints(engine.extra_checkpoint)
        checkpoint_pick = gr.Dropdown(label="Checkpoint", choices=list(checkpoints),
                                      value=_current_checkpoint(engine, checkpoints), interactive=True)
        body_pick = gr.Dropdown(label="Body model", choices=available_body_models(),
                                value=engine.predictor.body_model.model_name if engine.predictor else "open",
                                interactive=True)
        load_button = gr.Button("Load")
        rescan = gr.Button("Look for new files")
    flip_test = gr.Checkbox(label="Flip test: average each crop's prediction with its mirror image's "
                                  "(lower errors, twice the network time)",
                            value=lambda: engine.flip_test)  # read at each page load
    fit = gr.Checkbox(label="Fit to attention: move each body's projected joints onto its part-attention "
                            "keypoints (camera and small joint rotations; on real photos far better 2D)",
                      value=lambda: engine.fit)
    gr.Markdown(UNLOCKS)

    def switch_model(label, body_name):
        path = available_checkpoints(engine.extra_checkpoint).get(label)
        if path is None:
            raise gr.Error(f"{label} is no longer in {paths.CHECKPOINTS_DIR}.")
        if not engine.load(path, body_name):
            gr.Warning(f"Kept the current model: {engine.error}")
        return engine.describe()

    def rescan_files():
        found = available_checkpoints(engine.extra_checkpoint)
        return (gr.update(choices=list(found), value=_current_checkpoint(engine, found)),
                gr.update(choices=available_body_models()))

    def toggle_flip_test(on):
        engine.set_flip_test(on)
        return engine.describe()

    def toggle_fit(on):
        engine.set_fit(on)
        return engine.describe()

    load_button.click(switch_model, inputs=[checkpoint_pick, body_pick], outputs=model_text, api_name=False)
    flip_test.change(toggle_flip_test, inputs=flip_test, outputs=model_text, api_name=False)
    fit.change(toggle_fit, inputs=fit, outputs=model_text, api_name=False)
    rescan.click(rescan_files, outputs=[checkpoint_pick, body_pick], api_name=False)


def _current_checkpoint(engine: Engine, found: dict) -> str | None:
    if engine.predictor is None:
        return None
    current = engine.predictor.checkpoint_path.resolve()
    return next((label for label, path in found.items() if path.resolve() == current), None)
