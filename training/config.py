"""The training config: a YAML file of five sections, read into frozen dataclasses that
refuse what they do not know, as pare_demo.models.ModelConfig does.

    model:   the network: backbone (required) and ModelConfig's other keys (head, input_size,
             mean, std, body_model), over default_config(backbone)'s; kept as a mapping
    data:    DataSection: sources (each a Source), val_split, val_limit, photos
    augment: training.datasets.Augmentation
    loss:    training.losses.LossWeights
    train:   TrainSection: run_dir, batch_size, lr, epochs (required) and the optional rest

`key=value` overrides set any entry by its dotted path (train.epochs=5), their values read
as YAML. An unknown key at any level, a missing required key or a value of the wrong type
is a ConfigError that names the dotted path. Each default lives in its dataclass field.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pare_demo.models import ModelConfig, default_config
from pare_demo.models.backbones import BACKBONES
from training.datasets import Augmentation
from training.losses import LossWeights

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A training config, or a command line, that cannot be run; the message says where."""


def _choice(*allowed: str, **kwargs):
    """A field that takes one of `allowed`, checked when the config is read."""
    return field(metadata={"choices": allowed}, **kwargs)


# ---------------------------------------------------------------- sections
@dataclass(frozen=True, kw_only=True)
class Source:
    """One training set: pw3d and synthetic are read in 3DPW's layout; mpii (2D joints only)
    trains and is never validated on."""
    kind: str = _choice("pw3d", "synthetic", "mpii")
    root: str                 # its folder, ~ expanded
    weight: float = 1.0       # its share of the samples drawn: weight over all sources' weights
    every: int = 1            # every n-th frame of its sequences (pw3d, synthetic)
    validation: bool = True   # false: a train-only set (it has no val_split)


@dataclass(frozen=True, kw_only=True)
class DataSection:
    sources: list[Source]
    val_split: str = "validation"
    val_limit: int | None = None   # validate on at most this many samples, evenly spread
    photos: str | None = None      # COCO keypoint annotations scored after each validation, never trained on


@dataclass(frozen=True, kw_only=True)
class TrainSection:
    run_dir: str                    # the run's folder, ~ expanded: logs, checkpoints, best.pt
    batch_size: int
    lr: float                       # --lr replaces it
    epochs: int
    # Phase 1 starts from this pare-demo checkpoint's weights, as --init does (the flag wins):
    # ~ expanded, a relative path from the repository's root.
    init: str | None = None
    lr_schedule: str = _choice("constant", "cosine", default="constant")  # cosine: lr down to min_lr over the run
    min_lr: float = 0.0
    backbone_lr_scale: float = 1.0  # the backbone's lr relative to lr; 0 freezes it
    weight_decay: float = 0.0
    samples_per_epoch: int | None = None  # None: the training set's size
    top_k: int = 30                 # checkpoints kept by validation PA-MPJPE (and by photo PCK)
    workers: int = 1                # data loader processes
    threads: int | None = None      # PyTorch threads; None: PyTorch's default
    seed: int = 0
    log_every: int = 10             # steps between logged training losses
    limit_train_batches: int | float | None = None  # Lightning's: batches (int) or share (float) per epoch

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir).expanduser()

    @property
    def init_path(self) -> Path | None:
        return None if self.init is None else REPO_ROOT / Path(self.init).expanduser()


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    model: dict   # checked against ModelConfig and HeadConfig, kept as written
    data: DataSection
    train: TrainSection
    augment: Augmentation = field(default_factory=Augmentation)
    loss: LossWeights = field(default_factory=LossWeights)

    @classmethod
    def from_dict(cls, data: Mapping) -> "TrainingConfig":
        """The config from its plain-data form (YAML's); ConfigError for anything it does not know."""
        config = _build(cls, data, "")
        _check_model(config.model)
        return config

    def network(self) -> dict:
        """The network's ModelConfig as a dict: default_config(backbone, **head) with the
        model section's other keys over it."""
        model = dict(self.model)
        base = default_config(model.pop("backbone"), **model.pop("head", None) or {})
        return {**base.to_dict(), **model}


# ---------------------------------------------------------------- reading
class ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-6 (an exponent without a dot) as a string; configs and key=value
    overrides mean a number, so it is read as a float, as YAML 1.2 does."""


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                                   list("-+0123456789"))


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> TrainingConfig:
    """The YAML file at path with the key=value overrides applied, checked."""
    try:
        raw = yaml.load(Path(path).read_text(), Loader=ConfigLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {_yaml_problem(error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a training config is a mapping of sections (model, data, train, ...)")
    try:
        return TrainingConfig.from_dict(apply_overrides(raw, overrides))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
    """Set each key=value (a dotted path, a YAML value) in the plain config, in place."""
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        *parents, leaf = key.split(".")
        node = raw
        for depth, part in enumerate(parents):
            if node.get(part) is None:  # absent, or an empty section in the file
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parents[:depth + 1])} is not a section")
        try:
            node[leaf] = yaml.load(value, Loader=ConfigLoader)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: {_yaml_problem(error)}") from None
    return raw


def _yaml_problem(error: yaml.YAMLError) -> str:
    """YAML's error on one line: the problem and where."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


# ---------------------------------------------------------------- checking
def _dotted(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _build(cls, data, path: str):
    """cls (a dataclass) from a mapping, each value checked against its field's type."""
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    if data is None:  # an empty section: its defaults
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'the config'} must be a mapping with keys {', '.join(names)}, not {data!r}")
    for key in data:
        if key not in names:
            raise ConfigError(f"{_dotted(path, key)} is not a training config key; known: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields:
        where = _dotted(path, f.name)
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where} is missing")
            continue
        value = _convert(hints[f.name], data[f.name], where)
        allowed = f.metadata.get("choices")
        if allowed and value not in allowed:
            raise ConfigError(f"{where} is {value!r}: use {' or '.join(allowed)}")
        values[f.name] = value
    return cls(**values)


def _convert(tp, value, path: str):
    """value as type tp (ints become floats where a float is meant), or a ConfigError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, path)
            except ConfigError:
                pass
    elif dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    elif origin is list and isinstance(value, list):
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    elif origin is tuple and isinstance(value, (list, tuple)):
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(kinds) == len(value):
            return tuple(_convert(k, v, f"{path}[{i}]") for i, (k, v) in enumerate(zip(kinds, value)))
    elif tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif tp in (int, str, bool) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    elif tp is dict and isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"{path} must be {_describe(tp)}, not {value!r}")


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return "a list"
    if origin is tuple:
        return "a list of numbers" if args[-1] is Ellipsis else f"a list of {len(args)} numbers"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, "a mapping")


def _check_model(model: dict) -> None:
    """The model section against ModelConfig's (and HeadConfig's) keys and types."""
    if "backbone" not in model:
        raise ConfigError("model.backbone is missing")
    _build(ModelConfig, model, "model")
    if model["backbone"] not in BACKBONES:
        raise ConfigError(f"model.backbone is {model['backbone']!r}: use {' or '.join(sorted(BACKBONES))}")
