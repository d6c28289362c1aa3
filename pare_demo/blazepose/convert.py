"""Convert MediaPipe's BlazePose `.tflite` networks into files PyTorch loads.

    python -m pare_demo.blazepose.convert                 # pip-downloads mediapipe 0.10.14
    python -m pare_demo.blazepose.convert --wheel mediapipe-0.10.14-...whl
    python -m pare_demo.blazepose.convert --tflite-dir folder/with/the/two/files
    python -m pare_demo.blazepose.convert --extract-to DIR   # only the .tflite files (for tests)

Writes assets/blazepose/{pose_detection,pose_landmark_full}.pt: the graph description
that pare_demo.blazepose.graph builds modules from, and the weights (the file's own
fp16 values). A developer tool: needs the `tflite` package; run time does not.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from pare_demo import paths

MEDIAPIPE_VERSION = "0.10.14"
WHEEL_MEMBERS = {"pose_detection": "mediapipe/modules/pose_detection/pose_detection.tflite",
                 "pose_landmark_full": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"}
LICENCE_MEMBER = f"mediapipe-{MEDIAPIPE_VERSION}.dist-info/LICENSE"
# Our names for the graphs' outputs (TFLite calls them Identity, Identity_1, ...).
OUTPUT_NAMES = {
    "pose_detection": {"Identity": "boxes", "Identity_1": "scores"},
    "pose_landmark_full": {"Identity": "landmarks", "Identity_1": "presence", "Identity_2": "segmentation",
                           "Identity_3": "heatmaps", "Identity_4": "world_landmarks"},
}
ACTIVATION_NAMES = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}
NUMPY_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


def _op_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options(op, cls):
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: the extra pixel, if any, goes after."""
    effective = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def densify(values: np.ndarray, shape: list[int], dims: list[tuple]) -> np.ndarray:
    """A sparse constant as a dense array. dims: per dimension in storage order, ("dense",)
    or ("csr", segments, indices): the elements of each parent element are
    indices[segments[p]:segments[p + 1]] along this dimension."""
    positions = np.zeros(1, dtype=np.int64)  # flat position of each element so far
    for size, dim in zip(shape, dims):
        if dim[0] == "dense":
            positions = (positions[:, None] * size + np.arange(size)).ravel()
        else:
            _, segments, indices = dim
            positions = np.repeat(positions, np.diff(segments)) * size + np.asarray(indices)
    dense = np.zeros(int(np.prod(shape)), dtype=values.dtype)
    dense[positions] = values
    return dense.reshape(shape)


def _sparse_dims(sparsity) -> list[tuple]:
    """densify's dims from a TFLite SparsityParameters table (no blocks, natural order)."""
    from tflite.Int32Vector import Int32Vector
    from tflite.SparseIndexVector import SparseIndexVector
    from tflite.Uint8Vector import Uint8Vector
    from tflite.Uint16Vector import Uint16Vector

    if sparsity.BlockMapLength():
        raise ValueError("block-sparse constants are not supported")
    order = list(sparsity.TraversalOrderAsNumpy())
    if order != list(range(len(order))):
        raise ValueError(f"traversal order {order} is not supported")
    vectors = {SparseIndexVector.Int32Vector: Int32Vector, SparseIndexVector.Uint16Vector: Uint16Vector,
               SparseIndexVector.Uint8Vector: Uint8Vector}

    def read(kind, table):
        vec = vectors[kind]()
        vec.Init(table.Bytes, table.Pos)
        return vec.ValuesAsNumpy().astype(np.int64)

    dims = []
    for level in range(sparsity.DimMetadataLength()):
        dim = sparsity.DimMetadata(level)
        dims.append(("dense",) if dim.Format() == 0 else
                    ("csr", read(dim.ArraySegmentsType(), dim.ArraySegments()),
                     read(dim.ArrayIndicesType(), dim.ArrayIndices())))
    return dims


def read_tflite(data: bytes, output_names: dict[str, str]) -> tuple[dict, dict[str, torch.Tensor]]:
    """A graph description (plain data) and its weights from a `.tflite` file's bytes."""
    import tflite

    names = _op_names()
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError("only single-subgraph models are supported")
    g = model.Subgraphs(0)
    shapes = {i: [int(v) for v in g.Tensors(i).ShapeAsNumpy()] if g.Tensors(i).ShapeLength() else []
              for i in range(g.TensorsLength())}
    constants: dict[int, np.ndarray] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        buf = model.Buffers(t.Buffer())
        if buf is not None and buf.DataLength():
            raw = buf.DataAsNumpy().tobytes()
            values = np.frombuffer(raw, dtype=NUMPY_TYPES[t.Type()])
            constants[i] = (densify(values, shapes[i], _sparse_dims(t.Sparsity())) if t.Sparsity() is not None
                            else values.reshape(shapes[i]))

    ops: list[dict] = []
    weights: dict[str, torch.Tensor] = {}
    for index in range(g.OperatorsLength()):
        op = g.Operators(index)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(v) for v in op.InputsAsNumpy()]
        out = int(op.Outputs(0))
        if kind == "DENSIFY":  # already dense: the constant passes through
            constants[out] = constants[ins[0]]
            continue
        if kind == "DEQUANTIZE":
            if ins[0] not in constants:
                raise ValueError(f"op {index}: DEQUANTIZE of a non-constant tensor is not supported")
            if constants[ins[0]].dtype != np.float16:
                raise ValueError(f"op {index}: only fp16 weights are supported")
            constants[out] = constants[ins[0]]  # kept at the file's precision
            continue
        spec = {"index": index, "output": out}
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            opts = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            w = constants[ins[1]]
            n, h, wd, c = shapes[ins[0]]
            if depthwise:   # (1, kh, kw, C * multiplier) -> (C * m, 1, kh, kw)
                weight = w.transpose(3, 0, 1, 2)
                in_ch, out_ch, groups = c, w.shape[3], c
            else:           # (O, kh, kw, I) -> (O, I, kh, kw)
                weight = w.transpose(0, 3, 1, 2)
                in_ch, out_ch, groups = c, w.shape[0], 1
            kh, kw = weight.shape[2:]
            stride = [opts.StrideH(), opts.StrideW()]
            dilation = [opts.DilationHFactor(), opts.DilationWFactor()]
            pad = [0, 0, 0, 0]
            if opts.Padding() == tflite.Padding.SAME:
                pad = [*_same_padding(wd, kw, stride[1], dilation[1]), *_same_padding(h, kh, stride[0], dilation[0])]
            has_bias = len(ins) > 2 and ins[2] >= 0
            spec.update(op="conv", inputs=[ins[0]], in_channels=in_ch, out_channels=int(out_ch),
                        kernel=[int(kh), int(kw)], stride=stride, dilation=dilation, groups=groups,
                        bias=has_bias, pad=pad, act=ACTIVATION_NAMES[opts.FusedActivationFunction()])
            weights[f"ops.op{index}.conv.weight"] = torch.from_numpy(weight.copy())
            if has_bias:
                weights[f"ops.op{index}.conv.bias"] = torch.from_numpy(constants[ins[2]].copy())
        elif kind == "ADD":
            opts = _options(op, tflite.AddOptions)
            spec.update(op="add", inputs=ins, act=ACTIVATION_NAMES[opts.FusedActivationFunction()])
        elif kind == "PAD":
            p = constants[ins[1]].astype(int)  # NHWC (before, after) rows
            if p[0].any():
                raise ValueError(f"op {index}: padding the batch is not supported")
            spec.update(op="pad", inputs=[ins[0]], pad=[int(v) for v in (*p[2], *p[1], *p[3])])
        elif kind == "MAX_POOL_2D":
            opts = _options(op, tflite.Pool2DOptions)
            n, h, wd, c = shapes[ins[0]]
            k = [opts.FilterHeight(), opts.FilterWidth()]
            s = [opts.StrideH(), opts.StrideW()]
            pad = [0, 0, 0, 0]
            if opts.Padding() == tflite.Padding.SAME:
                pad = [*_same_padding(wd, k[1], s[1], 1), *_same_padding(h, k[0], s[0], 1)]
            spec.update(op="max_pool", inputs=[ins[0]], kernel=k, stride=s, pad=pad,
                        act=ACTIVATION_NAMES[opts.FusedActivationFunction()])
        elif kind == "RESIZE_BILINEAR":
            opts = _options(op, tflite.ResizeBilinearOptions)
            spec.update(op="resize_bilinear", inputs=[ins[0]], size=shapes[out][1:3],
                        align_corners=bool(opts.AlignCorners()), half_pixel_centers=bool(opts.HalfPixelCenters()))
        elif kind == "DEPTH_TO_SPACE":
            opts = _options(op, tflite.DepthToSpaceOptions)
            spec.update(op="depth_to_space", inputs=[ins[0]], block=opts.BlockSize())
        elif kind == "RESHAPE":
            spec.update(op="reshape", inputs=[ins[0]], shape=shapes[out])
        elif kind == "CONCATENATION":
            opts = _options(op, tflite.ConcatenationOptions)
            spec.update(op="concat", inputs=ins, axis=opts.Axis(), rank=len(shapes[out]),
                        act=ACTIVATION_NAMES[opts.FusedActivationFunction()])
        elif kind == "LOGISTIC":
            spec.update(op="logistic", inputs=[ins[0]])
        else:
            raise ValueError(f"op {index}: {kind} is not supported")
        missing = [t for t in spec["inputs"] if t in constants]
        if missing:
            raise ValueError(f"op {index} ({kind}) reads constant tensors {missing} as data")
        ops.append(spec)

    outputs = {}
    for i in range(g.OutputsLength()):
        t = int(g.Outputs(i))
        outputs[output_names.get(g.Tensors(t).Name().decode(), g.Tensors(t).Name().decode())] = t
    # The inputs of the heads, as feature maps for other networks to read.
    producers = {spec["output"]: spec for spec in ops}
    if "heatmaps" in outputs:
        outputs["decoder_features"] = producers[outputs["heatmaps"]]["inputs"][0]
    if "landmarks" in outputs:
        reshape = producers[outputs["landmarks"]]
        outputs["regression_features"] = producers[reshape["inputs"][0]]["inputs"][0]
    graph = {"input": int(g.Inputs(0)), "outputs": outputs, "ops": ops,
             "shapes": {str(k): v for k, v in shapes.items()}}
    return graph, weights


def convert(tflite_path: Path, name: str, out_dir: Path) -> Path:
    data = tflite_path.read_bytes()
    graph, weights = read_tflite(data, OUTPUT_NAMES[name])
    out = out_dir / f"{name}.pt"
    torch.save({"graph": graph, "state_dict": weights,
                "source": {"file": tflite_path.name, "mediapipe": MEDIAPIPE_VERSION,
                           "sha256": hashlib.sha256(data).hexdigest(), "licence": "Apache-2.0"}}, out)
    return out


def download_wheel(folder: Path) -> Path:
    """mediapipe's wheel for this Python, from the package index (the wheel only: no install)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                    f"mediapipe=={MEDIAPIPE_VERSION}"], check=True)
    return next(folder.glob("mediapipe-*.whl"))


def extract_from_wheel(wheel: Path, folder: Path) -> dict[str, Path]:
    """The two networks and the licence, extracted from a mediapipe wheel into folder."""
    found = {}
    with zipfile.ZipFile(wheel) as zf:
        for name, member in {**WHEEL_MEMBERS, "LICENSE": LICENCE_MEMBER}.items():
            target = folder / Path(member).name
            target.write_bytes(zf.read(member))
            found[name] = target
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", type=Path, help="a downloaded mediapipe 0.10.14 wheel")
    source.add_argument("--tflite-dir", type=Path, help="a folder holding the two .tflite files")
    parser.add_argument("--out", type=Path, default=paths.BLAZEPOSE_DIR)
    parser.add_argument("--extract-to", type=Path,
                        help="only extract the .tflite files and the licence from the wheel into this folder")
    args = parser.parse_args(argv)
    if args.extract_to:
        args.extract_to.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            files = extract_from_wheel(args.wheel or download_wheel(Path(tmp)), args.extract_to)
        print(f"extracted {', '.join(p.name for p in files.values())} into {args.extract_to}")
        return 0
    try:
        import tflite  # noqa: F401
    except ImportError:
        print("The converter needs the `tflite` package: pip install tflite", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.tflite_dir:
            files = {name: args.tflite_dir / Path(member).name for name, member in WHEEL_MEMBERS.items()}
            missing = [str(p) for p in files.values() if not p.is_file()]
            if missing:
                print(f"Not found: {', '.join(missing)}", file=sys.stderr)
                return 1
        else:
            wheel = args.wheel or download_wheel(tmp)
            files = extract_from_wheel(wheel, tmp)
            (args.out / "LICENSE").write_bytes(files.pop("LICENSE").read_bytes())
        for name in WHEEL_MEMBERS:
            print(f"wrote {convert(files[name], name, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
