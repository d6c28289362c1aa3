"""Front and side pictures of a body model's shapes, for the README and a quick look.

    python -m pare_demo.body.preview --body-model open --out docs/body_model.png

A small flat-shaded orthographic rasteriser on matplotlib (painter's algorithm), so the
picture needs no OpenGL. The app's renderer lives in pare_demo.render.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pare_demo.body.model import load_body_model

LIGHT = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
SKIN = np.array([0.78, 0.62, 0.52])


def draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, yaw_degrees: float = 0.0) -> None:
    """Draw the mesh seen along -Z after turning it by yaw about the vertical (Y) axis."""
    from matplotlib.collections import PolyCollection

    a = np.deg2rad(yaw_degrees)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    v = vertices @ rot.T
    tri = v[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    visible = normals[:, 2] > 0
    order = np.argsort(tri[visible, :, 2].mean(1))  # far to near
    shade = 0.25 + 0.75 * np.clip(normals[visible] @ LIGHT, 0, 1)
    colors = np.clip(SKIN[None] * shade[:, None], 0, 1)[order]
    ax.add_collection(PolyCollection(tri[visible][order][:, :, :2], facecolors=colors, edgecolors=colors, linewidths=0.2))
    ax.set_xlim(v[:, 0].min() - 0.05, v[:, 0].max() + 0.05)
    ax.set_ylim(v[:, 1].min() - 0.05, v[:, 1].max() + 0.05)
    ax.set_aspect("equal")
    ax.axis("off")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@torch.no_grad()
def body_vertices(model, betas) -> np.ndarray:
    """Rest-pose vertices (V, 3) for the first len(betas) shape components."""
    full = torch.zeros(1, model.num_betas)
    full[0, :len(betas)] = torch.as_tensor(betas, dtype=torch.float32)
    return model(betas=full).vertices[0].numpy()


def body_figure(model, betas):
    """Matplotlib figure: the body with these betas, front and side, with its height.
    A bare Figure (not pyplot's), so that figures made per request are freed."""
    from matplotlib.figure import Figure

    verts = body_vertices(model, betas)
    faces = np.asarray(model.faces, dtype=np.int64)
    fig = Figure(figsize=(6, 4.5))
    axes = fig.subplots(1, 2)
    for ax, yaw in zip(axes, (0.0, 90.0)):
        draw_mesh(ax, verts, faces, yaw)
    fig.suptitle(f"height {verts[:, 1].max() - verts[:, 1].min():.2f} m", fontsize=10)
    fig.tight_layout()
    return fig


def shape_preview(body_model: str, out: Path, beta_values=(-2.0, 0.0, 2.0), components=(0, 1)) -> Path:
    """One row per shape component: the body at each beta value, front and side."""
    plt = _pyplot()
    model = load_body_model(body_model)
    faces = np.asarray(model.faces, dtype=np.int64)
    fig, axes = plt.subplots(len(components), 2 * len(beta_values),
                             figsize=(1.6 * 2 * len(beta_values), 3.6 * len(components)),
                             gridspec_kw={"width_ratios": [2, 1] * len(beta_values)})
    axes = np.atleast_2d(axes)
    for row, comp in enumerate(components):
        for col, value in enumerate(beta_values):
            betas = [0.0] * (comp + 1)
            betas[comp] = value
            verts = body_vertices(model, betas)
            height = verts[:, 1].max() - verts[:, 1].min()
            for k, yaw in enumerate((0.0, 90.0)):
                draw_mesh(axes[row, 2 * col + k], verts, faces, yaw)
            axes[row, 2 * col].set_title(f"beta{comp} = {value:+.0f}  ({height:.2f} m)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Front/side pictures of a body model's shapes")
    parser.add_argument("--body-model", default="open")
    parser.add_argument("--out", type=Path, default=Path("docs/body_model.png"))
    args = parser.parse_args(argv)
    print(shape_preview(args.body_model, args.out))


if __name__ == "__main__":
    main()
