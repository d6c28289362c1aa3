"""pare-demo's Gradio app. Only UI wiring lives here; the logic is in pare_demo/.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--checkpoint C] [--body-model B]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from pare_demo import paths  # noqa: E402
from pare_demo.analysis import analyse_image  # noqa: E402
from pare_demo.body import SMPL_JOINT_NAMES, load_body_model  # noqa: E402
from pare_demo.body.preview import body_figure  # noqa: E402
from pare_demo.engine import Engine, available_body_models, available_checkpoints  # noqa: E402
from pare_demo.images import ImageError, load_image  # noqa: E402

INTRO = """# pare-demo
See how a monocular 3D human mesh regressor thinks: PARE (Part Attention Regressor)
finds each body part's evidence with an attention map, then regresses that part's
rotation from what the map looks at. Upload a photo to see the mesh, the 24 part maps
and the keypoints side by side."""

UNLOCKS = f"""### Your own files
- **SMPL** (`SMPL_NEUTRAL.pkl` from smpl.is.tue.mpg.de) in `{paths.SMPL_DIR}` or `$PARE_SMPL_DIR`:
  the body model official PARE and 3DPW use (`--body-model smpl`).
- **Official PARE checkpoint**: convert with `python -m pare_demo.convert_official IN.ckpt
  --out {paths.CHECKPOINTS_DIR}/pare_official.pt`, then start with `--checkpoint` pointing at it.
- **3DPW** (virtualhumans.mpi-inf.mpg.de/3DPW): evaluation with `python -m training.evaluate`.
"""


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


def build_ui(engine: Engine) -> gr.Blocks:
    body_model = load_body_model("open")

    # delete_cache: Gradio's copies of our outputs go after an hour (checked every 30 minutes).
    with gr.Blocks(title="pare-demo", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        analysis_state = gr.State(None)
        with gr.Tab("Image"):
            with gr.Row():
                with gr.Column(scale=1):
                    # A file path, so that a broken upload reaches our own reader and its message.
                    photo = ImageInput(type="filepath", label="Photo", sources=["upload", "clipboard"])
                    run = gr.Button("Analyse", variant="primary")
                    examples = sorted(str(p) for p in (paths.ASSETS_DIR / "examples").glob("*.jpg"))
                    if examples:
                        gr.Examples(examples, inputs=photo)
                    status = gr.Markdown()
                with gr.Column(scale=2):
                    with gr.Row():
                        overlay = gr.Image(label="Mesh overlay", interactive=False)
                        side = gr.Image(label="Side view", interactive=False)
                        keypoints = gr.Image(label="2D keypoints", interactive=False)
            with gr.Row():
                person = gr.Dropdown(label="Person", choices=[], interactive=True)
                part = gr.Dropdown(label="Body part", choices=list(SMPL_JOINT_NAMES), value="left_wrist",
                                   interactive=True)
            with gr.Row():
                heatmap = gr.Image(label="Part attention", interactive=False)
                part_map = gr.Image(label="Most likely part per pixel", interactive=False)
            grid = gr.Image(label="All 24 part-attention maps", interactive=False)
            with gr.Row():
                skeleton = gr.Plot(label="3D keypoints")
                mesh = gr.Model3D(label="Mesh (part colours)")
            files = gr.File(label="Downloads: mesh (.glb, .obj) and SMPL parameters (.json)", file_count="multiple")

        with gr.Tab("Body model"):
            gr.Markdown("The open SMPL-format body model (CC0 MakeHuman data): move the sliders to change its shape.")
            with gr.Row():
                with gr.Column(scale=1):
                    sliders = [gr.Slider(-3, 3, value=0, step=0.5, label=f"beta {i}") for i in range(4)]
                with gr.Column(scale=2):
                    body_plot = gr.Plot(label="Front and side")
        with gr.Tab("Model"):
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
            gr.Markdown(UNLOCKS)

        def person_views(analysis, person_label, part_name):
            if analysis is None:
                return None, None, None, None
            k = max(0, int(str(person_label or "person 1").split()[-1]) - 1)
            k = min(k, len(analysis.people) - 1)
            return (analysis.part_heatmap(k, part_name or "left_wrist"), analysis.part_map(k),
                    analysis.attention_grid(k), analysis.skeleton_3d(k))

        def predict_image(image, part_name):
            """Image in; overlay, side view, keypoints, attention maps, 3D plot, mesh and files out."""
            predictor = engine.predictor  # a model switch during this request does not affect it
            if predictor is None:
                raise gr.Error(engine.error or "No network loaded.")
            if image is None:
                raise gr.Error("Please upload an image first.")
            try:
                analysis = analyse_image(predictor, engine.renderer, load_image(image), out_dir=engine.output_dir())
            except ImageError as err:
                raise gr.Error(str(err)) from err
            people = [f"person {i + 1}" for i in range(len(analysis.people))]
            views = person_views(analysis, people[0], part_name)
            file_list = [str(p) for p in analysis.files.values()]
            return (analysis.overlay, analysis.side, analysis.keypoints, *views, str(analysis.files["glb"]),
                    file_list, gr.update(choices=people, value=people[0]), analysis.timing_text(), analysis)

        outputs = [overlay, side, keypoints, heatmap, part_map, grid, skeleton, mesh, files, person, status,
                   analysis_state]
        run.click(predict_image, inputs=[photo, part], outputs=outputs, api_name="predict_image")
        for picker in (person, part):
            picker.change(person_views, inputs=[analysis_state, person, part],
                          outputs=[heatmap, part_map, grid, skeleton], api_name=False)

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

        load_button.click(switch_model, inputs=[checkpoint_pick, body_pick], outputs=model_text, api_name=False)
        rescan.click(rescan_files, outputs=[checkpoint_pick, body_pick], api_name=False)

        def show_body(*betas):
            return body_figure(body_model, list(betas))

        for slider in sliders:
            slider.release(show_body, inputs=sliders, outputs=body_plot, api_name=False)
        demo.load(show_body, inputs=sliders, outputs=body_plot, api_name=False)
    return demo


def _current_checkpoint(engine: Engine, found: dict) -> str | None:
    if engine.predictor is None:
        return None
    current = engine.predictor.checkpoint_path.resolve()
    return next((label for label, path in found.items() if path.resolve() == current), None)


def main() -> None:
    parser = argparse.ArgumentParser(description="pare-demo web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public link")
    parser.add_argument("--checkpoint", default=None, help="default: the bundled weights")
    parser.add_argument("--body-model", default=None, help="open, smpl or a file (default: the checkpoint's)")
    args = parser.parse_args()
    engine = Engine(args.checkpoint, args.body_model)
    # Gradio serves only its own cache (every output is copied there): no allowed_paths.
    demo = build_ui(engine)
    try:
        demo.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port,
                                                       share=args.share)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
