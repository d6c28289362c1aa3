"""Files a prediction is saved as: meshes (.glb with part colours, .obj), SMPL-format
parameters (.json / .npz) and a person's whole Prediction as arrays (predict's .npz).
Our camera frame is OpenCV's (y down): meshes are turned into glTF's Y-up frame by the
caller (pare_demo.geometry.GL_FLIP)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np


def mesh_trimesh(vertices: np.ndarray, faces: np.ndarray, vertex_colors: np.ndarray | None = None):
    import trimesh

    colors = None
    if vertex_colors is not None:
        colors = np.concatenate([(vertex_colors * 255).round(), np.full((len(vertices), 1), 255)], 1).astype(np.uint8)
    return trimesh.Trimesh(vertices, faces, vertex_colors=colors, process=False)


def export_glb(vertices: np.ndarray, faces: np.ndarray, path: str | Path, vertex_colors: np.ndarray | None = None) -> Path:
    """Binary glTF for Gradio's Model3D (Y up, as SMPL), vertex colours kept."""
    path = Path(path)
    mesh_trimesh(vertices, faces, vertex_colors).export(path, file_type="glb")
    return path


def export_obj(vertices: np.ndarray, faces: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    mesh_trimesh(vertices, faces).export(path, file_type="obj")
    return path


def smpl_parameters(prediction, result, body_model: str) -> dict:
    """Plain-data SMPL-format parameters of a Prediction (axis-angle pose, betas, cameras;
    the full-image camera from its ImageResult, `result`), with the label of the body model
    they are for (BodyModel.label): the open model's betas are not SMPL's, so a reader
    needs to know which model to pose them with."""
    return {
        "body_model": body_model,
        "global_orient": prediction.pose_axis_angle[:3].tolist(),
        "body_pose": prediction.pose_axis_angle[3:].tolist(),
        "betas": prediction.betas.tolist(),
        "cam_crop_weak_perspective": prediction.cam_crop.tolist(),
        "cam_translation": prediction.cam_translation.tolist(),
        "focal_length": float(result.focal_length),
        "principal_point": result.principal_point.tolist(),
        "bbox": prediction.bbox.tolist(),
    }


def export_parameters(prediction, result, body_model: str, path: str | Path) -> Path:
    """smpl_parameters as .json or .npz, by the file's suffix."""
    path = Path(path)
    params = smpl_parameters(prediction, result, body_model)
    if path.suffix == ".npz":
        np.savez(path, **{k: np.asarray(v) for k, v in params.items()})
    else:
        path.write_text(json.dumps(params, indent=2))
    return path


def prediction_arrays(prediction, result) -> dict[str, np.ndarray]:
    """One person's Prediction fields as arrays for np.savez (the crop as its centre, size
    and affine), with its ImageResult's camera, image size and timings (ms_<stage>)."""
    out = {}
    for f in dataclasses.fields(prediction):
        value = getattr(prediction, f.name)
        if f.name == "crop":
            out.update(crop_center=value.center, crop_size=np.float64(value.size), crop_affine=value.affine)
        else:
            out[f.name] = np.asarray(value)
        if f.name == "cam_translation":
            out.update(focal_length=np.asarray(result.focal_length), principal_point=np.asarray(result.principal_point))
    out["image_size"] = np.asarray(result.image_size)
    out.update({f"ms_{k}": np.float64(v) for k, v in result.timings.items()})
    return out
