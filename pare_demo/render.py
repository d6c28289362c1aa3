"""Mesh rendering with OpenGL, headless: EGL (Mesa llvmpipe on a CPU, the GPU when there
is one), OSMesa as the fallback, chosen once per process. pyrender only opens the context;
the drawing is a few plain GL calls (see Renderer for why).

Camera convention everywhere in pare-demo: pinhole, looking down +Z, image x right and
y down (OpenCV). The projection below maps that frame straight to clip space, so the meshes
need no turning (pare_demo.geometry.GL_FLIP turns them into OpenGL's frame, for other uses).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np

from pare_demo.colors import person_color
from pare_demo.geometry import GL_FLIP

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



# Three white directional lights from behind the camera (above, lower left, lower right),
# as unit vectors from the surface towards each light in the camera frame; a grey ambient.
_LIGHTS = np.array([[0, -0.5, -1.0], [0.6, 0.3, -1.0], [-0.6, 0.3, -1.0]]) @ GL_FLIP
_LIGHTS /= -np.linalg.norm(_LIGHTS, axis=1, keepdims=True)
_LIGHT_INTENSITY, _AMBIENT, _ROUGHNESS = 1.1, 0.25, 0.7
_SUPERSAMPLE = 2  # drawn at this many times the size, then averaged down: antialiasing


def people_meshes(predictions, faces: np.ndarray, part_colors: np.ndarray | None = None) -> list[MeshToRender]:
    """Each Prediction's mesh placed by its full-image camera, a colour per person (or the
    given (V, 3) part colours for everyone)."""
    return [MeshToRender(p.vertices + p.cam_translation, faces,
                         color=None if part_colors is not None else person_color(i),
                         vertex_colors=part_colors)
            for i, p in enumerate(predictions)]


class Renderer:
    """Draws meshes with one offscreen GL context, reused across frames and sizes.

    Fast on a CPU (llvmpipe) because: the lighting is computed per vertex in numpy and the
    GPU only interpolates colours (per-pixel PBR shading was most of a frame); only the
    window of the image that the meshes cover is drawn and read back; and antialiasing is
    2x supersampling averaged by a blit, cheaper than 4x MSAA on llvmpipe.

    A GL context belongs to the thread that made it current, and servers (Gradio) call from
    worker threads: so the context lives on one thread of its own and every draw runs there."""

    def __init__(self, width: int = 640, height: int = 480):
        from concurrent.futures import ThreadPoolExecutor

        self.pyrender = _import_pyrender()
        self.platform = os.environ.get("PYOPENGL_PLATFORM", "")
        self._gl_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gl")
        self._canvas = self._gl_thread.submit(_Canvas, self.pyrender, width, height).result()

    def render(self, meshes: list[MeshToRender], width: int, height: int, focal_length: float,
               principal_point=None, wireframe: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(RGB float image 0-1 of the meshes, (H, W) coverage 0-1). Depth order between
        meshes is resolved by the z-buffer, so people occlude each other correctly."""
        rgb = np.zeros((height, width, 3), np.float32)
        alpha = np.zeros((height, width), np.float32)
        drawn = self._draw(meshes, width, height, focal_length, principal_point, wireframe)
        if drawn is not None:
            rgba, box = drawn
            alpha[box] = rgba[..., 3] / np.float32(255)
            # Edge pixels hold colour x coverage (the background is 0): divide it back out.
            rgb[box] = np.minimum(rgba[..., :3] / np.maximum(rgba[..., 3:], np.float32(1)), 1)
        return rgb, alpha

    def overlay(self, image: np.ndarray, meshes: list[MeshToRender], focal_length: float,
                principal_point=None, opacity: float = 0.85, wireframe: bool = False) -> np.ndarray:
        """The meshes drawn over an RGB uint8 image; pixels without mesh are unchanged."""
        h, w = image.shape[:2]
        out = image.copy()
        drawn = self._draw(meshes, w, h, focal_length, principal_point, wireframe)
        if drawn is None:
            return out
        rgba, box = drawn
        a = rgba[..., 3:] * np.float32(opacity / 255)
        # Colour is premultiplied by coverage; where nothing was drawn rgba is 0 and this
        # gives back the image exactly.
        out[box] = (image[box] * (1 - a) + rgba[..., :3] * np.float32(opacity)).round().astype(np.uint8)
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
        from OpenGL.error import Error as OpenGLError

        try:
            self._gl_thread.submit(self._canvas.delete).result()
        except OpenGLError:
            # The driver has already dropped this context (seen at the end of long test
            # sessions with several contexts on one EGL display); nothing is left to free.
            pass
        finally:
            self._gl_thread.shutdown()

    def _draw(self, meshes, width, height, focal_length, principal_point, wireframe):
        """(RGBA uint8 of the window of the image holding the meshes, colour premultiplied by
        coverage; the window as a pair of slices), or None when nothing is in view."""
        cx, cy = principal_point if principal_point is not None else (width / 2, height / 2)
        # A mesh wholly behind the camera (a bad camera estimate) cannot be seen: skip it.
        meshes = [m for m in meshes if m.vertices[:, 2].max() > 0]
        box = _screen_box(meshes, focal_length, cx, cy, width, height)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        # All meshes in one draw; the z-buffer sorts them out.
        positions, colors, indices, start = [], [], [], 0
        for mesh in meshes:
            verts = np.asarray(mesh.vertices, np.float64)
            base = (mesh.vertex_colors if mesh.vertex_colors is not None
                    else mesh.color if mesh.color is not None else person_color(0))
            positions.append(verts)
            colors.append(_shade(verts, _vertex_normals(verts, mesh.faces), base))
            indices.append((_edges(mesh.faces) if wireframe else mesh.faces) + start)
            start += len(verts)
        depth = np.concatenate([p[:, 2] for p in positions])
        znear = max(1e-3, float(depth[depth > 0].min()) * 0.5)
        zfar = float(depth.max()) * 2 + 1.0
        s = _SUPERSAMPLE
        projection = _projection(focal_length * s, (cx - x0) * s, (cy - y0) * s,
                                 (x1 - x0) * s, (y1 - y0) * s, znear, zfar)
        rgba = self._gl_thread.submit(
            self._canvas.draw, np.concatenate(positions).astype(np.float32),
            np.concatenate(colors), np.concatenate(indices).astype(np.uint32), wireframe,
            projection, x1 - x0, y1 - y0).result()
        return rgba, (slice(y0, y1), slice(x0, x1))


class _Canvas:
    """An offscreen GL context (opened by pyrender on EGL or OSMesa) with a shader that
    draws interpolated vertex colours, and framebuffers that only grow: a window is drawn
    _SUPERSAMPLE times larger into one, then averaged down by a linear blit (each small
    pixel's centre falls between its 2x2 big pixels) into the other and read back.
    GL calls only: use it from the thread that made it."""

    _VERTEX_SHADER = """#version 330 core
layout(location = 0) in vec3 position;
layout(location = 1) in vec3 color;
uniform mat4 projection;
out vec3 vertex_color;
void main() {
    gl_Position = projection * vec4(position, 1.0);
    vertex_color = color;
}"""
    _FRAGMENT_SHADER = """#version 330 core
in vec3 vertex_color;
out vec4 frag_color;
void main() { frag_color = vec4(vertex_color, 1.0); }"""

    def __init__(self, pyrender, width: int, height: int):
        from OpenGL import GL
        from OpenGL.GL import shaders

        self.offscreen = pyrender.OffscreenRenderer(8, 8)  # opens the context, current here
        with _OPEN_LOCK:
            _OPEN_CANVASES[0] += 1
        self.program = shaders.compileProgram(
            shaders.compileShader(self._VERTEX_SHADER, GL.GL_VERTEX_SHADER),
            shaders.compileShader(self._FRAGMENT_SHADER, GL.GL_FRAGMENT_SHADER))
        self.projection_at = GL.glGetUniformLocation(self.program, "projection")
        self.vao = GL.glGenVertexArrays(1)
        self.buffers = GL.glGenBuffers(3)  # positions, colours, indices
        GL.glBindVertexArray(self.vao)
        for location, buffer in enumerate(self.buffers[:2]):
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buffer)
            GL.glEnableVertexAttribArray(location)
            GL.glVertexAttribPointer(location, 3, GL.GL_FLOAT, GL.GL_FALSE, 0, None)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self.buffers[2])  # remembered by the VAO
        self.capacity = (0, 0)
        self.framebuffers, self.renderbuffers = [], []
        self._grow(width, height)

    def _grow(self, width: int, height: int) -> None:
        """Framebuffers of at least this (small) size: re-made only when a window is larger
        than any before, so drawing windows of changing sizes costs no re-allocation."""
        from OpenGL import GL

        if width <= self.capacity[0] and height <= self.capacity[1]:
            return
        self._delete_framebuffers()
        w, h = max(width, self.capacity[0]), max(height, self.capacity[1])
        s = _SUPERSAMPLE
        self.renderbuffers = list(GL.glGenRenderbuffers(3))
        self.framebuffers = list(GL.glGenFramebuffers(2))  # big (colour, depth), small (colour)
        storage = ((GL.GL_RGBA8, w * s, h * s), (GL.GL_DEPTH_COMPONENT24, w * s, h * s), (GL.GL_RGBA8, w, h))
        for buffer, (kind, bw, bh) in zip(self.renderbuffers, storage):
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
            GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, kind, bw, bh)
        attach = ((0, GL.GL_COLOR_ATTACHMENT0, 0), (0, GL.GL_DEPTH_ATTACHMENT, 1), (1, GL.GL_COLOR_ATTACHMENT0, 2))
        for fb, point, rb in attach:
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.framebuffers[fb])
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, point, GL.GL_RENDERBUFFER, self.renderbuffers[rb])
        self.capacity = (w, h)

    def draw(self, positions, colors, indices, lines: bool, projection, width: int, height: int) -> np.ndarray:
        """(height, width, 4) uint8 RGBA of the triangles (or lines), top row first."""
        from OpenGL import GL

        self._grow(width, height)
        s = _SUPERSAMPLE
        GL.glBindVertexArray(self.vao)
        targets = (GL.GL_ARRAY_BUFFER, GL.GL_ARRAY_BUFFER, GL.GL_ELEMENT_ARRAY_BUFFER)
        for target, buffer, data in zip(targets, self.buffers, (positions, colors, indices)):
            GL.glBindBuffer(target, buffer)
            GL.glBufferData(target, data, GL.GL_STREAM_DRAW)
        GL.glUseProgram(self.program)
        GL.glUniformMatrix4fv(self.projection_at, 1, GL.GL_TRUE, projection.astype(np.float32))

        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.framebuffers[0])
        GL.glViewport(0, 0, width * s, height * s)
        GL.glEnable(GL.GL_SCISSOR_TEST)  # clear only the window, not the whole framebuffer
        GL.glScissor(0, 0, width * s, height * s)
        GL.glClearColor(0, 0, 0, 0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthFunc(GL.GL_LESS)
        GL.glDisable(GL.GL_BLEND)
        GL.glEnable(GL.GL_CULL_FACE)  # back faces are hidden anyway: skip them
        GL.glLineWidth(float(s))  # wireframe lines a small pixel wide
        GL.glDrawElements(GL.GL_LINES if lines else GL.GL_TRIANGLES, indices.size, GL.GL_UNSIGNED_INT, None)

        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self.framebuffers[0])
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self.framebuffers[1])
        GL.glBlitFramebuffer(0, 0, width * s, height * s, 0, 0, width, height,
                             GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self.framebuffers[1])
        pixels = GL.glReadPixels(0, 0, width, height, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
        return np.frombuffer(pixels, np.uint8).reshape(height, width, 4)[::-1]  # GL: bottom row first

    def _delete_framebuffers(self) -> None:
        from OpenGL import GL

        if self.framebuffers:
            GL.glDeleteFramebuffers(len(self.framebuffers), self.framebuffers)
            GL.glDeleteRenderbuffers(len(self.renderbuffers), self.renderbuffers)
        self.framebuffers, self.renderbuffers = [], []

    def delete(self) -> None:
        from OpenGL import GL

        self._delete_framebuffers()
        GL.glDeleteBuffers(len(self.buffers), self.buffers)
        GL.glDeleteVertexArrays(1, [self.vao])
        GL.glDeleteProgram(self.program)
        with _OPEN_LOCK:
            _OPEN_CANVASES[0] -= 1
            others_open = _OPEN_CANVASES[0] > 0
        platform = self.offscreen._platform
        if others_open and getattr(platform, "_egl_display", None) is not None:
            # The EGL display is one per process: pyrender's eglTerminate would pull it
            # from under the renderers still open. Destroy only this context.
            platform.delete_context = lambda: _destroy_egl_context_only(platform)
        self.offscreen.delete()


_OPEN_CANVASES = [0]  # GL contexts open in this process
_OPEN_LOCK = threading.Lock()


def _destroy_egl_context_only(platform) -> None:
    from OpenGL import EGL

    EGL.eglMakeCurrent(platform._egl_display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
    EGL.eglDestroyContext(platform._egl_display, platform._egl_context)
    platform._egl_context = platform._egl_display = None


def _projection(focal, cx, cy, width, height, znear, zfar) -> np.ndarray:
    """OpenGL projection of a pinhole camera in our frame (+Z forward, y down) onto a
    width x height framebuffer (image top at its top)."""
    return np.array([[2 * focal / width, 0, 2 * cx / width - 1, 0],
                     [0, -2 * focal / height, 1 - 2 * cy / height, 0],
                     [0, 0, (zfar + znear) / (zfar - znear), -2 * zfar * znear / (zfar - znear)],
                     [0, 0, 1, 0]])


def _screen_box(meshes, focal_length, cx, cy, width, height, margin: int = 2):
    """(x0, y0, x1, y1): the pixels the meshes can cover, from their projected vertices (a
    triangle stays inside its corners' box) and a margin for antialiasing, clipped to the
    image. The whole image when a vertex is at or behind the camera plane (the near plane
    cuts such triangles anywhere); None when nothing is in view."""
    if not meshes:
        return None
    verts = np.concatenate([m.vertices for m in meshes])
    if verts[:, 2].min() <= 1e-6:
        return 0, 0, width, height
    uv = verts[:, :2] / verts[:, 2:] * focal_length + [cx, cy]
    x0, y0 = np.clip(np.floor(uv.min(0)) - margin, 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(uv.max(0)) + margin, 0, [width, height]).astype(int)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


def _shade(vertices: np.ndarray, normals: np.ndarray, base) -> np.ndarray:
    """(V, 3) float32 vertex colours: `base` (3,) or (V, 3) lit as pyrender's
    metallic-roughness shader lights a rough (0.7) non-metal under _LIGHTS and the ambient,
    gamma-encoded. Per vertex rather than per pixel: the body mesh is dense enough that the
    interpolated colours look the same, and llvmpipe shades far fewer points."""
    view = -vertices / np.linalg.norm(vertices, axis=1, keepdims=True)  # the camera is at 0
    nv = np.clip(np.abs(np.einsum("ij,ij->i", normals, view)), 1e-3, 1)
    a2 = _ROUGHNESS ** 4  # pyrender's microfacet alpha is roughness squared
    k = (_ROUGHNESS + 1) ** 2 / 8
    light = np.full(len(vertices), _AMBIENT)
    for to_light in _LIGHTS:
        half = view + to_light
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-12)
        nl = np.clip(normals @ to_light, 1e-3, 1)
        nh = np.clip(np.einsum("ij,ij->i", normals, half), 0, 1)
        vh = np.clip(np.einsum("ij,ij->i", view, half), 0, 1)
        fresnel = 0.04 + 0.96 * (1 - vh) ** 5
        geometry = nv / (nv * (1 - k) + k) * nl / (nl * (1 - k) + k)
        distribution = a2 / (np.pi * (nh ** 2 * (a2 - 1) + 1) ** 2)
        diffuse = (1 - fresnel) * 0.96 / np.pi
        specular = fresnel * geometry * distribution / (4 * nl * nv + 1e-3)
        light += _LIGHT_INTENSITY * nl * (diffuse + specular)
    return (np.clip(np.asarray(base, np.float64) * light[:, None], 0, 1) ** (1 / 2.2)).astype(np.float32)


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (bincount: several times faster than np.add.at)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    corners = faces.reshape(-1)
    normals = np.stack([np.bincount(corners, np.repeat(face_n[:, c], 3), minlength=len(vertices))
                        for c in range(3)], axis=1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) unique edges of the triangles, for GL_LINES."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


def _rotation_x(a: float) -> np.ndarray:
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _rotation_y(a: float) -> np.ndarray:
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
