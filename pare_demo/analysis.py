"""Everything the app shows for one image, computed in one place (app.py only wires it up).

    analysis = analyse_image(predictor, renderer, image)
    analysis.overlay, analysis.side, analysis.keypoints, analysis.attention_grid(person), ...
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pare_demo import visualize
from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.images import check_size, to_rgb_uint8
from pare_demo.render import GL_FLIP, Renderer, people_meshes

ATTENTION_MAX_SIDE = 480  # attention maps are warped onto the image at most this large
DISPLAY_MAX_SIDE = 1600   # pictures are drawn at most this large: a browser shows no more


@dataclass
class ImageAnalysis:
    image: np.ndarray            # the input, downscaled to DISPLAY_MAX_SIDE at most
    people: list                 # list[Prediction]
    faces: np.ndarray
    overlay: np.ndarray
    side: np.ndarray
    keypoints: np.ndarray
    timings: dict[str, float]
    device: str
    files: dict[str, Path] = field(default_factory=dict)
    _attention: dict[int, np.ndarray] = field(default_factory=dict)

    def attention_on_image(self, person: int) -> np.ndarray:
        """(24, h, w) maps of one person over the (downscaled) image, cached."""
        if person not in self._attention:
            self._attention[person] = self.people[person].part_attention_on_image(ATTENTION_MAX_SIDE)
        return self._attention[person]

    def small_image(self) -> np.ndarray:
        """The image at the size the attention maps are shown (longer side ATTENTION_MAX_SIDE at most)."""
        import cv2

        h, w = self.attention_on_image(0).shape[1:]
        return cv2.resize(self.image, (w, h), interpolation=cv2.INTER_AREA)

    def part_heatmap(self, person: int, part: str) -> np.ndarray:
        maps = self.attention_on_image(person)
        return visualize.heatmap_overlay(self.small_image(), maps[SMPL_JOINT_NAMES.index(part)])

    def attention_grid(self, person: int) -> np.ndarray:
        return visualize.attention_grid(self.small_image(), self.attention_on_image(person), tile=160)

    def part_map(self, person: int) -> np.ndarray:
        """Most likely part per pixel, on the small image: warping 25 maps onto a
        full-resolution photo would take gigabytes for a 12-megapixel one."""
        small = self.small_image()
        p = self.people[person]
        return visualize.part_map_overlay(small, p.part_logits, p.crop.scaled(small.shape[1] / p.image_size[0]))

    def skeleton_3d(self, person: int):
        # Camera frame (y down) turned 180 degrees about x, so the figure's y is up.
        return visualize.skeleton_3d_figure(self.people[person].joints3d @ GL_FLIP.T, title=f"person {person + 1}")

    def timing_text(self) -> str:
        stages = ", ".join(f"{k} {v:.0f} ms" for k, v in self.timings.items())
        return f"{len(self.people)} person(s) on {self.device}: {stages}"


def analyse_image(predictor, renderer: Renderer, image, boxes=None, out_dir: Path | None = None) -> ImageAnalysis:
    """Run the predictor on an image and render every picture and file the app offers."""
    image = check_size(to_rgb_uint8(image))
    people = predictor.predict(image, boxes)
    faces = predictor.faces()
    start = time.perf_counter()
    display, scale = _display_size(image)
    meshes = people_meshes(people, faces)
    # A smaller picture of the same camera: focal length and principal point scale with it.
    overlay = renderer.overlay(display, meshes, people[0].focal_length * scale, people[0].principal_point * scale)
    side = renderer.side_view(meshes)
    keypoints = display
    for p in people:
        keypoints = visualize.draw_skeleton(keypoints, p.joints2d * scale)
    timings = dict(people[0].timings, render=(time.perf_counter() - start) * 1000)
    analysis = ImageAnalysis(display, people, faces, overlay, side, keypoints, timings, predictor.device.type.upper())
    part_labels = predictor.body_model.part_labels.cpu().numpy()
    analysis.files = export_files(analysis, meshes, part_labels,
                                  out_dir or Path(tempfile.mkdtemp(prefix="pare_demo_")))
    return analysis


def _display_size(image: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, DISPLAY_MAX_SIDE / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / w


def export_files(analysis: ImageAnalysis, meshes, part_labels: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """GLB (everyone, part-coloured, Y up), OBJ and SMPL parameters (JSON) for download."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vertices = np.concatenate([m.vertices for m in meshes]) @ GL_FLIP.T
    faces = np.concatenate([analysis.faces + i * len(m.vertices) for i, m in enumerate(meshes)])
    colors = np.tile(visualize.part_vertex_colors(part_labels), (len(meshes), 1))
    files = {"glb": visualize.export_glb(vertices, faces, out_dir / "mesh.glb", colors),
             "obj": visualize.export_obj(vertices, faces, out_dir / "mesh.obj")}
    params = [visualize.smpl_parameters(p) for p in analysis.people]
    files["json"] = out_dir / "smpl_parameters.json"
    files["json"].write_text(json.dumps(params, indent=2))
    return files
