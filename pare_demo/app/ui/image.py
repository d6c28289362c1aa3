"""The Image tab: a photo in; the mesh overlay, side view, keypoints, attention maps, 3D
views and downloads out (all computed by pare_demo.app.analysis). Its handler is the
app's one API endpoint, `predict_image`."""
from __future__ import annotations

import gradio as gr

from pare_demo import paths
from pare_demo.app.analysis import analyse_image
from pare_demo.app.engine import Engine
from pare_demo.app.ui.common import ImageInput, attention_views, loaded_predictor, person_choices, person_index
from pare_demo.images import ImageError, load_image


def image_tab(engine: Engine) -> None:
    analysis_state = gr.State(None)
    # The answer first and large, beside the photo: the overlay, with the side view and the
    # keypoints stacked next to it, all within a 1280 x 800 window; attention views below.
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=240):
            # A file path, so that a broken upload reaches our own reader and its message.
            photo = ImageInput(type="filepath", image_mode=None, label="Photo", sources=["upload", "clipboard"],
                               height=320)
            run = gr.Button("Analyse", variant="primary")
            examples = sorted(str(p) for p in (paths.ASSETS_DIR / "examples").glob("*.jpg"))
            if examples:
                gr.Examples(examples, inputs=photo)
            status = gr.Markdown()
        with gr.Column(scale=2, min_width=420):
            overlay = gr.Image(label="Mesh overlay", interactive=False, height=540)
        with gr.Column(scale=1, min_width=220):
            side = gr.Image(label="Side view", interactive=False, height=262)
            keypoints = gr.Image(label="2D keypoints", interactive=False, height=262)
    person = gr.Dropdown(label="Person", choices=[], interactive=True)
    part, heatmap, part_map, grid = attention_views()
    with gr.Row():
        skeleton = gr.Plot(label="3D keypoints")
        # Seen from the photo's camera: Gradio's default view (alpha 90) looks at the back
        # of the camera-frame mesh the GLB holds.
        mesh = gr.Model3D(label="Mesh (part colours)", camera_position=(-90, 90, None))
    files = gr.File(label="Downloads: mesh (.glb, .obj) and SMPL parameters (.json)", file_count="multiple")

    def person_views(analysis, person, part_name):
        if analysis is None:
            return None, None, None, None
        k = person_index(person, len(analysis.people))
        return (analysis.part_heatmap(k, part_name or "left_wrist"), analysis.part_map(k),
                analysis.attention_grid(k), analysis.skeleton_3d(k))

    def predict_image(image, part_name):
        """Image in; overlay, side view, keypoints, attention maps, 3D plot, mesh and files out."""
        predictor = loaded_predictor(engine)  # a model switch during this request does not affect it
        if image is None:
            raise gr.Error("Please upload an image first.")
        try:
            analysis = analyse_image(predictor, engine.renderer, load_image(image), out_dir=engine.output_dir())
        except ImageError as err:
            raise gr.Error(str(err)) from err
        people = person_choices(range(len(analysis.people)))
        views = person_views(analysis, 0, part_name)
        file_list = [str(p) for p in analysis.files.values()]
        return (analysis.overlay, analysis.side, analysis.keypoints, *views, str(analysis.files["glb"]),
                file_list, gr.update(choices=people, value=0), analysis.timing_text(), analysis)

    outputs = [overlay, side, keypoints, heatmap, part_map, grid, skeleton, mesh, files, person, status,
               analysis_state]
    run.click(predict_image, inputs=[photo, part], outputs=outputs, api_name="predict_image")
    for picker in (person, part):
        picker.change(person_views, inputs=[analysis_state, person, part],
                      outputs=[heatmap, part_map, grid, skeleton], api_name=False)
