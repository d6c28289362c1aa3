"""Make an eval-mode network faster for inference without changing its results.

    network = optimize_for_inference(model, device)   # a folded copy; model is untouched
    out = network(images)                             # same PareOutput, within 1e-3 relative

What was measured on this project's 2-core CPU (pare_demo.benchmark has the figures):
- batch norm folded into the preceding convolution: always faster (one op fewer each);
- channels-last memory format: faster on CPU for all three backbones, so used there;
- torch.compile (inductor, with freezing) is not used: compiling took 35-100 s per
  network and input size, and the result was no faster than ONNX Runtime (hrnet_w32:
  168 vs 163 ms; mobilenetv3: 12.9 ms vs about 5 ms), the Predictor's default on CPU;
- threads: PyTorch's default (one per core) is kept for networks PyTorch runs (one
  thread was as fast for the small default network, half as fast for hrnet_w32). When
  ONNX Runtime runs the network on its own threads, PyTorch is left with small per-frame
  tensors (normalising crops, body model, camera): there one thread is as fast on an
  idle machine, and on a busy one two threads wait on each other at every operation
  (the webcam path took 164 instead of 43 ms with the training job running), so the
  Predictor uses `torch_threads(1)` around its work.
"""
from __future__ import annotations

import copy
import os
from contextlib import contextmanager

import torch
from torch import nn

CONVS = (nn.Conv2d, nn.ConvTranspose2d)
PROBE_SIZE = 64  # px: divisible by every backbone's stride (32)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def torch_threads(threads: int | None):
    """PyTorch's intra-op threads set to `threads` inside the block, then restored (None:
    unchanged). Process-wide: concurrent callers may see each other's setting."""
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[nn.Module, nn.Module]]:
    """(conv, bn) pairs where the batch norm's input is exactly its conv's unmodified
    output, found by running the model once on `example`."""
    produced: dict[int, tuple[nn.Module, torch.Tensor, int]] = {}
    calls: dict[nn.Module, int] = {}
    pairs: list[tuple[nn.Module, nn.Module]] = []

    def after_conv(conv, _inputs, output):
        calls[conv] = calls.get(conv, 0) + 1
        produced[id(output)] = (conv, output, output._version)  # keep output alive: ids stay unique

    def before_bn(bn, inputs):
        calls[bn] = calls.get(bn, 0) + 1
        found = produced.get(id(inputs[0]))
        # The version check rejects a conv output changed in place (an inplace ReLU) before the BN.
        if found is not None and found[1] is inputs[0] and found[2] == inputs[0]._version:
            pairs.append((found[0], bn))

    handles = []
    for module in model.modules():
        if isinstance(module, CONVS):
            handles.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(before_bn))
    try:
        with torch.no_grad():  # not inference_mode: version counters are needed
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    # A module run twice (shared weights) or a conv feeding two norms cannot be folded.
    convs = [conv for conv, _ in pairs]
    return [(c, b) for c, b in pairs if calls[c] == calls[b] == 1 and convs.count(c) == 1]


@torch.no_grad()
def _fold(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    """conv's weight and bias absorb bn's eval-mode affine map."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    if isinstance(conv, nn.ConvTranspose2d):  # weight (in, out, kh, kw)
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:                                     # weight (out, in / groups, kh, kw)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.bias = nn.Parameter(bias * scale + shift)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a folded norm: timm's BatchNormAct2d also holds dropout and activation."""
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None))
            if m is not None and not isinstance(m, nn.Identity)]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> int:
    """Fold every eval-mode BatchNorm2d that directly follows a convolution into it, in
    place; returns how many were folded. Assumes, as in conv-BN-activation networks, that
    such a conv's output feeds nothing but its norm (the tests check the results)."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    pairs = [(c, b) for c, b in _conv_bn_pairs(model, example) if b.track_running_stats
             and b.running_var is not None and (isinstance(c, nn.Conv2d) or c.groups == 1)]
    parents = {child: (parent, name) for parent in model.modules()
               for name, child in parent.named_children()}
    for conv, bn in pairs:
        _fold(conv, bn)
        parent, name = parents[bn]
        setattr(parent, name, _after_norm(bn))
    return len(pairs)


class OptimizedNetwork(nn.Module):
    """A folded copy of a PARE, run in inference mode (channels-last on CPU)."""

    def __init__(self, model: nn.Module, channels_last: bool):
        super().__init__()
        self.model = model
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, images: torch.Tensor):
        with torch.inference_mode():
            return self.model(images.contiguous(memory_format=self.memory_format))


def optimize_for_inference(model: nn.Module, device: str | torch.device = "cpu",
                           channels_last: bool | None = None) -> OptimizedNetwork:
    """A faster copy of an eval-mode network: batch norms folded, channels-last on CPU
    (channels_last=None)."""
    device = torch.device(device)
    net = copy.deepcopy(model).to(device).eval()
    # Which conv feeds which norm does not depend on the input size: probe with a small one.
    fold_batchnorm(net, torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, device=device))
    if channels_last is None:
        channels_last = device.type == "cpu"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return OptimizedNetwork(net, channels_last)
