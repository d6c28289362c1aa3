"""Everything the app shows for one image, computed in one place (the Image tab only wires it up).

    analysis = analyse_image(predictor, renderer, image)
    analysis.overlay, analysis.side, analysis.keypoints, analysis.attention_grid(person), ...
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pare_demo import exports, visualize
from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.geometry import GL_FLIP
from pare_demo.images import check_size, to_rgb_uint8
from pare_demo.render import Renderer, people_meshes
from pare_demo.timing import StageTimer

ATTENTION_MAX_SIDE = 480  # attention maps are warped onto the image at most this large
DISPLAY_MAX_SIDE = 1600   # pictures are drawn at most this large: a browser shows no more


class AttentionViews:
    """One person's part-attention pictures over an image: the heatmap of one part, the grid
    of all 24 and the most likely part per pixel. Drawn on a small copy of the image (longer
    side ATTENTION_MAX_SIDE): warping 25 maps onto a 12-megapixel photo takes gigabytes."""

    def __init__(self, image: np.ndarray, prediction, image_size: tuple[int, int]):
        """image: the photo, at any scale; image_size: its full (width, height), the
        prediction's coordinates (ImageResult.image_size)."""
        import cv2

        self.prediction = prediction
        self.image_size = image_size
        self.maps = prediction.part_attention_on_image(image_size, ATTENTION_MAX_SIDE)  # (24, h, w), peak 1
        h, w = self.maps.shape[1:]
        self.small_image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)

    def heatmap(self, part: str) -> np.ndarray:
        return visualize.heatmap_overlay(self.small_image, self.maps[SMPL_JOINT_NAMES.index(part)])

    def grid(self) -> np.ndarray:
        return visualize.attention_grid(self.small_image, self.maps, tile=160)

    def part_map(self) -> np.ndarray:
        p = self.prediction
        scale = self.small_image.shape[1] / self.image_size[0]
        return visualize.part_map_overlay(self.small_image, p.part_logits, p.crop.scaled(scale))


@dataclass
class ImageAnalysis:
    image: np.ndarray            # the input, downscaled to DISPLAY_MAX_SIDE at most
    result: object               # the predictor's ImageResult
    faces: np.ndarray
    overlay: np.ndarray
    side: np.ndarray
    keypoints: np.ndarray
    timings: dict[str, float]    # the predictor's and the rendering's, ms per stage
    device: str
    files: dict[str, Path] = field(default_factory=dict)
    _attention: dict = field(default_factory=dict)

    @property
    def people(self) -> list:
        """list[Prediction]: everyone found (the whole image's stand-in when nobody was)."""
        return self.result.people

    def attention(self, person: int) -> AttentionViews:
        if person not in self._attention:
            self._attention[person] = AttentionViews(self.image, self.people[person], self.result.image_size)
        return self._attention[person]

    def small_image(self) -> np.ndarray:
        return self.attention(0).small_image

    def part_heatmap(self, person: int, part: str) -> np.ndarray:
        return self.attention(person).heatmap(part)

    def attention_grid(self, person: int) -> np.ndarray:
        return self.attention(person).grid()

    def part_map(self, person: int) -> np.ndarray:
        return self.attention(person).part_map()

    def skeleton_3d(self, person: int):
        # Camera frame (y down) turned 180 degrees about x, so the figure's y is up.
        return visualize.skeleton_3d_figure(self.people[person].joints3d @ GL_FLIP.T, title=f"person {person + 1}")

    def timing_text(self) -> str:
        stages = ", ".join(f"{k} {v:.0f} ms" for k, v in self.timings.items())
        return f"{len(self.people)} person(s) on {self.device}: {stages}"


def analyse_image(predictor, renderer: Renderer, image, boxes=None, out_dir: Path | None = None) -> ImageAnalysis:
    """Run the predictor on an image and render every picture and file the app offers."""
    image = check_size(to_rgb_uint8(image))
    result = predictor.predict(image, boxes)
    people = result.people
    faces = predictor.faces()
    timer = StageTimer()
    display, scale = display_size(image)
    meshes = people_meshes(people, faces)
    # A smaller picture of the same camera: focal length and principal point scale with it.
    overlay = renderer.overlay(display, meshes, result.focal_length * scale, result.principal_point * scale)
    side = renderer.side_view(meshes)
    keypoints = display
    for p in people:
        keypoints = visualize.draw_skeleton(keypoints, p.joints2d * scale)
    timer.lap("render")
    timings = {**result.timings, **timer.ms}
    analysis = ImageAnalysis(display, result, faces, overlay, side, keypoints, timings, predictor.device.type.upper())
    analysis.files = export_files(analysis, meshes, predictor.body_model,
                                  out_dir or Path(tempfile.mkdtemp(prefix="pare_demo_")))
    return analysis


def display_size(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, float]:
    """(the image shrunk so its longer side is at most max_side, the scale applied): a
    smaller picture of the same camera, whose focal length and principal point scale too."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / w


def export_files(analysis: ImageAnalysis, meshes, body_model, out_dir: Path) -> dict[str, Path]:
    """GLB (everyone, part-coloured, Y up), OBJ and SMPL-format parameters (JSON, naming
    body_model, whose mesh and betas they are) for download."""
    part_labels = body_model.part_labels.cpu().numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    vertices = np.concatenate([m.vertices for m in meshes]) @ GL_FLIP.T
    faces = np.concatenate([analysis.faces + i * len(m.vertices) for i, m in enumerate(meshes)])
    colors = np.tile(visualize.part_vertex_colors(part_labels), (len(meshes), 1))
    files = {"glb": exports.export_glb(vertices, faces, out_dir / "mesh.glb", colors),
             "obj": exports.export_obj(vertices, faces, out_dir / "mesh.obj")}
    params = [exports.smpl_parameters(p, analysis.result, body_model.label) for p in analysis.people]
    files["json"] = out_dir / "smpl_parameters.json"
    files["json"].write_text(json.dumps(params, indent=2))
    return files
