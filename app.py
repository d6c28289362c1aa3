"""pare-demo's Gradio app. Only UI wiring lives here; the logic is in pare_demo/.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--checkpoint C] [--body-model B]
"""
from __future__ import annotations

import argparse
import functools
import os
import signal
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.trustedhost import TrustedHostMiddleware  # noqa: E402

from pare_demo import paths  # noqa: E402
from pare_demo.analysis import analyse_image  # noqa: E402
from pare_demo.body import SMPL_JOINT_NAMES, BodyModelError, load_body_model  # noqa: E402
from pare_demo.body.preview import body_figure  # noqa: E402
from pare_demo.engine import Engine, available_body_models, available_checkpoints  # noqa: E402
from pare_demo.explorer import LEGEND, Explorer, ExplorerError, ground_truth_body_model  # noqa: E402
from pare_demo.images import ImageError, load_image  # noqa: E402
from pare_demo.live import DRAWABLE, LiveSession  # noqa: E402
from pare_demo.video import VideoError, process_video  # noqa: E402

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
- **3DPW** (virtualhumans.mpi-inf.mpg.de/3DPW): open its folder in the 3DPW explorer tab, or
  evaluate with `python -m training.evaluate --dataset-root ROOT`. Its ground truth is drawn with
  SMPL when SMPL is present (with the open body model otherwise, which is only approximate).
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


def _person_index(value, count: int) -> int:
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
        k = _person_index(person, len(analysis.people))
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
        p = _person_index(person, len(explorer.persons(name)))
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
        p = _person_index(person, len(explorer.persons(name)))
        errors = explorer.sequence_errors(name, p, progress=lambda done, total: progress(
            done / max(total, 1), desc="frames"))
        choices = [(f"frame {f}: {e:.1f} mm", f) for f, e in errors.worst_frames]
        return errors.figure, gr.update(choices=choices, value=None)

    @readable_errors
    def occlusion_map(root_text, name, person, frame_id, progress=gr.Progress()):
        if not name:
            raise gr.Error("Open a dataset and pick a sequence first.")
        explorer = explorer_for(root_text)
        p = _person_index(person, len(explorer.persons(name)))
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


MAX_UPLOAD = "200mb"  # videos included; images are also refused by pixel count (pare_demo.images)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str, share: bool, extra: list[str]) -> list[str] | None:
    """Host headers the server answers: the name it was started on (and the other loopback
    names when that is one), so a web page whose DNS name rebinds to this machine cannot
    drive the app. None (any host) when listening on all interfaces or sharing, where the
    names users type are not known here; --allowed-host adds names."""
    if share or host in ("0.0.0.0", "::", ""):
        return ["*"] if not extra else [*extra, *LOOPBACK]
    return sorted({host, *(LOOPBACK if host in LOOPBACK else ()), *extra})


def main() -> None:
    parser = argparse.ArgumentParser(description="pare-demo web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public link")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="another Host header to answer (a DNS name of this machine); repeatable")
    parser.add_argument("--checkpoint", default=None, help="default: the bundled weights")
    parser.add_argument("--body-model", default=None, help="open, smpl or a file (default: the checkpoint's)")
    args = parser.parse_args()
    engine = Engine(args.checkpoint, args.body_model)
    # A supervisor's SIGTERM ends the app as Ctrl-C does, through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Gradio serves only its own cache (every output is copied there): no allowed_paths.
    demo = build_ui(engine)
    hosts = allowed_hosts(args.host, args.share, args.allowed_host)
    try:
        demo.queue(default_concurrency_limit=1).launch(
            server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD,
            enable_monitoring=False,
            app_kwargs={"middleware": [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]})
    finally:
        engine.close()


if __name__ == "__main__":
    main()
