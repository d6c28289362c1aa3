"""A converted BlazePose network run by PyTorch (the reference) or by ONNX Runtime (faster
on a CPU). Both take and give numpy arrays: (1, 3, H, W) float32 in, {output name: array} out.

The ONNX file is exported once per weights file, into the cache (pare_demo.paths.cache_dir()),
from a copy of the network with its zero padding folded into the convolutions (the same
results, fewer copies: ONNX Runtime does not fuse those pads itself), and kept only if it
gives the PyTorch module's results.
"""
from __future__ import annotations

import copy
import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pare_demo import paths
from pare_demo.blazepose.graph import Conv, GraphNetwork, load_graph
from pare_demo.optimize import torch_threads

BACKENDS = ("torch", "onnx")
ONNX_TOLERANCE = 1e-4   # relative to the largest output value
ONNX_INPUT = "image"
ONNX_EXPORT_VERSION = 2  # part of the cached file's name: bump when the export changes


class TorchGraph:
    backend = "torch"

    def __init__(self, network: GraphNetwork):
        self.network = network.eval()
        self.output_names = list(network.output_ids)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        out = self.network(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)))
        return {name: tensor.numpy() for name, tensor in out.items()}


class OnnxGraph:
    backend = "onnx"

    def __init__(self, onnx_path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        from pare_demo.optimize import usable_cores

        # The same settings as pare_demo.export_onnx.OnnxNetwork (see why there): one
        # sequential stream over the cores, no spinning threads once a run ends.
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or usable_cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        feed = {ONNX_INPUT: np.ascontiguousarray(image, dtype=np.float32)}
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))


class _TupleOutputs(nn.Module):
    """ONNX export wants a tuple of tensors, not a dict."""

    def __init__(self, network: GraphNetwork):
        super().__init__()
        self.network = network
        self.names = list(network.output_ids)

    def forward(self, image):
        out = self.network(image)
        return tuple(out[name] for name in self.names)


def fold_pad_ops(graph: dict) -> dict:
    """A copy of a graph description (pare_demo.blazepose.convert) in which each PAD op that
    pads only height and width, and is read only by convolutions without padding of their
    own, is dropped: those convolutions read its input and do the padding."""
    ops = copy.deepcopy(graph["ops"])
    readers = defaultdict(list)
    for spec in ops:
        for t in spec["inputs"]:
            readers[t].append(spec)
    graph_outputs = set(graph["outputs"].values())
    kept = []
    for spec in ops:
        convs = readers[spec["output"]]
        if (spec["op"] == "pad" and len(spec["pad"]) == 6 and not any(spec["pad"][4:])  # no channels
                and spec["output"] not in graph_outputs and convs
                and all(r["op"] == "conv" and not any(r["pad"]) for r in convs)):
            for conv in convs:
                conv["inputs"] = [spec["inputs"][0] if t == spec["output"] else t for t in conv["inputs"]]
                conv["pad"] = list(spec["pad"][:4])  # left, right, top, bottom, as a PAD's first four
            continue
        kept.append(spec)
    return {**graph, "ops": kept}


def move_padding_into_convs(network: GraphNetwork) -> GraphNetwork:
    """Each convolution's symmetric zero padding done by nn.Conv2d itself instead of a
    separate F.pad (which the ONNX export also turns into a chain of shape ops)."""
    for op in network.ops.values():
        if isinstance(op, Conv) and any(op.pad):
            left, right, top, bottom = op.pad
            if left == right and top == bottom:
                op.conv.padding = (top, left)
                op.pad = (0, 0, 0, 0)
    return network


class _StaticResize(nn.Module):
    """RESIZE_BILINEAR to the size the graph itself names. The graph's module scales by a
    ratio of the input's shape, which the ONNX exporter traces as tensors it cannot round;
    at the graph's own input size both give the same."""

    def __init__(self, op: nn.Module, size):
        super().__init__()
        self.inputs, self.output = op.inputs, op.output
        self.size, self.align_corners = tuple(size), op.align_corners

    def forward(self, x):
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=self.align_corners)


def export_ready_network(weights: str | Path, reference: GraphNetwork) -> GraphNetwork:
    """The reference network with its padding folded into the convolutions and its resizes
    to constant sizes: the same results at the graph's own input size."""
    graph = torch.load(weights, map_location="cpu", weights_only=True)["graph"]
    network = GraphNetwork(fold_pad_ops(graph), reference.output_ids)
    network.load_state_dict(reference.state_dict())  # strict: the same convolutions, by name
    for spec in graph["ops"]:
        name = f"op{spec['index']}"
        if spec["op"] == "resize_bilinear" and name in network.ops:
            network.ops[name] = _StaticResize(network.ops[name], spec["size"])
    return move_padding_into_convs(network).eval()


def export_onnx(weights: str | Path, out: Path) -> Path:
    """Write the network in `weights` (batch of 1, NCHW input) as ONNX to `out`, checked
    against the eager PyTorch module: raises ValueError if the two disagree by more than
    ONNX_TOLERANCE."""
    reference = load_graph(weights)
    network = export_ready_network(weights, reference)
    out.parent.mkdir(parents=True, exist_ok=True)
    _, h, w, c = reference.input_shape  # NHWC, as in the .tflite file
    probe = np.random.default_rng(0).uniform(-1, 1, (1, c, h, w)).astype(np.float32)
    tmp = out.with_name(out.name + ".tmp")
    wrapper = _TupleOutputs(network).eval()  # the exporter gives the wrapper's mode to the whole tree
    # One thread: on cores that other processes load, PyTorch's two can take seconds a run.
    with torch.inference_mode(), torch_threads(1):
        torch.onnx.export(wrapper, (torch.from_numpy(probe),), str(tmp), input_names=[ONNX_INPUT],
                          output_names=wrapper.names, opset_version=17, dynamo=False)
        expected = TorchGraph(reference)(probe)
    got = OnnxGraph(tmp)(probe)
    for name, want in expected.items():
        error = np.abs(got[name] - want).max() / max(np.abs(want).max(), 1e-6)
        if not error <= ONNX_TOLERANCE:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"ONNX export of {name} differs from PyTorch by {error:.2g} (relative)")
    tmp.replace(out)
    return out


def cached_onnx(weights: str | Path) -> Path:
    """The network's ONNX file in the cache, exported on first use (per weights content)."""
    digest = hashlib.sha1(Path(weights).read_bytes()).hexdigest()[:16]
    cached = paths.cache_dir() / "onnx" / f"{Path(weights).stem}-{digest}-v{ONNX_EXPORT_VERSION}.onnx"
    return cached if cached.exists() else export_onnx(weights, cached)


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_network(weights: str | Path, backend: str = "auto") -> TorchGraph | OnnxGraph:
    """The network in a file written by pare_demo.blazepose.convert. backend: "torch",
    "onnx", or "auto" (ONNX Runtime when installed and its export checks out, else PyTorch)."""
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} or 'auto', not {backend!r}")
    if backend == "torch" or (backend == "auto" and not onnx_available()):
        return TorchGraph(load_graph(weights))
    try:
        return OnnxGraph(cached_onnx(weights))
    except Exception:
        if backend == "onnx":
            raise
        return TorchGraph(load_graph(weights))  # an export that failed or disagreed: the reference
