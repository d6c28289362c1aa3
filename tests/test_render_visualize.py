import numpy as np
import pytest
import torch
import trimesh

from pare_demo import visualize
from pare_demo.body import load_body_model
from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.colors import LEFT_COLOR, PART_COLORS, RIGHT_COLOR, to_uint8
from pare_demo.crop import make_crop
from pare_demo.geometry import perspective_projection
from pare_demo.render import GL_FLIP, MeshToRender, Renderer

FOCAL = 600.0


@pytest.fixture(scope="module")
def renderer():
    r = Renderer()
    yield r
    r.close()


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
    glb = visualize.export_glb(vertices, faces, tmp_path / "mesh.glb", visualize.part_vertex_colors(parts))
    loaded = trimesh.load(glb, force="mesh", process=False)
    assert len(loaded.vertices) == len(vertices) and len(loaded.faces) == len(faces)
    assert loaded.visual.vertex_colors.shape[0] == len(vertices)
    obj = trimesh.load(visualize.export_obj(vertices, faces, tmp_path / "mesh.obj"), force="mesh", process=False)
    assert len(obj.vertices) == len(vertices) and len(obj.faces) == len(faces)
