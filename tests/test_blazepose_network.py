"""BlazePose in PyTorch: the converter, the graph ops, the equivalence with ai-edge-litert,
and the landmark trunk as PARE's backbone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pare_demo import paths
from pare_demo.blazepose.convert import OUTPUT_NAMES, read_tflite
from pare_demo.blazepose.graph import DepthToSpace, GraphNetwork, load_graph
from pare_demo.blazepose.landmarks import (BLAZEPOSE_LANDMARK_NAMES, SMPL_FROM_LANDMARKS,
                                           smpl_from_landmarks_matrix)
from pare_demo.body.joint_names import SMPL_JOINT_NAMES


def _photo(size: int) -> np.ndarray:
    """The astronaut photo as an RGB float crop in [0, 1], size x size."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut()[:, 56:456], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


@pytest.mark.slow
@pytest.mark.parametrize("name, size, scale", [("pose_landmark_full", 256, (0.0, 1.0)),
                                               ("pose_detection", 224, (-1.0, 2.0))])
def test_torch_network_equals_litert(name, size, scale, mediapipe_tflite_dir, litert_interpreter):
    """Every output of the converted network equals ai-edge-litert's on the same photo
    within 1e-3 of its largest value."""
    path = mediapipe_tflite_dir / f"{name}.tflite"
    interpreter = litert_interpreter(model_path=str(path), num_threads=2)
    interpreter.allocate_tensors()
    x = (_photo(size) * scale[1] + scale[0])[None]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    reference = {OUTPUT_NAMES[name][d["name"]]: interpreter.get_tensor(d["index"])
                 for d in interpreter.get_output_details()}
    network = load_graph(paths.BLAZEPOSE_DIR / f"{name}.pt", outputs=reference)
    with torch.inference_mode():
        out = network(torch.from_numpy(x).permute(0, 3, 1, 2))
    for key, ref in reference.items():
        ours = out[key].numpy()
        if ours.ndim == 4:
            ours = ours.transpose(0, 2, 3, 1)
        assert ours.shape == ref.shape, key
        assert np.abs(ours - ref).max() <= 1e-3 * np.abs(ref).max(), key


@pytest.mark.slow
def test_committed_assets_are_the_converter_output(mediapipe_tflite_dir):
    """assets/blazepose/*.pt are what the converter makes of MediaPipe's files: same graph,
    same weights."""
    for name in OUTPUT_NAMES:
        graph, weights = read_tflite((mediapipe_tflite_dir / f"{name}.tflite").read_bytes(), OUTPUT_NAMES[name])
        committed = torch.load(paths.BLAZEPOSE_DIR / f"{name}.pt", weights_only=True)
        assert committed["graph"] == graph
        assert committed["state_dict"].keys() == weights.keys()
        for key, value in weights.items():
            assert torch.equal(committed["state_dict"][key], value), key
    assert "Apache License" in (paths.BLAZEPOSE_DIR / "LICENSE").read_text()


def test_densify_reads_csr_rows():
    """A 2 x 1 x 1 x 4 constant stored as CSR over its last dimension comes back dense."""
    from pare_demo.blazepose.convert import densify

    dims = [("dense",), ("dense",), ("dense",), ("csr", [0, 2, 3], [1, 3, 0])]
    dense = densify(np.array([1.0, 2.0, 3.0], dtype=np.float16), [2, 1, 1, 4], dims)
    expected = np.array([[0, 1, 0, 2], [3, 0, 0, 0]], dtype=np.float16).reshape(2, 1, 1, 4)
    np.testing.assert_array_equal(dense, expected)


def test_depth_to_space_follows_tflite_channel_order():
    """Output pixel (2y + dy, 2x + dx), channel c is input pixel (y, x), channel (2 dy + dx) C + c."""
    x = torch.arange(2 * 8 * 3 * 3, dtype=torch.float32).reshape(2, 8, 3, 3)
    out = DepthToSpace({"inputs": [0], "output": 1, "block": 2})(x)
    assert out.shape == (2, 2, 6, 6)
    c_out = 2
    for dy in range(2):
        for dx in range(2):
            for c in range(c_out):
                assert torch.equal(out[:, c, dy::2, dx::2], x[:, (dy * 2 + dx) * c_out + c])


def test_pruned_network_keeps_only_what_its_outputs_need():
    """Asking for the heatmaps only drops the segmentation and regression branches, with
    the same heatmaps as the whole graph."""
    data = torch.load(paths.BLAZEPOSE_LANDMARKS, weights_only=True)
    whole = GraphNetwork(data["graph"])
    pruned = load_graph(paths.BLAZEPOSE_LANDMARKS, outputs=["heatmaps"])
    assert len(pruned.ops) == 71 and len(whole.ops) == 135   # convolutions, adds, resizes, ... (pads folded)
    kept = {op.output for op in pruned.ops.values()}
    graph = data["graph"]
    assert graph["outputs"]["segmentation"] not in kept and graph["outputs"]["landmarks"] not in kept
    whole.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    x = torch.from_numpy(_photo(256)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        assert torch.equal(pruned(x)["heatmaps"], whole.eval()(x)["heatmaps"])


def test_asking_for_some_outputs_runs_only_their_ops():
    """forward(image, outputs) gives exactly what the whole run gives for those outputs,
    and the PARE trunk holds only the ops of its features (the regressor that refines crops
    is the original network's, pare_demo.blazepose.pose_landmarks)."""
    from pare_demo.models.backbones import BlazePoseTrunk

    net = load_graph(paths.BLAZEPOSE_LANDMARKS)
    x = torch.from_numpy(_photo(256)).permute(2, 0, 1)[None]
    ran = []
    hooks = [op.register_forward_hook(lambda m, i, o: ran.append(m)) for op in net.ops.values()]
    with torch.inference_mode():
        whole = net(x)
        ran.clear()
        some = net(x, ["landmarks"])
        assert set(some) == {"landmarks"} and torch.equal(some["landmarks"], whole["landmarks"])
        assert 0 < len(ran) < len(net.ops)
        trunk = BlazePoseTrunk().eval()
        features = trunk.net(x)
    for hook in hooks:
        hook.remove()
    assert set(features) == set(BlazePoseTrunk.FEATURES)
    assert torch.equal(features["heatmaps"], whole["heatmaps"])
    # The regressor: what the landmarks need beyond the features' ops.
    regressor = set(load_graph(paths.BLAZEPOSE_LANDMARKS, outputs=["landmarks"]).state_dict())
    regressor -= set(load_graph(paths.BLAZEPOSE_LANDMARKS, outputs=BlazePoseTrunk.FEATURES).state_dict())
    assert regressor and not regressor & set(trunk.net.state_dict())


def test_landmark_mix_covers_every_smpl_joint():
    """Each SMPL joint is a convex mix of named landmarks."""
    assert set(SMPL_FROM_LANDMARKS) == set(SMPL_JOINT_NAMES)
    matrix = smpl_from_landmarks_matrix()
    np.testing.assert_allclose(matrix.sum(1), 1.0, rtol=1e-6)
    assert (matrix >= 0).all()
    assert matrix[SMPL_JOINT_NAMES.index("left_knee"), BLAZEPOSE_LANDMARK_NAMES.index("left_knee")] == 1.0


def test_untrained_head_attends_where_blazepose_finds_the_joints():
    """With the landmark prior and the learnt part logits at zero, each limb part's attention
    peaks where BlazePose's own heatmap for that joint does (same 1/8 cell, on a real photo)."""
    from pare_demo.models import PARE, default_config

    torch.manual_seed(0)
    model = PARE(default_config("blazepose")).eval()
    x = torch.from_numpy(_photo(256)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        out = model(x)
        heatmaps = torch.nn.functional.avg_pool2d(model.backbone.net(x)["heatmaps"], 2)[0]
    for joint in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow"):
        j = SMPL_JOINT_NAMES.index(joint)
        k = BLAZEPOSE_LANDMARK_NAMES.index(joint)
        assert out.part_attention[0, j].argmax() == heatmaps[k].argmax(), joint
    assert out.part_attention.shape == (1, 24, 32, 32)
