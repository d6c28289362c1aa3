"""Mesh rendering with pyrender, headless: EGL (Mesa llvmpipe on a CPU, the GPU when there
is one), OSMesa as the fallback, chosen once per process.

Camera convention everywhere in pare-demo: pinhole, looking down +Z, image x right and
y down (OpenCV). pyrender looks down -Z with y up, so meshes are turned 180 degrees
about X on the way in.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

from pare_demo.colors import person_color

# pyrender 0.1.45 still uses np.infty, which numpy 2 removed.
if not hasattr(np, "infty"):
    np.infty = np.inf

_PROBE = ("import numpy as np; np.infty = np.inf; import pyrender; "
          "r = pyrender.OffscreenRenderer(8, 8); r.delete()")


class RenderError(RuntimeError):
    """No headless OpenGL is available; the message says what to install."""


def choose_platform() -> str:
    """PYOPENGL_PLATFORM for this process: the user's choice, else the first of EGL, OSMesa
    that can open an offscreen context (probed in a subprocess, since PyOpenGL binds its
    platform at import)."""
    chosen = os.environ.get("PYOPENGL_PLATFORM")
    if chosen:
        return chosen
    for platform in ("egl", "osmesa"):
        env = dict(os.environ, PYOPENGL_PLATFORM=platform)
        probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=120)
        if probe.returncode == 0:
            os.environ["PYOPENGL_PLATFORM"] = platform
            return platform
    raise RenderError("No headless OpenGL found: neither EGL nor OSMesa could open a context. "
                      "On Debian/Ubuntu install libegl1 libegl-mesa0 libgl1-mesa-dri (EGL) or "
                      "libosmesa6 (OSMesa); `make setup` does this.")


_pyrender = None


def _import_pyrender():
    global _pyrender
    if _pyrender is None:
        choose_platform()
        import pyrender

        _pyrender = pyrender
    return _pyrender


@dataclass
class MeshToRender:
    vertices: np.ndarray            # (V, 3) in camera coordinates (+Z forward, y down)
    faces: np.ndarray               # (F, 3)
    color: np.ndarray | None = None  # (3,) 0-1, or None with vertex_colors
    vertex_colors: np.ndarray | None = None  # (V, 3) 0-1


GL_FLIP = np.diag([1.0, -1.0, -1.0])


def people_meshes(predictions, faces: np.ndarray, part_colors: np.ndarray | None = None) -> list[MeshToRender]:
    """Each Prediction's mesh placed by its full-image camera, a colour per person (or the
    given (V, 3) part colours for everyone)."""
    return [MeshToRender(p.vertices + p.cam_translation, faces,
                         color=None if part_colors is not None else person_color(i),
                         vertex_colors=part_colors)
            for i, p in enumerate(predictions)]


class Renderer:
    """One offscreen GL context, reused across frames and resized when the image size changes.

    A GL context belongs to the thread that made it current, and servers (Gradio) call from
    worker threads: so the context lives on one thread of its own and every draw runs there."""

    def __init__(self, width: int = 640, height: int = 480):
        from concurrent.futures import ThreadPoolExecutor

        self.pyrender = _import_pyrender()
        self.platform = os.environ.get("PYOPENGL_PLATFORM", "")
        self._gl_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gl")
        self._renderer = self._gl_thread.submit(self.pyrender.OffscreenRenderer, width, height).result()
        self.size = (width, height)
        _read_colour_only(self._renderer)

    def _resize(self, width: int, height: int) -> None:
        if (width, height) != self.size:
            self._renderer.viewport_width, self._renderer.viewport_height = width, height
            self.size = (width, height)

    def render(self, meshes: list[MeshToRender], width: int, height: int, focal_length: float,
               principal_point=None, wireframe: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(RGB float image 0-1 of the meshes, (H, W) coverage 0-1). Depth order between
        meshes is resolved by the z-buffer, so people occlude each other correctly."""
        return self._gl_thread.submit(self._render, meshes, width, height, focal_length,
                                      principal_point, wireframe).result()

    def _render(self, meshes, width, height, focal_length, principal_point, wireframe):
        pr = self.pyrender
        self._resize(width, height)
        cx, cy = principal_point if principal_point is not None else (width / 2, height / 2)
        scene = pr.Scene(bg_color=[0, 0, 0, 0], ambient_light=[0.25, 0.25, 0.25])
        depths = []
        # A mesh wholly behind the camera (a bad camera estimate) cannot be seen: skip it.
        meshes = [m for m in meshes if m.vertices[:, 2].max() > 0]
        if not meshes:
            return np.zeros((height, width, 3), np.float32), np.zeros((height, width), np.float32)
        for mesh in meshes:
            verts = mesh.vertices @ GL_FLIP.T
            depths.append(-verts[:, 2])
            if mesh.vertex_colors is not None:
                colors = np.concatenate([mesh.vertex_colors, np.ones((len(verts), 1))], axis=1)
            else:
                base = mesh.color if mesh.color is not None else person_color(0)
                colors = np.tile(np.append(np.asarray(base, dtype=np.float64), 1.0), (len(verts), 1))
            if wireframe:
                prim = _wire_primitive(pr, verts, mesh.faces, colors)
            else:
                prim = pr.Primitive(positions=verts, indices=mesh.faces, color_0=colors,
                                    normals=_vertex_normals(verts, mesh.faces),
                                    material=pr.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.7))
            scene.add(pr.Mesh([prim]))
        depth = np.concatenate(depths)
        znear = max(1e-3, float(depth[depth > 0].min()) * 0.5)
        zfar = float(depth.max()) * 2 + 1.0
        scene.add(pr.IntrinsicsCamera(fx=focal_length, fy=focal_length, cx=cx, cy=cy, znear=znear, zfar=zfar))
        for direction in ([0, -0.5, -1.0], [0.6, 0.3, -1.0], [-0.6, 0.3, -1.0]):
            scene.add(pr.DirectionalLight(color=np.ones(3), intensity=1.1), pose=_light_pose(direction))
        color, _ = self._renderer.render(scene, flags=pr.RenderFlags.RGBA)
        rgba = color.astype(np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3]

    def overlay(self, image: np.ndarray, meshes: list[MeshToRender], focal_length: float,
                principal_point=None, opacity: float = 0.85, wireframe: bool = False) -> np.ndarray:
        """The meshes drawn over an RGB uint8 image; pixels without mesh are unchanged."""
        h, w = image.shape[:2]
        rgb, alpha = self.render(meshes, w, h, focal_length, principal_point, wireframe)
        out = image.copy()
        rows, cols = np.nonzero(alpha.any(1))[0], np.nonzero(alpha.any(0))[0]
        if len(rows) == 0:
            return out
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # blend only where drawn
        a = (alpha[box] * opacity)[..., None]
        blended = image[box].astype(np.float32) / 255.0 * (1 - a) + rgb[box] * a
        out[box] = np.where(alpha[box][..., None] > 0, (blended * 255).round(), image[box]).astype(np.uint8)
        return out

    def side_view(self, meshes: list[MeshToRender], size: tuple[int, int] = (480, 480),
                  yaw_degrees: float = 90.0, pitch_degrees: float = 0.0,
                  background=(1.0, 1.0, 1.0)) -> np.ndarray:
        """The meshes turned about the vertical axis through their centre (pitch 90 gives a
        top view), framed on a plain background. RGB uint8."""
        if not meshes:
            return np.full((size[1], size[0], 3), np.uint8(255 * background[0]), np.uint8)
        center = np.concatenate([m.vertices for m in meshes]).mean(0)
        rot = _rotation_y(np.deg2rad(yaw_degrees)) @ np.eye(3)
        rot = _rotation_x(np.deg2rad(pitch_degrees)) @ rot
        turned = [MeshToRender((m.vertices - center) @ rot.T, m.faces, m.color, m.vertex_colors) for m in meshes]
        allv = np.concatenate([m.vertices for m in turned])
        w, h = size
        extent = max(np.ptp(allv[:, 0]) / w, np.ptp(allv[:, 1]) / h) * 1.15 + 1e-6
        focal = 1000.0
        distance = focal * extent + np.ptp(allv[:, 2]) / 2 + 0.1  # fills the frame at this depth
        for m in turned:
            m.vertices = m.vertices + [0, 0, distance]
        rgb, alpha = self.render(turned, w, h, focal)
        a = alpha[..., None]
        return ((rgb * a + np.asarray(background) * (1 - a)) * 255).round().astype(np.uint8)

    def close(self) -> None:
        self._gl_thread.submit(self._renderer.delete).result()
        self._gl_thread.shutdown()


def _read_colour_only(offscreen) -> None:
    """pyrender reads back and linearises the depth buffer on every frame, in numpy; we
    only use colour and alpha, so replace that step for this renderer (-7 ms at 640x480)."""
    from OpenGL import GL

    inner = offscreen._renderer

    def read(scene, flags):
        w, h = inner._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, inner._main_fb_ms)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, inner._main_fb)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, inner._main_fb)
        buf = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
        return np.flip(np.frombuffer(buf, np.uint8).reshape(h, w, 4), axis=0), None

    inner._read_main_framebuffer = read


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (bincount: several times faster than np.add.at)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    corners = faces.reshape(-1)
    normals = np.stack([np.bincount(corners, np.repeat(face_n[:, c], 3), minlength=len(vertices))
                        for c in range(3)], axis=1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _wire_primitive(pr, vertices, faces, colors):
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    return pr.Primitive(positions=vertices, indices=edges, color_0=colors, mode=1)  # GL_LINES


def _rotation_x(a: float) -> np.ndarray:
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _rotation_y(a: float) -> np.ndarray:
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _light_pose(direction) -> np.ndarray:
    """A pose whose -Z axis points along `direction` (GL camera frame)."""
    z = -np.asarray(direction, dtype=np.float64)
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 1.0, 0.0], z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0, 0])
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, z], axis=1)
    return pose
