import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import trimesh

from pare_demo import exports, visualize
from pare_demo.body import load_body_model
from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.colors import LEFT_COLOR, PART_COLORS, RIGHT_COLOR, to_uint8
from pare_demo.crop import make_crop
from pare_demo.geometry import GL_FLIP, perspective_projection
from pare_demo.render import (
    _LIGHTS,
    MeshToRender,
    Renderer,
    _screen_box,
    _vertex_normals,
)

FOCAL = 600.0


@pytest.fixture(scope="module")
def body():
    model = load_body_model("open")
    with torch.no_grad():
        out = model()
    # Camera frame (+Z forward, y down): turn the SMPL body (Y up, facing +Z) to face the camera.
    vertices = out.vertices[0].numpy() @ GL_FLIP.T
    joints = out.joints[0, :24].numpy() @ GL_FLIP.T
    return vertices, np.asarray(model.faces, np.int64), joints, model.part_labels.numpy()


def project(points, translation, size=(640, 480)):
    uv = perspective_projection(torch.tensor(points, dtype=torch.float32)[None],
                                torch.tensor(translation, dtype=torch.float32)[None], FOCAL,
                                (size[0] / 2, size[1] / 2))
    return uv[0].numpy()


def test_silhouette_matches_projected_vertices(renderer, body):
    vertices, faces, _, _ = body
    t = np.array([0.3, -0.1, 4.0])
    _, alpha = renderer.render([MeshToRender(vertices + t, faces)], 640, 480, FOCAL)
    ys, xs = np.nonzero(alpha > 0)
    uv = project(vertices, t)
    assert abs(xs.min() - uv[:, 0].min()) <= 2 and abs(xs.max() + 1 - uv[:, 0].max()) <= 2
    assert abs(ys.min() - uv[:, 1].min()) <= 2 and abs(ys.max() + 1 - uv[:, 1].max()) <= 2


def test_overlay_keeps_background_and_resizes(renderer, body):
    vertices, faces, _, _ = body
    rng = np.random.default_rng(0)
    for size in ((640, 480), (300, 500)):
        image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        out = renderer.overlay(image, [MeshToRender(vertices + [0, 0, 5.0], faces)], FOCAL, opacity=1.0)
        _, alpha = renderer.render([MeshToRender(vertices + [0, 0, 5.0], faces)], size[0], size[1], FOCAL)
        assert out.shape == image.shape
        assert np.array_equal(out[alpha == 0], image[alpha == 0])
        assert (np.abs(out[alpha == 1].astype(int) - image[alpha == 1]).sum(1) > 0).mean() > 0.95


def test_nearer_person_occludes_the_farther(renderer, body):
    vertices, faces, _, _ = body
    red, blue = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    near = MeshToRender(vertices + [0.0, 0, 4.0], faces, color=red)
    far = MeshToRender(vertices + [0.15, 0, 6.0], faces, color=blue)
    for order in ([near, far], [far, near]):
        rgb, alpha = renderer.render(order, 640, 480, FOCAL)
        center = project(np.array([[0.0, 0.0, 0.0]]), [0.0, 0, 4.0])[0].round().astype(int)
        pixel = rgb[center[1], center[0]]
        assert pixel[0] > pixel[2] + 0.1  # red (near) in front whatever the drawing order


def test_mesh_behind_the_camera_draws_nothing(renderer, body):
    vertices, faces, _, _ = body
    image = np.zeros((100, 100, 3), np.uint8)
    assert np.array_equal(renderer.overlay(image, [MeshToRender(vertices - [0, 0, 5.0], faces)], FOCAL), image)


def test_side_view_turns_the_body(renderer, body):
    vertices, faces, _, _ = body
    front = renderer.side_view([MeshToRender(vertices + [0, 0, 4], faces)], yaw_degrees=0)
    side = renderer.side_view([MeshToRender(vertices + [0, 0, 4], faces)], yaw_degrees=90)
    width = lambda im: np.ptp(np.nonzero((im < 250).any(2))[1])  # noqa: E731
    assert width(side) < 0.5 * width(front)  # the T-pose's arms point at the viewer


def test_window_render_equals_a_crop_of_a_larger_image(renderer, body):
    """Only the window the meshes cover is drawn: the result must not depend on where that
    window sits. The same scene in a larger image (principal point moved along) gives the same
    pixels, with two people overlapping, one partly outside the small image, and a body lying
    through the camera plane (drawn over the whole image)."""
    vertices, faces, _, _ = body
    lying = vertices @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T + [0, 0.4, 0.6]
    assert lying[:, 2].min() < 0 < lying[:, 2].max()
    scenes = [[MeshToRender(vertices + [0.0, 0, 4.0], faces, color=np.array([1.0, 0, 0])),
               MeshToRender(vertices + [0.5, 0.1, 5.0], faces, color=np.array([0, 0, 1.0])),
               MeshToRender(vertices + [2.2, -0.5, 4.0], faces)],
              [MeshToRender(lying, faces)]]
    for meshes in scenes:
        rgb, alpha = renderer.render(meshes, 640, 480, FOCAL)
        big_rgb, big_alpha = renderer.render(meshes, 840, 680, FOCAL, principal_point=(420, 340))
        crop = (slice(100, 580), slice(100, 740))
        assert (alpha > 0).sum() > 5000
        assert np.abs(big_alpha[crop] - alpha).max() <= 2 / 255
        assert np.abs(big_rgb[crop] - rgb).max() <= 2 / 255
    assert renderer.render(scenes[0], 640, 480, FOCAL)[1][:, -1].max() == 1  # cut by the border


def test_screen_box(body):
    vertices, faces, _, _ = body
    t = np.array([0.3, -0.1, 4.0])
    x0, y0, x1, y1 = _screen_box([MeshToRender(vertices + t, faces)], FOCAL, 320, 240, 640, 480)
    uv = project(vertices, t)
    assert -4 <= x0 - uv[:, 0].min() <= -1 and 1 <= x1 - uv[:, 0].max() <= 4
    assert -4 <= y0 - uv[:, 1].min() <= -1 and 1 <= y1 - uv[:, 1].max() <= 4
    assert _screen_box([MeshToRender(vertices + [4.0, 0, 4.0], faces)], FOCAL, 320, 240, 640, 480) is None
    crossing = MeshToRender(vertices + [0, 0, 0.5], faces)  # some vertices behind the camera
    assert _screen_box([crossing], FOCAL, 320, 240, 640, 480) == (0, 0, 640, 480)


def _reference_pbr(vertices, faces, color, width, height):
    """The renderer's former look: pyrender's per-pixel metallic-roughness shader, same lights.
    Call it on the renderer's GL thread: it draws in that context (a second EGL context would
    terminate the display they share when deleted)."""
    import pyrender as pr

    verts = vertices @ GL_FLIP.T
    prim = pr.Primitive(positions=verts, indices=faces, normals=_vertex_normals(verts, faces),
                        color_0=np.tile(np.append(color, 1.0), (len(verts), 1)),
                        material=pr.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.7))
    scene = pr.Scene(bg_color=[0, 0, 0, 0], ambient_light=[0.25] * 3)
    scene.add(pr.Mesh([prim]))
    scene.add(pr.IntrinsicsCamera(fx=FOCAL, fy=FOCAL, cx=width / 2, cy=height / 2, znear=1.0, zfar=20.0))
    for to_light in _LIGHTS @ GL_FLIP:  # a light shines along its pose's -Z
        z = to_light / np.linalg.norm(to_light)
        x = np.cross([0.0, 1.0, 0.0], z)
        x /= np.linalg.norm(x)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
        scene.add(pr.DirectionalLight(color=np.ones(3), intensity=1.1), pose=pose)
    gl = pr.Renderer(width, height)
    try:
        rgba, _ = gl.render(scene, flags=pr.RenderFlags.RGBA | pr.RenderFlags.OFFSCREEN)
    finally:
        gl.delete()
    return rgba[..., :3] / 255.0, rgba[..., 3] / 255.0


def test_vertex_lighting_matches_pyrender_shading(renderer, body):
    """Lighting per vertex in numpy reproduces pyrender's per-pixel PBR shading inside the body."""
    vertices, faces, _, _ = body
    color = np.array([0.9, 0.55, 0.3])
    placed = vertices + [0, 0, 4.0]
    rgb, alpha = renderer.render([MeshToRender(placed, faces, color=color)], 640, 480, FOCAL)
    ref_rgb, ref_alpha = renderer._gl_thread.submit(_reference_pbr, placed, faces, color, 640, 480).result()
    inside = (alpha == 1) & (ref_alpha == 1)
    assert inside.sum() > 0.9 * (ref_alpha == 1).sum()
    diff = np.abs(rgb[inside] - ref_rgb[inside]).max(1)
    assert diff.mean() < 0.01 and np.percentile(diff, 99) < 0.05
    assert np.ptp(rgb[inside][:, 1]) > 0.2  # shaded, not flat


def test_antialiased_edges_blend_without_dark_fringe(renderer):
    """Edge pixels are partly covered; render() gives their straight colour (the resolve had
    multiplied it by coverage) and overlay() mixes it with the image by that coverage."""
    c, s = np.cos(0.5), np.sin(0.5)
    square = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]])
    square = square @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + [0, 0, 5]  # tilted edges
    quad = MeshToRender(square, np.array([[0, 2, 1], [0, 3, 2]]), color=np.array([0.2, 0.8, 0.3]))
    rgb, alpha = renderer.render([quad], 640, 480, FOCAL)
    edge = (alpha > 0) & (alpha < 1)
    assert edge.sum() > 100 and (alpha == 1).sum() > 10000
    inner = np.median(rgb[alpha == 1], axis=0)
    assert np.abs(rgb[edge] - inner).max() < 0.03
    white = np.full((480, 640, 3), 255, np.uint8)
    out = renderer.overlay(white, [quad], FOCAL, opacity=1.0)
    expected = 255 * (1 - alpha[..., None]) + 255 * inner * alpha[..., None]
    assert np.abs(out[edge] - expected[edge]).max() <= 9
    # The other winding faces away from the camera: culled.
    _, back = renderer.render([MeshToRender(square, np.array([[0, 1, 2], [0, 2, 3]]))], 640, 480, FOCAL)
    assert back.max() == 0


def test_vertex_colours_and_wireframe(renderer, body):
    vertices, faces, _, _ = body
    t = np.array([0, 0, 2.0])
    colors = np.tile([1.0, 0, 0], (len(vertices), 1))
    head = vertices[:, 1] < vertices[:, 1].min() + 0.2  # y points down: the top of the head
    colors[head] = [0, 1.0, 0]
    rgb, solid = renderer.render([MeshToRender(vertices + t, faces, vertex_colors=colors)], 640, 480, FOCAL)
    head_px = project(vertices[head].mean(0, keepdims=True), t)[0].round().astype(int)
    body_px = project(vertices[~head].mean(0, keepdims=True), t)[0].round().astype(int)
    assert rgb[head_px[1], head_px[0], 1] > 2 * rgb[head_px[1], head_px[0], 0]
    assert rgb[body_px[1], body_px[0], 0] > 2 * rgb[body_px[1], body_px[0], 1]
    _, wire = renderer.render([MeshToRender(vertices + t, faces)], 640, 480, FOCAL, wireframe=True)
    grown = solid > 0  # the lines stay on the body (give or take a pixel) and leave gaps
    grown = grown | np.roll(grown, 1, 0) | np.roll(grown, -1, 0) | np.roll(grown, 1, 1) | np.roll(grown, -1, 1)
    assert (wire[~grown] == 0).all()
    assert (wire > 0).sum() > 0.8 * (solid > 0).sum() and wire[solid == 1].mean() < 0.9


def test_sizes_and_threads_do_not_change_the_pixels(renderer, body):
    """Framebuffers grow and are reused for smaller windows; calls from several threads run
    one at a time on the renderer's GL thread."""
    vertices, faces, _, _ = body
    meshes = [MeshToRender(vertices + [0.2, 0, 5.0], faces)]
    image = np.full((240, 320, 3), 40, np.uint8)
    first = renderer.overlay(image, meshes, FOCAL / 2)
    renderer.render([MeshToRender(vertices + [0, 0, 1.5], faces)], 1280, 960, FOCAL)  # a large window
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda _: renderer.overlay(image, meshes, FOCAL / 2), range(8)))
    assert (first != image).any(2).sum() > 1000
    assert all(np.array_equal(first, out) for out in again)


def test_heatmap_overlay_peaks_where_the_map_peaks():
    image = np.full((120, 160, 3), 128, np.uint8)
    heat = np.zeros((120, 160), np.float32)
    heat[30, 40] = 1.0
    heat[80, 100] = 0.2
    out = visualize.heatmap_overlay(image, heat)
    assert out.shape == image.shape
    change = np.abs(out.astype(int) - image).sum(2)
    assert np.unravel_index(change.argmax(), change.shape) == (30, 40)
    assert change[0, 0] == 0  # no attention, no change


def test_attention_grid_and_part_map(body):
    image = np.full((200, 300, 3), 90, np.uint8)
    maps = np.random.default_rng(0).random((24, 200, 300)).astype(np.float32)
    grid = visualize.attention_grid(image, maps, tile=100)
    assert grid.shape == (4 * 67, 6 * 100, 3)
    logits = np.full((25, 28, 28), -5.0, np.float32)
    logits[0] = 5.0                      # background everywhere ...
    logits[0, 10:18, 10:18] = -5.0
    logits[SMPL_JOINT_NAMES.index("head") + 1, 10:18, 10:18] = 5.0  # ... but the head in the middle
    crop = make_crop(np.array([150.0, 100.0]), 150.0, 224)
    out = visualize.part_map_overlay(image, logits, crop, alpha=1.0)
    head = to_uint8(PART_COLORS[SMPL_JOINT_NAMES.index("head")])
    assert np.abs(out[100, 150].astype(int) - head).max() <= 1
    assert np.array_equal(out[5, 5], image[5, 5]) and np.array_equal(out[100, 80], image[100, 80])


def test_skeleton_colours_left_and_right():
    image = np.zeros((400, 400, 3), np.uint8)
    joints = np.zeros((24, 2)) + 200
    joints[SMPL_JOINT_NAMES.index("left_wrist")] = [350, 100]
    joints[SMPL_JOINT_NAMES.index("right_wrist")] = [50, 100]
    out = visualize.draw_skeleton(image, joints)
    assert np.abs(out[100, 350].astype(int) - to_uint8(LEFT_COLOR)).max() <= 2
    assert np.abs(out[100, 50].astype(int) - to_uint8(RIGHT_COLOR)).max() <= 2


def test_skeleton_3d_figure(body):
    _, _, joints, _ = body
    fig = visualize.skeleton_3d_figure(joints)
    markers = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(markers) == 1 and len(markers[0].x) == 24 and list(markers[0].text) == list(SMPL_JOINT_NAMES)
    assert sum(x is None for x in lines[0].x) == 23  # 23 bones, each ended by a gap
    with_gt = visualize.skeleton_3d_figure(joints, joints + 0.05)
    assert {t.name for t in with_gt.data} >= {"prediction", "ground truth", "error"}


def test_glb_and_obj_export(tmp_path, body):
    vertices, faces, _, parts = body
    glb = exports.export_glb(vertices, faces, tmp_path / "mesh.glb", visualize.part_vertex_colors(parts))
    loaded = trimesh.load(glb, force="mesh", process=False)
    assert len(loaded.vertices) == len(vertices) and len(loaded.faces) == len(faces)
    assert loaded.visual.vertex_colors.shape[0] == len(vertices)
    obj = trimesh.load(exports.export_obj(vertices, faces, tmp_path / "mesh.obj"), force="mesh", process=False)
    assert len(obj.vertices) == len(vertices) and len(obj.faces) == len(faces)


def test_parameter_files_name_their_body_model(tmp_path):
    prediction = SimpleNamespace(pose_axis_angle=np.arange(72.0) / 100, betas=np.linspace(-1, 1, 10),
                                 cam_crop=np.array([0.9, 0.0, 0.1]), cam_translation=np.array([0.0, 0.1, 5.0]),
                                 bbox=np.array([10.0, 20.0, 110.0, 220.0]))
    result = SimpleNamespace(focal_length=600.0, principal_point=np.array([320.0, 240.0]))
    params = json.loads(exports.export_parameters(prediction, result, "open", tmp_path / "p.json").read_text())
    assert params["body_model"] == "open" and params["betas"] == pytest.approx(prediction.betas.tolist())
    assert params["focal_length"] == 600.0 and params["principal_point"] == [320.0, 240.0]
    assert params == exports.smpl_parameters(prediction, result, "open")
    with np.load(exports.export_parameters(prediction, result, "SMPL_NEUTRAL.pkl", tmp_path / "p.npz")) as npz:
        assert str(npz["body_model"]) == "SMPL_NEUTRAL.pkl" and np.allclose(npz["betas"], prediction.betas)
        assert np.allclose(npz["body_pose"], prediction.pose_axis_angle[3:])


def test_closing_one_renderer_leaves_the_others_working(renderer, body):
    """EGL has one display per process: a renderer closing must not terminate it for the rest."""
    vertices, faces = body[:2]
    image = np.zeros((120, 160, 3), np.uint8)
    meshes = [MeshToRender(vertices + [0, 0, 5.0], faces)]
    before = renderer.overlay(image, meshes, 200.0)
    other = Renderer()
    assert np.array_equal(other.overlay(image, meshes, 200.0), before)
    other.close()
    assert np.array_equal(renderer.overlay(image, meshes, 200.0), before)
    third = Renderer()  # a new context after one was closed
    assert np.array_equal(third.overlay(image, meshes, 200.0), before)
    third.close()
