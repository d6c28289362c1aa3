"""The 3DPW explorer tab: a dataset root's sequences, frame by frame, with ground truth
next to the prediction, errors over a sequence and occlusion sensitivity
(pare_demo.app.explorer)."""
from __future__ import annotations

import gradio as gr

from pare_demo import paths
from pare_demo.app.engine import Engine, available_body_models
from pare_demo.app.explorer import LEGEND, Explorer, ExplorerError, ground_truth_body_model
from pare_demo.app.ui.common import attention_views, loaded_predictor, person_choices, person_index, readable_errors
from pare_demo.body import BodyModelError


def explorer_tab(engine: Engine, tab: gr.Tab) -> None:
    gr.Markdown("Ground truth next to the prediction, frame by frame. The default root is the bundled "
                "synthetic sample set (3DPW layout); a real 3DPW download works the same. " + LEGEND + ".")
    explorers: dict = {}  # (root, predictor) -> Explorer, whose caches keep sequences already read

    def explorer_for(root: str) -> Explorer:
        predictor = loaded_predictor(engine)
        root = str(root or paths.SAMPLE_PW3D_DIR).strip()
        key = (root, id(predictor))
        if key not in explorers:
            try:
                gt_body = ground_truth_body_model(root, predictor, smpl_available="smpl" in available_body_models())
                explorers.clear()  # one at a time: each holds a network's worth of caches
                explorers[key] = Explorer(predictor, engine.renderer, root, gt_body_model=gt_body)
            except (ExplorerError, BodyModelError) as err:
                raise gr.Error(str(err)) from err
        return explorers[key]

    with gr.Row():
        root = gr.Textbox(label="Dataset root", value=str(paths.SAMPLE_PW3D_DIR), scale=3)
        open_root = gr.Button("Open", scale=1)
    with gr.Row():
        sequence = gr.Dropdown(label="Sequence", choices=[], interactive=True)
        person = gr.Dropdown(label="Person", choices=[], interactive=True)
        frame = gr.Slider(0, 1, step=1, value=0, label="Frame", interactive=True)
    metrics = gr.Markdown()
    with gr.Row():
        overlay = gr.Image(label="Ground truth and prediction", interactive=False)
        keypoints = gr.Image(label="2D keypoints (ground truth green)", interactive=False)
    with gr.Row():
        joint_errors = gr.Plot(label="Error per joint")
        skeleton = gr.Plot(label="3D keypoints with errors")
    part, heatmap, part_map, grid = attention_views()
    with gr.Row():
        sequence_button = gr.Button("Errors over the whole sequence")
        occlusion_button = gr.Button("Occlusion sensitivity of this frame")
    with gr.Row():
        with gr.Column(scale=2):
            sequence_plot = gr.Plot(label="Error over frames")
        with gr.Column(scale=1):
            worst = gr.Radio(label="Worst frames (PA-MPJPE): click one to show it", choices=[])
    occlusion = gr.Image(label="Occlusion sensitivity: how much the error grows when a grey patch hides each spot",
                         interactive=False)

    @readable_errors
    def open_dataset(root_text):
        explorer = explorer_for(root_text)
        names = sorted(explorer.sequences())
        return gr.update(choices=names, value=names[0] if names else None)

    @readable_errors
    def pick_sequence(root_text, name):
        if not name:
            return gr.update(), gr.update()
        explorer = explorer_for(root_text)
        persons = person_choices(explorer.persons(name))
        frames = explorer.frames(name, 0)
        if not frames:
            raise gr.Error(f"{name} has no frame with 3D ground truth for person 1.")
        return (gr.update(choices=persons, value=persons[0][1]),
                gr.update(minimum=frames[0], maximum=frames[-1], value=frames[0]))

    @readable_errors
    def show_frame(root_text, name, person, frame_id, part_name):
        if not name:
            return (None,) * 8
        explorer = explorer_for(root_text)
        p = person_index(person, len(explorer.persons(name)))
        frames = explorer.frames(name, p)
        frame_id = min(frames, key=lambda f: abs(f - int(frame_id)))  # the nearest frame with ground truth
        view = explorer.frame_view(name, frame_id, p)
        text = f"**{name}, frame {frame_id}, person {p + 1}:** {view.metrics_text()}"
        return (text, view.overlay, view.keypoints, view.joint_errors_figure, view.skeleton_3d,
                view.attention.heatmap(part_name or "left_wrist"), view.attention.part_map(), view.attention.grid())

    @readable_errors
    def sequence_errors(root_text, name, person, progress=gr.Progress()):
        if not name:
            raise gr.Error("Open a dataset and pick a sequence first.")
        explorer = explorer_for(root_text)
        p = person_index(person, len(explorer.persons(name)))
        errors = explorer.sequence_errors(name, p, progress=lambda done, total: progress(
            done / max(total, 1), desc="frames"))
        choices = [(f"frame {f}: {e:.1f} mm", f) for f, e in errors.worst_frames]
        return errors.figure, gr.update(choices=choices, value=None)

    @readable_errors
    def occlusion_map(root_text, name, person, frame_id, progress=gr.Progress()):
        if not name:
            raise gr.Error("Open a dataset and pick a sequence first.")
        explorer = explorer_for(root_text)
        p = person_index(person, len(explorer.persons(name)))
        frame_id = min(explorer.frames(name, p), key=lambda f: abs(f - int(frame_id)))
        result = explorer.occlusion_sensitivity(name, frame_id, p, progress=lambda done, total: progress(
            done / max(total, 1), desc="occluded crops"))
        return result.picture

    def jump_to(frame_id):
        return gr.update() if frame_id is None else int(frame_id)

    frame_inputs = [root, sequence, person, frame, part]
    frame_outputs = [metrics, overlay, keypoints, joint_errors, skeleton, heatmap, part_map, grid]
    for trigger in (open_root.click, root.submit):
        trigger(open_dataset, inputs=root, outputs=sequence, api_name=False)
    # The bundled samples open when the tab is first shown.
    tab.select(lambda root_text, name: gr.update() if name else open_dataset(root_text), inputs=[root, sequence],
               outputs=sequence, api_name=False)
    sequence.change(pick_sequence, inputs=[root, sequence], outputs=[person, frame], api_name=False).then(
        show_frame, inputs=frame_inputs, outputs=frame_outputs, api_name=False)
    for picker in (person.input, frame.release, part.input):
        picker(show_frame, inputs=frame_inputs, outputs=frame_outputs, api_name=False)
    sequence_button.click(sequence_errors, inputs=[root, sequence, person], outputs=[sequence_plot, worst],
                          api_name=False)
    occlusion_button.click(occlusion_map, inputs=[root, sequence, person, frame], outputs=occlusion, api_name=False)
    worst.select(jump_to, inputs=worst, outputs=frame, api_name=False).then(
        show_frame, inputs=frame_inputs, outputs=frame_outputs, api_name=False)
