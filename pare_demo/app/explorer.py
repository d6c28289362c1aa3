"""The app's 3DPW explorer: a dataset root (3DPW, or a synthetic set in its layout), its
sequences and frames, and for one person in one frame the network against ground truth:
meshes, keypoints, errors, attention, and an occlusion-sensitivity map.

    explorer = Explorer(predictor, renderer, paths.SAMPLE_PW3D_DIR)
    view = explorer.frame_view("synth_s15_0000", frame=12, person=0)
    errors = explorer.sequence_errors("synth_s15_0000", person=0)
    occlusion = explorer.occlusion_sensitivity("synth_s15_0000", frame=12, person=0)

The network sees the ground-truth box crop and the numbers are evaluate_samples' (sequence
errors) or its score_frames (one frame), so they equal the evaluate CLI's; as there, men's
and women's ground truth is posed with SMPL's male and female models where their files are
found (GroundTruthBodies.protocol), and the text says which model posed it. Pictures are
arrays, and every file read is checked to lie inside the root, so the app never serves
anything else.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch

from pare_demo import metrics, paths, visualize
from pare_demo.app.analysis import AttentionViews, display_size
from pare_demo.body import load_body_model
from pare_demo.body.joint_names import EVAL_JOINT_NAMES
from pare_demo.colors import GROUND_TRUTH_COLOR, PREDICTION_COLOR
from pare_demo.crop import crop_image, make_crop, square_around
from pare_demo.data.pw3d import SPLITS, read_sequence_file, sequence_samples, to_camera_frame
from pare_demo.data.samples import Sample
from pare_demo.evaluation import FrameResult, GroundTruthBodies, evaluate_samples, score_frames
from pare_demo.geometry import GL_FLIP
from pare_demo.images import load_image
from pare_demo.predictor import ImageResult, Prediction
from pare_demo.render import MeshToRender

LAYOUT = "ROOT/sequenceFiles/{train,validation,test}/*.pkl and ROOT/imageFiles/<sequence>/image_XXXXX.jpg"
GET_3DPW = ("3DPW is at https://virtualhumans.mpi-inf.mpg.de/3DPW: unzip imageFiles.zip and "
            "sequenceFiles.zip into one folder and give that folder.")
LEGEND = "green: ground truth, blue: prediction"
GREY = 128             # the occluding patch's value in every channel
OCCLUSION_GRID = 5     # default patch positions per side: 26 network runs in all
OVERLAY_OPACITY = 0.7  # both meshes half see-through, so the one drawn first still shows
DISPLAY_MAX_SIDE = 960  # overlay and keypoint pictures at most this large (3DPW's are 1920 px)
Progress = Callable[[int, int], None]  # (done, total)


class ExplorerError(ValueError):
    """The dataset root, a sequence, a frame or an image is not there; the message says what to do."""


@dataclass
class FrameView:
    """One person in one frame. 3D joints in the figures are root-aligned, camera axes, y up."""
    sample: Sample
    result: FrameResult        # the evaluate CLI's errors and bodies for this frame
    prediction: Prediction     # from the same crop: 2D joints, attention
    image_result: ImageResult  # the predictor's whole answer: full-image camera, image size
    image: np.ndarray          # downscaled to DISPLAY_MAX_SIDE at most, as are the pictures
    overlay: np.ndarray        # ground-truth and predicted meshes, LEGEND's colours
    keypoints: np.ndarray      # predicted 2D skeleton, ground truth in green
    joint_errors_figure: object  # plotly bar chart, 14 LSP joints
    skeleton_3d: object        # plotly 3D joints, ground truth and per-joint error lines

    @property
    def metrics(self) -> dict[str, float]:
        r = self.result
        return {"mpjpe": r.mpjpe, "pa_mpjpe": r.pa_mpjpe, "pve": r.pve}

    def metrics_text(self) -> str:
        r = self.result
        return (f"MPJPE {r.mpjpe:.1f} mm, PA-MPJPE {r.pa_mpjpe:.1f} mm, PVE {r.pve:.1f} mm "
                f"(ground truth posed with {r.gt_body_model}, {self.sample.gender})")

    @cached_property
    def attention(self) -> AttentionViews:
        """The part heatmap, 24-part grid and part map, as in the Image tab."""
        return AttentionViews(self.image, self.prediction, self.image_result.image_size)


@dataclass
class SequenceErrors:
    """Per-frame errors (mm) of one person over a sequence's frames with ground truth."""
    sequence: str
    person: int
    frames: np.ndarray  # (N,) frame ids
    mpjpe: np.ndarray
    pa_mpjpe: np.ndarray
    pve: np.ndarray

    def worst(self, n: int = 10) -> list[tuple[int, float]]:
        """(frame id, PA-MPJPE) of the n worst frames, worst first."""
        order = np.argsort(-self.pa_mpjpe, kind="stable")[:n]
        return [(int(self.frames[i]), float(self.pa_mpjpe[i])) for i in order]

    @cached_property
    def worst_frames(self) -> list[tuple[int, float]]:
        return self.worst()

    @cached_property
    def figure(self):
        import plotly.graph_objects as go

        fig = go.Figure([go.Scatter(x=self.frames, y=values, mode="lines", name=name)
                         for name, values in (("MPJPE", self.mpjpe), ("PA-MPJPE", self.pa_mpjpe),
                                              ("PVE", self.pve))])
        fig.update_layout(title=f"{self.sequence}, person {self.person + 1}", xaxis_title="frame",
                          yaxis_title="error (mm)", hovermode="x unified", margin=dict(l=10, r=10, t=40, b=10))
        return fig


@dataclass
class OcclusionMap:
    """MPJPE (LSP-14, mm) with a grey patch at each grid position of the network's crop."""
    crop: np.ndarray      # (S, S, 3) the unoccluded input crop
    patch: int            # patch side, crop pixels
    stride: int           # grid step, crop pixels; cell (i, j) covers rows i*stride..+patch, cols j*stride..+patch
    base_error: float     # without occlusion
    error: np.ndarray     # (rows, cols)
    picture: np.ndarray   # the increase over the crop, with a colour bar

    @property
    def increase(self) -> np.ndarray:
        return self.error - self.base_error

    @property
    def min(self) -> float:
        return float(self.increase.min())

    @property
    def max(self) -> float:
        return float(self.increase.max())


class Explorer:
    def __init__(self, predictor, renderer, root: str | Path = paths.SAMPLE_PW3D_DIR, gt_body_model=None):
        """gt_body_model: the body model of the ground truth of people of neutral or unknown
        gender (real 3DPW needs SMPL); by default the predictor's, as the evaluate CLI does.
        Men and women are posed with SMPL's male and female models where their files are found."""
        self.predictor, self.renderer = predictor, renderer
        self.root = Path(root)
        self._files = self._list_sequences()  # name -> (split, sequence file)
        self.gt_bodies = GroundTruthBodies.protocol(gt_body_model or predictor.body_model)
        self._samples: dict[str, dict[tuple[int, int], Sample]] = {}
        self._errors: dict[tuple[str, int, bool], SequenceErrors] = {}  # + the flip test's state

    # ------------------------------------------------------------ listing
    def _list_sequences(self) -> dict[str, tuple[str, Path]]:
        if not self.root.is_dir():
            raise ExplorerError(f"The dataset folder {self.root} does not exist. Expected {LAYOUT}. {GET_3DPW}")
        found = {}
        for split in SPLITS:
            for path in sorted((self.root / "sequenceFiles" / split).glob("*.pkl")):
                found.setdefault(path.stem, (split, path))
        if not found:
            raise ExplorerError(f"{self.root} is not in 3DPW's layout: it has no sequenceFiles/<split>/*.pkl. "
                                f"Expected {LAYOUT}. {GET_3DPW}")
        return found

    def sequences(self) -> dict[str, str]:
        """Sequence name -> split, all splits."""
        return {name: split for name, (split, _) in self._files.items()}

    def persons(self, sequence: str) -> list[int]:
        return sorted({person for person, _ in self._sequence(sequence)})

    def frames(self, sequence: str, person: int | None = None) -> list[int]:
        """Frame ids with valid 3D ground truth (for anyone, or for one person)."""
        return sorted({frame for (p, frame), s in self._sequence(sequence).items()
                       if s.has_3d and (person is None or int(person) == p)})

    def _sequence(self, sequence: str) -> dict[tuple[int, int], Sample]:
        """(person, frame) -> Sample, read on first use."""
        if sequence not in self._files:
            names = ", ".join(list(self._files)[:8]) + (", ..." if len(self._files) > 8 else "")
            raise ExplorerError(f"No sequence {sequence!r} in {self.root} (there are: {names}).")
        if sequence not in self._samples:
            path = self._files[sequence][1]
            try:
                samples = sequence_samples(self.root, read_sequence_file(path))
            except Exception as err:  # pickle, key and shape errors alike: the file is not 3DPW's
                raise ExplorerError(f"{path} could not be read as a 3DPW sequence file: {err}") from err
            self._samples[sequence] = {(s.person, s.frame): s for s in samples}
        return self._samples[sequence]

    def sample(self, sequence: str, frame: int, person: int = 0) -> Sample:
        """The Sample of one person in one frame, with 3D ground truth and its image on disk."""
        samples = self._sequence(sequence)
        s = samples.get((int(person), int(frame)))
        if s is None or not s.has_3d:
            valid = self.frames(sequence, int(person))
            span = f"{len(valid)} frames from {valid[0]} to {valid[-1]}" if valid else "none"
            raise ExplorerError(f"{sequence} has no ground truth for person {int(person) + 1} in frame {frame} "
                                f"(persons 1-{len(self.persons(sequence))}; frames with ground truth: {span}).")
        self._check_image(s.image_path)
        return s

    def _check_image(self, path: Path) -> None:
        # Real paths: a crafted name with '..', or a symlink (imageFiles itself, a sequence
        # folder, an image) must not lead out of the dataset.
        images = self.root.resolve() / "imageFiles"
        if not path.resolve().is_relative_to(images):
            raise ExplorerError(f"Refusing to read {path}: it is outside {images}.")
        if not path.is_file():
            raise ExplorerError(f"The image {path} is missing. Expected {LAYOUT}. {GET_3DPW}")

    # ------------------------------------------------------------ one frame
    def frame_view(self, sequence: str, frame: int, person: int = 0) -> FrameView:
        frame, person = int(frame), int(person)  # widgets may hand over floats or strings
        s = self.sample(sequence, frame, person)
        image = load_image(s.image_path)
        display, scale = display_size(image, DISPLAY_MAX_SIDE)
        # The ground-truth box, as evaluate_samples crops it (not refined): the same numbers as
        # the evaluate CLI.
        predicted = self.predictor.predict(image, boxes=s.bbox[None], refine=False)
        prediction = predicted.people[0]
        vertices = torch.as_tensor(prediction.vertices[None], device=self.predictor.device)
        result = score_frames([s], vertices, self.predictor.body_model, self.gt_bodies)[0]
        gt = self._gt_body(s)
        gt_faces = _faces(self.gt_bodies.for_gender(s.gender))
        gt_mesh = MeshToRender(gt.vertices[0].cpu().numpy(), gt_faces, GROUND_TRUTH_COLOR)
        pred_mesh = MeshToRender(prediction.vertices + prediction.cam_translation, self.predictor.faces(),
                                 PREDICTION_COLOR)
        # Two passes: each mesh has its own camera (the dataset's, the predictor's).
        overlay = self.renderer.overlay(display, [gt_mesh], s.focal_length[0] * scale, s.principal_point * scale,
                                        opacity=OVERLAY_OPACITY)
        overlay = self.renderer.overlay(overlay, [pred_mesh], predicted.focal_length * scale,
                                        predicted.principal_point * scale, opacity=OVERLAY_OPACITY)
        keypoints = visualize.draw_skeleton(display, prediction.joints2d * scale, ground_truth=s.joints2d * scale)
        gt_joints = gt.joints[0, :24].cpu().numpy()
        # Camera frame (y down, z forward) turned 180 degrees about x: y up, a proper rotation.
        skeleton = visualize.skeleton_3d_figure((prediction.joints3d - prediction.joints3d[0]) @ GL_FLIP.T,
                                                (gt_joints - gt_joints[0]) @ GL_FLIP.T,
                                                title=f"{sequence} frame {frame}, person {person + 1}")
        return FrameView(s, result, prediction, predicted, display, overlay, keypoints, joint_errors_figure(result),
                         skeleton)

    @torch.no_grad()
    def _gt_body(self, s: Sample):
        """The ground-truth body posed and placed in the camera frame (smplx output, batch 1)."""
        device = self.predictor.device
        gt_body = self.gt_bodies.for_gender(s.gender)
        betas = torch.tensor(s.betas[None, :10], dtype=torch.float32, device=device)
        rest_root = gt_body(betas=betas).joints[0, 0].double().cpu().numpy()
        pose, translation = to_camera_frame(s, rest_root)
        tensor = lambda a: torch.tensor(a[None], dtype=torch.float32, device=device)  # noqa: E731
        return gt_body(betas=betas, global_orient=tensor(pose[:3]), body_pose=tensor(pose[3:]),
                       transl=tensor(translation))

    # ------------------------------------------------------------ one sequence
    def sequence_errors(self, sequence: str, person: int = 0, progress: Progress | None = None,
                        batch_size: int = 16) -> SequenceErrors:
        """Errors of every frame with ground truth, cached per (sequence, person, flip test, fit)."""
        person = int(person)
        key = (sequence, person, self.predictor.flip_test, self.predictor.fit)
        if key not in self._errors:
            samples = [self.sample(sequence, f, person) for f in self.frames(sequence, person)]
            if not samples:
                raise ExplorerError(f"{sequence} has no frames with ground truth for person {person + 1}.")
            results: list[FrameResult] = []
            for first in range(0, len(samples), batch_size):
                results += evaluate_samples(self.predictor, samples[first:first + batch_size], self.gt_bodies,
                                            batch_size=batch_size, progress=False)
                if progress:
                    progress(len(results), len(samples))
            column = lambda name: np.array([getattr(r, name) for r in results])  # noqa: E731
            self._errors[key] = SequenceErrors(sequence, person, np.array([r.sample.frame for r in results]),
                                               column("mpjpe"), column("pa_mpjpe"), column("pve"))
        return self._errors[key]

    # ------------------------------------------------------------ occlusion sensitivity
    @torch.inference_mode()
    def occlusion_sensitivity(self, sequence: str, frame: int, person: int = 0, patch: int | None = None,
                              stride: int | None = None, progress: Progress | None = None,
                              batch_size: int = 16) -> OcclusionMap:
        """Slide a grey patch (default: a quarter of the crop's side) over the network's input
        crop (default: OCCLUSION_GRID positions per side, edge to edge) and measure MPJPE
        against ground truth at each position, as the PARE paper's occlusion-sensitivity maps do.
        With the flip test the mirrored crop's patch hides the same part of the body."""
        s = self.sample(sequence, frame, person)
        size = self.predictor.config.input_size
        patch = patch or size // 4
        stride = stride or max(1, (size - patch) // (OCCLUSION_GRID - 1))
        if not (0 < patch <= size and stride > 0):
            raise ValueError(f"patch must be 1-{size} px and stride positive, not {patch} and {stride}")
        center, side = square_around(s.bbox)  # the crop evaluate_samples uses
        crop = crop_image(load_image(s.image_path), make_crop(center, side, size))
        starts = range(0, size - patch + 1, stride)
        corners = [None] + [(y, x) for y in starts for x in starts]  # None: unoccluded
        body = self.predictor.body_model
        gt_joints = self.gt_bodies.for_gender(s.gender).eval_joints(self._gt_body(s).vertices)
        errors = []
        for first in range(0, len(corners), batch_size):
            crops = np.stack([_occlude(crop, c, patch) for c in corners[first:first + batch_size]])
            _, pred = self.predictor.run_crops(crops)
            joints = body.eval_joints(pred.vertices)
            errors += metrics.mpjpe(joints, gt_joints.expand_as(joints)).cpu().tolist()
            if progress:
                progress(len(errors), len(corners))
        error = np.array(errors[1:]).reshape(len(starts), len(starts))
        picture = occlusion_picture(crop, error - errors[0], patch, stride, errors[0])
        return OcclusionMap(crop, patch, stride, errors[0], error, picture)


def ground_truth_body_model(root: str | Path, predictor, smpl_available: bool):
    """The body model that poses a dataset's ground truth in the explorer: the open one for the
    bundled sample set (it was made with it, whatever the network uses), SMPL for a real 3DPW
    download where the user has it, else None (the explorer then uses the network's)."""
    if Path(root).resolve() == Path(paths.SAMPLE_PW3D_DIR).resolve():
        if predictor.body_model.model_name == "open":
            return predictor.body_model
        return load_body_model("open", device=predictor.device)
    return load_body_model("smpl", device=predictor.device) if smpl_available else None


def _faces(body_model) -> np.ndarray:
    return np.asarray(body_model.faces, dtype=np.int64)


def _occlude(crop: np.ndarray, corner: tuple[int, int] | None, patch: int) -> np.ndarray:
    if corner is None:
        return crop
    out = crop.copy()
    out[corner[0]:corner[0] + patch, corner[1]:corner[1] + patch] = GREY
    return out


def joint_errors_figure(result: FrameResult):
    """Bars of MPJPE (pelvis-aligned) and PA-MPJPE per LSP joint, in mm."""
    import plotly.graph_objects as go

    mpjpe = metrics.mpjpe_per_joint(torch.from_numpy(result.pred_eval_joints[None]),
                                    torch.from_numpy(result.gt_eval_joints[None]))[0].numpy()
    names = [n.replace("_", " ") for n in EVAL_JOINT_NAMES]
    fig = go.Figure([go.Bar(x=names, y=mpjpe, name="MPJPE"),
                     go.Bar(x=names, y=result.joint_errors, name="PA-MPJPE")])
    fig.update_layout(barmode="group", yaxis_title="error (mm)", margin=dict(l=10, r=10, t=30, b=10),
                      title=f"per-joint error (MPJPE {result.mpjpe:.0f} mm, PA-MPJPE {result.pa_mpjpe:.0f} mm)")
    return fig


def occlusion_picture(crop: np.ndarray, increase: np.ndarray, patch: int, stride: int, base_error: float,
                      side: int = 320) -> np.ndarray:
    """The error increase over the crop (red: the error grows when that spot is hidden, blue:
    it shrinks), each grid value at its patch's centre, with a colour bar below."""
    from matplotlib import colormaps

    size = crop.shape[0]
    # Grid cell (i, j) -> crop pixel of its patch's centre; outside the outermost centres, the edge value.
    to_crop = np.array([[stride, 0, (patch - 1) / 2], [0, stride, (patch - 1) / 2]], dtype=np.float64)
    dense = cv2.warpAffine(increase.astype(np.float32), to_crop, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    dense = cv2.resize(dense, (side, side), interpolation=cv2.INTER_LINEAR)
    span = max(float(np.abs(increase).max()), 1e-6)
    colors = colormaps["RdBu_r"]((dense / span + 1) / 2)[..., :3]
    image = cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    picture = ((image * 0.45 + colors * 0.55) * 255).round().astype(np.uint8)

    bar = np.full((58, side, 3), 255, np.uint8)
    bar[4:18, 10:side - 10] = (colormaps["RdBu_r"](np.linspace(0, 1, side - 20))[:, :3] * 255).astype(np.uint8)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    for text, x in ((f"-{span:.0f} mm", 10), ("0", side // 2 - 4), (f"+{span:.0f} mm", side - 70)):
        cv2.putText(bar, text, (x, 32), font, 0.4, black, 1, cv2.LINE_AA)
    cv2.putText(bar, f"MPJPE change if hidden (base {base_error:.0f} mm)", (10, 50), font, 0.4, black, 1,
                cv2.LINE_AA)
    return np.concatenate([picture, bar])
