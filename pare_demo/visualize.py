"""Pictures of what the network thinks: part-attention heatmaps, part maps, 2D skeletons,
an interactive 3D skeleton, and mesh/parameter exports. Meshes are drawn by render.py."""
from __future__ import annotations


import cv2
import numpy as np

from pare_demo.body.joint_names import SMPL_JOINT_NAMES, SMPL_PARENTS
from pare_demo.colors import (CENTER_COLOR, GROUND_TRUTH_COLOR, LEFT_COLOR, PART_COLORS,
                              PREDICTION_COLOR, RIGHT_COLOR, to_uint8)
from pare_demo.crop import crop_map_to_image


def _colormap(values: np.ndarray) -> np.ndarray:
    """(H, W) in 0-1 -> (H, W, 3) RGB float, matplotlib's 'inferno'."""
    from matplotlib import colormaps

    return colormaps["inferno"](np.clip(values, 0, 1))[..., :3]


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """An (H, W) map (any scale; shown relative to its peak) blended over an RGB uint8 image of
    the same size; where the map is zero the image stays as it is."""
    peak = heatmap.max()
    norm = heatmap / peak if peak > 0 else heatmap
    weight = (alpha * np.sqrt(np.clip(norm, 0, 1)))[..., None]  # sqrt: faint tails stay visible
    out = image.astype(np.float32) / 255 * (1 - weight) + _colormap(norm) * weight
    return (out * 255).round().astype(np.uint8)


def _side(name: str) -> np.ndarray:
    return LEFT_COLOR if name.startswith("left") else RIGHT_COLOR if name.startswith("right") else CENTER_COLOR


def _label(image: np.ndarray, text: str, scale: float) -> None:
    org = (int(4 * scale), int(18 * scale))
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), max(1, int(3 * scale)), cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), max(1, int(scale)), cv2.LINE_AA)


def attention_grid(image: np.ndarray, attention_on_image: np.ndarray, tile: int = 200,
                   columns: int = 6) -> np.ndarray:
    """All 24 part maps over the image, one labelled tile per part (4 x 6)."""
    h, w = image.shape[:2]
    s = tile / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    rows = -(-len(SMPL_JOINT_NAMES) // columns)
    grid = np.full((rows * size[1], columns * size[0], 3), 255, np.uint8)
    for j, name in enumerate(SMPL_JOINT_NAMES):
        heat = cv2.resize(attention_on_image[j], size, interpolation=cv2.INTER_LINEAR)
        cell = heatmap_overlay(small, heat)
        _label(cell, name.replace("_", " "), max(0.6, size[0] / 200))
        r, c = divmod(j, columns)
        grid[r * size[1]:(r + 1) * size[1], c * size[0]:(c + 1) * size[0]] = cell
    return grid


def part_map_overlay(image: np.ndarray, part_logits: np.ndarray, crop, alpha: float = 0.55) -> np.ndarray:
    """Combined part map: each pixel takes the colour of its most likely part (argmax of the
    25 logits, background left transparent), warped from the crop onto the image."""
    h, w = image.shape[:2]
    probs = np.exp(part_logits - part_logits.max(0, keepdims=True))
    probs /= probs.sum(0, keepdims=True)
    on_image = crop_map_to_image(probs, crop, (h, w))
    inside = on_image.sum(0) > 0.5
    label = on_image.argmax(0)
    mask = inside & (label > 0)
    colors = np.zeros((h, w, 3), np.float32)
    colors[mask] = PART_COLORS[label[mask] - 1]
    out = image.astype(np.float32) / 255
    out[mask] = out[mask] * (1 - alpha) + colors[mask] * alpha
    return (out * 255).round().astype(np.uint8)


def draw_skeleton(image: np.ndarray, joints2d: np.ndarray, ground_truth: np.ndarray | None = None) -> np.ndarray:
    """The 24 SMPL joints and bones over an RGB image; the body's left in blue, right in red.
    Ground truth (optional) in green, thinner and dashed-looking (hollow joints)."""
    out = image.copy()
    scale = max(out.shape[:2]) / 500
    radius, thickness = max(2, round(4 * scale)), max(1, round(2 * scale))
    if ground_truth is not None:
        for j, p in enumerate(SMPL_PARENTS):
            if p >= 0:
                cv2.line(out, _pt(ground_truth[j]), _pt(ground_truth[p]), to_uint8(GROUND_TRUTH_COLOR),
                         max(1, thickness // 2), cv2.LINE_AA)
        for q in ground_truth:
            cv2.circle(out, _pt(q), radius, to_uint8(GROUND_TRUTH_COLOR), max(1, thickness // 2), cv2.LINE_AA)
    for j, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            cv2.line(out, _pt(joints2d[j]), _pt(joints2d[p]), to_uint8(_side(SMPL_JOINT_NAMES[j])), thickness, cv2.LINE_AA)
    for j, q in enumerate(joints2d):
        cv2.circle(out, _pt(q), radius, to_uint8(_side(SMPL_JOINT_NAMES[j])), -1, cv2.LINE_AA)
    return out


def _pt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def skeleton_3d_figure(joints3d: np.ndarray, ground_truth: np.ndarray | None = None, title: str = ""):
    """Interactive plotly figure of the 24 joints (SMPL axes: Y up), bones, joint names on
    hover; with ground truth, its skeleton in green and red lines for the per-joint errors."""
    import plotly.graph_objects as go

    def bones(points, color, name):
        xs, ys, zs = [], [], []
        for j, p in enumerate(SMPL_PARENTS):
            if p >= 0:
                for k in (j, p):
                    xs.append(points[k, 0]), ys.append(points[k, 2]), zs.append(points[k, 1])
                xs.append(None), ys.append(None), zs.append(None)
        return go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", name=f"{name} bones",
                            line=dict(color=_css(color), width=5), hoverinfo="skip")

    def markers(points, color, name):
        return go.Scatter3d(x=points[:, 0], y=points[:, 2], z=points[:, 1], mode="markers", name=name,
                            text=list(SMPL_JOINT_NAMES), hovertemplate="%{text}<extra>" + name + "</extra>",
                            marker=dict(size=4, color=_css(color)))

    traces = [bones(joints3d, PREDICTION_COLOR, "prediction"), markers(joints3d, PREDICTION_COLOR, "prediction")]
    everything = [joints3d]
    if ground_truth is not None:
        traces += [bones(ground_truth, GROUND_TRUTH_COLOR, "ground truth"),
                   markers(ground_truth, GROUND_TRUTH_COLOR, "ground truth")]
        xs, ys, zs = [], [], []
        for a, b in zip(joints3d, ground_truth):
            xs += [a[0], b[0], None]
            ys += [a[2], b[2], None]
            zs += [a[1], b[1], None]
        traces.append(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", name="error",
                                   line=dict(color="red", width=2), hoverinfo="skip"))
        everything.append(ground_truth)
    pts = np.concatenate(everything)
    center, half = pts.mean(0), np.ptp(pts, axis=0).max() / 2 + 0.05
    rng = lambda i: [center[i] - half, center[i] + half]  # noqa: E731  equal axes
    fig = go.Figure(traces)
    fig.update_layout(title=title, margin=dict(l=0, r=0, t=30 if title else 0, b=0),
                      scene=dict(xaxis=dict(title="x", range=rng(0)), yaxis=dict(title="z", range=rng(2)),
                                 zaxis=dict(title="y (up)", range=rng(1)), aspectmode="cube",
                                 camera=dict(eye=dict(x=0.0, y=-1.8, z=0.3), up=dict(x=0, y=0, z=1))))
    return fig


def _css(rgb) -> str:
    r, g, b = to_uint8(rgb)
    return f"rgb({r},{g},{b})"


def part_vertex_colors(part_labels: np.ndarray) -> np.ndarray:
    """(V, 3) colours of each vertex's body part, matching the attention maps' part colours."""
    return PART_COLORS[np.asarray(part_labels)]
