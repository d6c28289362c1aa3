"""Export a PARE checkpoint to ONNX, and run the exported network with ONNX Runtime.

    python -m pare_demo.export_onnx --checkpoint C --out model.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pare_demo import paths
from pare_demo.checkpoints import CheckpointError
from pare_demo.models import PARE, PareOutput, load_model
from pare_demo.optimize import usable_cores

OUTPUTS = ("pose", "betas", "cam", "part_logits", "part_attention")


class _Outputs(nn.Module):
    """PARE with a tuple output (ONNX wants tensors, not a dataclass)."""

    def __init__(self, model: PARE):
        super().__init__()
        self.model = model

    def forward(self, images):
        out = self.model(images)
        return tuple(getattr(out, name) for name in OUTPUTS)


def export(model: PARE, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = model.config.input_size
    dummy = torch.zeros(1, 3, size, size)
    tmp = out.with_name(out.name + ".tmp")
    with torch.inference_mode():
        # The wrapper in eval mode too: the exporter restores the wrapper's mode to the whole
        # tree afterwards, which left the caller's network in training mode.
        torch.onnx.export(_Outputs(model.eval().cpu()).eval(), (dummy,), str(tmp), input_names=["images"],
                          output_names=list(OUTPUTS), dynamic_axes={"images": {0: "batch"}},
                          opset_version=17, dynamo=False)
    tmp.replace(out)
    return out


def onnx_session(onnx_path: str | Path, threads: int | None = None, cuda: bool = True):
    """An ONNX Runtime session with this project's settings; on CUDA when asked and available."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One stream of work split over the cores, one convolution after another (inter-op
    # threads would only compete with it). No spinning once a run ends: spinning threads
    # slowed the body model and rendering that follow by 5-8 ms on 2 cores.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or usable_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if cuda else ("CPUExecutionProvider",)
    providers = [p for p in wanted if p in ort.get_available_providers()]
    return ort.InferenceSession(str(onnx_path), options, providers=providers)


class OnnxNetwork:
    """Runs an exported network; returns a PareOutput (without features), as PARE does."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None):
        """threads: intra-op threads (default: the cores this process may use)."""
        self.session = onnx_session(onnx_path, threads)

    @classmethod
    def for_checkpoint(cls, model: PARE, checkpoint_path: Path) -> "OnnxNetwork":
        """Export once per checkpoint content into the cache, then load."""
        digest = hashlib.sha1(Path(checkpoint_path).read_bytes()).hexdigest()[:16]
        cached = paths.cache_dir() / "onnx" / f"{Path(checkpoint_path).stem}-{digest}.onnx"
        if not cached.exists():
            export(model, cached)
        return cls(cached)

    def __call__(self, images: torch.Tensor) -> PareOutput:
        array = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)  # a copy only if needed
        outs = self.session.run(list(OUTPUTS), {"images": array})
        return PareOutput(**{name: torch.from_numpy(o).to(images.device) for name, o in zip(OUTPUTS, outs)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a pare-demo checkpoint to ONNX")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled weights")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        print(export(load_model(args.checkpoint), args.out))
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
