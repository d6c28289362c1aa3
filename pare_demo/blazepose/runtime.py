"""A converted BlazePose network run by PyTorch (the reference) or by ONNX Runtime (faster
on a CPU). Both take and give numpy arrays: (1, 3, H, W) float32 in, {output name: array} out.

The ONNX file is exported once per weights file, into the cache (pare_demo.paths.cache_dir()),
and kept only if it gives the PyTorch module's results.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pare_demo import paths
from pare_demo.blazepose.graph import GraphNetwork, load_graph
from pare_demo.optimize import torch_threads

BACKENDS = ("torch", "onnx")
ONNX_TOLERANCE = 1e-4   # relative to the largest output value
ONNX_INPUT = "image"
ONNX_EXPORT_VERSION = 3  # part of the cached file's name: bump when the export changes


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
        from pare_demo.export_onnx import onnx_session

        self.session = onnx_session(onnx_path, threads, cuda=False)
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


def export_onnx(weights: str | Path, out: Path, outputs: Iterable[str] | None = None) -> Path:
    """Write the network in `weights` (batch of 1, NCHW input; only the ops of `outputs`,
    None: all) as ONNX to `out`, checked against the eager PyTorch module: raises ValueError
    if the two disagree by more than ONNX_TOLERANCE."""
    network = load_graph(weights, outputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    _, h, w, c = network.input_shape  # NHWC, as in the .tflite file
    probe = np.random.default_rng(0).uniform(-1, 1, (1, c, h, w)).astype(np.float32)
    tmp = out.with_name(out.name + ".tmp")
    wrapper = _TupleOutputs(network).eval()  # the exporter gives the wrapper's mode to the whole tree
    # One thread: on cores that other processes load, PyTorch's two can take seconds a run.
    with torch.inference_mode(), torch_threads(1):
        torch.onnx.export(wrapper, (torch.from_numpy(probe),), str(tmp), input_names=[ONNX_INPUT],
                          output_names=wrapper.names, opset_version=17, dynamo=False)
        expected = TorchGraph(network)(probe)
    got = OnnxGraph(tmp)(probe)
    for name, want in expected.items():
        error = np.abs(got[name] - want).max() / max(np.abs(want).max(), 1e-6)
        if not error <= ONNX_TOLERANCE:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"ONNX export of {name} differs from PyTorch by {error:.2g} (relative)")
    tmp.replace(out)
    return out


def cached_onnx(weights: str | Path, outputs: Iterable[str] | None = None) -> Path:
    """The network's ONNX file in the cache, exported on first use (per weights content and
    outputs)."""
    digest = hashlib.sha1(Path(weights).read_bytes()).hexdigest()[:16]
    part = "" if outputs is None else "-" + "+".join(outputs)
    cached = paths.cache_dir() / "onnx" / f"{Path(weights).stem}{part}-{digest}-v{ONNX_EXPORT_VERSION}.onnx"
    return cached if cached.exists() else export_onnx(weights, cached, outputs)


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_network(weights: str | Path, backend: str = "auto",
                 outputs: Iterable[str] | None = None) -> TorchGraph | OnnxGraph:
    """The network in a file written by pare_demo.blazepose.convert, running only the ops of
    `outputs` (None: all). backend: "torch", "onnx", or "auto" (ONNX Runtime when installed
    and its export checks out, else PyTorch)."""
    outputs = None if outputs is None else tuple(outputs)
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} or 'auto', not {backend!r}")
    if backend == "torch" or (backend == "auto" and not onnx_available()):
        return TorchGraph(load_graph(weights, outputs))
    try:
        return OnnxGraph(cached_onnx(weights, outputs))
    except Exception:
        if backend == "onnx":
            raise
        return TorchGraph(load_graph(weights, outputs))  # an export that failed or disagreed: the reference
