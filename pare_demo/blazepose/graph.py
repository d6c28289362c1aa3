"""A TFLite graph run by PyTorch modules, built from a plain-data description.

`pare_demo.blazepose.convert` reads a `.tflite` file into a graph description (ops with
their options and tensor ids, every shape) and its constant tensors; this module turns
that description into PyTorch modules, so run time needs neither the `.tflite` file nor
the `tflite` package.

Layout: 4-D tensors live in PyTorch's NCHW order, all others in TFLite's own order; ops
whose meaning depends on the layout (reshape, concatenation) convert where needed.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "none": lambda x: x,
    "relu": F.relu,
    "relu6": lambda x: x.clamp(0.0, 6.0),
    "relu_n1_to_1": lambda x: x.clamp(-1.0, 1.0),
    "tanh": torch.tanh,
}
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


class GraphOp(nn.Module):
    """One op: reads the tensors named `inputs`, returns the tensor named `output`."""

    def __init__(self, spec: dict):
        super().__init__()
        self.inputs: list[int] = list(spec["inputs"])
        self.output: int = spec["output"]
        self.act = ACTIVATIONS[spec.get("act", "none")]


class Conv(GraphOp):
    """CONV_2D and DEPTHWISE_CONV_2D (groups = input channels). Symmetric padding is the
    convolution's own; TensorFlow's uneven SAME padding a separate pad first."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        left, right, top, bottom = spec["pad"]
        symmetric = left == right and top == bottom
        self.pad = (0, 0, 0, 0) if symmetric else (left, right, top, bottom)
        self.conv = nn.Conv2d(spec["in_channels"], spec["out_channels"], tuple(spec["kernel"]),
                              stride=tuple(spec["stride"]), dilation=tuple(spec["dilation"]),
                              groups=spec["groups"], bias=spec["bias"],
                              padding=(top, left) if symmetric else 0)

    def forward(self, x):
        if any(self.pad):
            x = F.pad(x, self.pad)
        return self.act(self.conv(x))


class Add(GraphOp):
    def forward(self, a, b):
        return self.act(a + b)


class Pad(GraphOp):
    def __init__(self, spec: dict):
        super().__init__(spec)
        self.pad = tuple(spec["pad"])

    def forward(self, x):
        return F.pad(x, self.pad)


class MaxPool(GraphOp):
    def __init__(self, spec: dict):
        super().__init__(spec)
        self.pad = tuple(spec["pad"])
        self.kernel, self.stride = tuple(spec["kernel"]), tuple(spec["stride"])

    def forward(self, x):
        if any(self.pad):  # TFLite's SAME max pool ignores the padding: pad with -inf
            x = F.pad(x, self.pad, value=float("-inf"))
        return self.act(F.max_pool2d(x, self.kernel, self.stride))


class ResizeBilinear(GraphOp):
    """Resizes by the graph's own ratio, so the network also runs on other input sizes
    (multiples of its total stride), e.g. the small probes of pare_demo.optimize."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.ratio = [o / i for o, i in zip(spec["size"], spec["input_size"])]
        self.align_corners = spec["align_corners"]
        if not (spec["half_pixel_centers"] or spec["align_corners"]):
            raise ValueError("RESIZE_BILINEAR without half-pixel centres or aligned corners is not supported")

    def forward(self, x):
        # A scale factor, not a size computed from x.shape: ONNX export traces it as a constant.
        return F.interpolate(x, scale_factor=self.ratio, mode="bilinear", align_corners=self.align_corners)


class DepthToSpace(GraphOp):
    """TFLite's order: output channel c of block (dy, dx) is input channel (dy * b + dx) * C + c."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.block = spec["block"]

    def forward(self, x):
        n, c, h, w = x.shape
        b = self.block
        x = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(n, c // (b * b), h * b, w * b)


class Reshape(GraphOp):
    def __init__(self, spec: dict):
        super().__init__(spec)
        self.shape = tuple(spec["shape"])

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.shape[1:])  # keep the batch free
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


class Concat(GraphOp):
    def __init__(self, spec: dict):
        super().__init__(spec)
        self.axis = spec["axis"]
        self.rank = spec["rank"]

    def forward(self, *xs):
        axis = self.axis % self.rank
        return self.act(torch.cat(xs, dim=NHWC_TO_NCHW_AXIS[axis] if self.rank == 4 else axis))


class Logistic(GraphOp):
    def forward(self, x):
        return torch.sigmoid(x)


OP_MODULES = {"conv": Conv, "add": Add, "pad": Pad, "max_pool": MaxPool, "resize_bilinear": ResizeBilinear,
              "depth_to_space": DepthToSpace, "reshape": Reshape, "concat": Concat, "logistic": Logistic}


def fold_pads(graph: dict) -> dict:
    """A copy of a graph description in which each PAD op of height and width only, read only
    by convolutions without padding of their own, is dropped and those convolutions pad
    instead: the same results, one copy of the tensor fewer (the TFLite graphs pad explicitly
    before their stride-2 convolutions)."""
    ops = copy.deepcopy(graph["ops"])
    readers = defaultdict(list)
    for spec in ops:
        for t in spec["inputs"]:
            readers[t].append(spec)
    graph_outputs = set(graph["outputs"].values())
    kept = []
    for spec in ops:
        convs = readers[spec["output"]]
        if (spec["op"] == "pad" and not any(spec["pad"][4:]) and spec["output"] not in graph_outputs and convs
                and all(r["op"] == "conv" and not any(r["pad"]) for r in convs)):
            for conv in convs:
                conv["inputs"] = [spec["inputs"][0] if t == spec["output"] else t for t in conv["inputs"]]
                conv["pad"] = list(spec["pad"][:4])  # left, right, top, bottom, as the pad's first four
            continue
        kept.append(spec)
    return {**graph, "ops": kept}


def needed_ops(graph: dict, output_ids: Iterable[int]) -> list[dict]:
    """The ops of a graph description that the tensors output_ids depend on, in graph order."""
    needed = set(output_ids)
    kept = []
    for spec in reversed(graph["ops"]):
        if spec["output"] in needed:
            kept.append(spec)
            needed.update(spec["inputs"])
    return kept[::-1]


class GraphNetwork(nn.Module):
    """The ops of a graph description that the named outputs need, in graph order.

    forward(image NCHW[, outputs]) -> {output name: tensor}, for all its outputs or the
    ones named (only their ops run); 4-D outputs are NCHW."""

    def __init__(self, graph: dict, outputs: Iterable[str] | None = None):
        super().__init__()
        self.input_id: int = graph["input"]
        self.input_shape = tuple(graph["shapes"][str(self.input_id)])  # NHWC, as in the file
        names = list(outputs) if outputs is not None else list(graph["outputs"])
        self.output_ids = {name: graph["outputs"][name] for name in names}
        graph = fold_pads(graph)
        # Named by their index in the whole graph, so a pruned network loads the same weights.
        shapes = graph["shapes"]
        kept = [dict(spec, input_size=shapes[str(spec["inputs"][0])][1:3])
                for spec in needed_ops(graph, self.output_ids.values())]
        self._ops_of_output = {name: {spec["index"] for spec in needed_ops(graph, [t])}
                               for name, t in self.output_ids.items()}
        self.ops = nn.ModuleDict((f"op{spec['index']}", OP_MODULES[spec["op"]](spec)) for spec in kept)
        self._op_indices = [spec["index"] for spec in kept]
        # Each tensor is dropped after its last reader, to keep memory low.
        last_use: dict[int, int] = {}
        for i, op in enumerate(self.ops.values()):
            for t in op.inputs:
                last_use[t] = i
        self._free_after = [[t for t in set(op.inputs) if last_use[t] == i and t not in self.output_ids.values()]
                            for i, op in enumerate(self.ops.values())]

    def forward(self, image: torch.Tensor, outputs: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        names = list(self.output_ids) if outputs is None else list(outputs)
        wanted = set().union(*(self._ops_of_output[name] for name in names))
        tensors = {self.input_id: image}
        for index, op, free in zip(self._op_indices, self.ops.values(), self._free_after):
            if index in wanted:
                tensors[op.output] = op(*(tensors[t] for t in op.inputs))
            for t in free:
                tensors.pop(t, None)
        return {name: tensors[self.output_ids[name]] for name in names}


def load_graph(path, outputs: Iterable[str] | None = None, dtype=torch.float32) -> GraphNetwork:
    """A GraphNetwork with its weights from a file written by pare_demo.blazepose.convert."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    network = GraphNetwork(data["graph"], outputs)
    weights = {k: v.to(dtype) for k, v in data["state_dict"].items()}
    network.load_state_dict(weights, strict=False)  # ops the outputs don't need are left out
    missing = [k for k in network.state_dict() if k not in weights]
    if missing:
        raise ValueError(f"{path}: no weights for {missing[:3]}")
    return network.eval()
