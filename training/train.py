"""Train PARE with PyTorch Lightning.

    python -m training.train --config training/configs/NAME.yaml [key=value ...]
                             [--resume] [--resume-best --lr 5e-5]

`key=value` overrides any config entry by its dotted path (train.epochs=5). Runs write
to train.run_dir (outside the repository): TensorBoard logs, the best train.top_k
checkpoints by validation PA-MPJPE plus last.ckpt (written atomically by Lightning), and
best.pt, the best weights as a pare-demo checkpoint the app and Predictor load.
--resume continues an interrupted run from last.ckpt with nothing lost; --resume-best
starts a second phase from the best checkpoint (the study: lr 5e-4, then 5e-5).
--init CHECKPOINT starts phase 1 from a pare-demo checkpoint's weights (fine-tuning the
bundled weights on new data, say). train.lr_schedule: cosine decays the learning rate
from train.lr to train.min_lr over the run instead of keeping it constant.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from torch.utils.data import ConcatDataset, DataLoader, WeightedRandomSampler

from pare_demo.checkpoints import save_checkpoint
from pare_demo.models import default_config
from training.datasets import NO_AUGMENTATION, Augmentation, CropDataset


# ---------------------------------------------------------------- config
class ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-6 (an exponent without a dot) as a string; configs and key=value
    overrides mean a number, so it is read as a float, as YAML 1.2 does."""


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                                   list("-+0123456789"))


def load_config(path: str | Path, overrides: list[str]) -> dict:
    config = yaml.load(Path(path).read_text(), Loader=ConfigLoader)
    for item in overrides:
        key, _, value = item.partition("=")
        if not _:
            raise SystemExit(f"override {item!r} is not key=value")
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.load(value, Loader=ConfigLoader)
    return config


def model_config(config: dict) -> dict:
    m = dict(config["model"])
    base = default_config(m.pop("backbone"), **m.pop("head", {}))
    return {**base.to_dict(), **m}


# ---------------------------------------------------------------- data
def read_source(source: dict, split: str):
    kind, root = source["kind"], Path(source["root"]).expanduser()
    if kind in ("pw3d", "synthetic"):
        from pare_demo.data.pw3d import read_pw3d

        return read_pw3d(root, split, every=source.get("every", 1))
    if kind == "mpii":
        if split != "train":
            return []
        from pare_demo.data.mpii import read_mpii

        return read_mpii(root)
    raise SystemExit(f"unknown data source kind {kind!r}")


def build_loaders(config: dict) -> tuple[DataLoader, DataLoader]:
    data, train = config["data"], config["train"]
    network = model_config(config)
    size, norm = network["input_size"], {"mean": network["mean"], "std": network["std"]}
    augment = Augmentation(**config.get("augment", {}))
    parts, weights = [], []
    for source in data["sources"]:
        samples = read_source(source, "train")
        if samples:
            parts.append(CropDataset(samples, size, augment, seed=train.get("seed", 0), **norm))
            weights.append(np.full(len(samples), source.get("weight", 1.0) / len(samples)))
    if not parts:
        raise SystemExit("no training samples found: check data.sources in the config")
    train_set = ConcatDataset(parts)
    per_epoch = train.get("samples_per_epoch") or len(train_set)
    sampler = WeightedRandomSampler(torch.from_numpy(np.concatenate(weights)), per_epoch,
                                    generator=torch.Generator().manual_seed(train.get("seed", 0)))
    val_samples = []
    for source in data["sources"]:
        # A source may be train-only (`validation: false`), e.g. an extra synthetic set;
        # MPII always is (read_source gives it no other split).
        if source.get("validation", True):
            val_samples += read_source(source, data.get("val_split", "validation"))
    limit = data.get("val_limit")
    if limit and len(val_samples) > limit:
        keep = np.linspace(0, len(val_samples) - 1, limit).round().astype(int)
        val_samples = [val_samples[i] for i in keep]
    workers = train.get("workers", 1)
    loader = dict(batch_size=train["batch_size"], num_workers=workers, persistent_workers=False,
                  pin_memory=torch.cuda.is_available())
    return (DataLoader(train_set, sampler=sampler, drop_last=True, **loader),
            DataLoader(CropDataset(val_samples, size, NO_AUGMENTATION, **norm), shuffle=False, **loader))


class EpochSeed(L.Callback):
    """Tell the datasets the epoch, so augmentation differs per epoch and stays reproducible."""

    def on_train_epoch_start(self, trainer, module):
        for ds in trainer.train_dataloader.dataset.datasets:
            ds.epoch = trainer.current_epoch


# ---------------------------------------------------------------- run
SCORE = re.compile(r"pa_mpjpe(\d+(?:\.\d+)?)\.ckpt$")
PHOTO_SCORE = re.compile(r"^photo-.*pck(\d+(?:\.\d+)?)\.ckpt$")  # kept by data.photos, higher is better


def best_checkpoint(run_dir: Path, phases: str = "phase*", score=SCORE, lowest: bool = True) -> tuple[Path, float]:
    """The kept Lightning checkpoint with the best score in its file name (by default the
    lowest validation PA-MPJPE), so an interrupted run that never reached its end still has
    a best."""
    scored = [(float(m.group(1)), p) for p in run_dir.glob(f"{phases}/checkpoints/*.ckpt")
              if (m := score.search(p.name))]
    if not scored:
        raise SystemExit(f"no scored checkpoints under {run_dir}/{phases}/checkpoints")
    value, path = min(scored) if lowest else max(scored)
    return path, value


def export_best(run_dir: Path, checkpoint_path: str | Path, model_cfg: dict, metrics: dict,
                extra_meta: dict | None = None, out: Path | None = None) -> Path:
    """The Lightning checkpoint's network weights as a pare-demo checkpoint at out (default
    run_dir/best.pt, which training writes at its end). Its meta says where it came from (run,
    phase, file) and after how many training steps, plus extra_meta (held-out test results, say)."""
    checkpoint_path = Path(checkpoint_path)
    lightning = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    weights = {k[len("model."):]: v for k, v in lightning["state_dict"].items() if k.startswith("model.")}
    source = f"{run_dir.name}/{checkpoint_path.parent.parent.name}/{checkpoint_path.name}"
    return save_checkpoint(out or run_dir / "best.pt", model_cfg, weights,
                           {"source": source, "step": int(lightning["global_step"]),
                            **{k: float(v) for k, v in metrics.items()}, **(extra_meta or {})})


# Branches that start at zero, so weights trained without them still mean the same.
ADDED_BRANCHES = ("head.skeleton_mlp.",)


def init_weights(module, path: Path) -> None:
    """Load a pare-demo checkpoint's network weights into the module; its architecture
    must be the config's, except that the config may add a zero-started branch."""
    from pare_demo.checkpoints import CheckpointError, load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
        missing, unexpected = module.model.load_state_dict(checkpoint["state_dict"], strict=False)
    except (CheckpointError, OSError, RuntimeError) as error:
        raise SystemExit(f"--init {path}: {error}") from None
    # Weights the backbone brings itself (pare_demo.models.backbones.Backbone.builtin_keys).
    missing = [k for k in missing if k.removeprefix("backbone.") not in module.model.backbone.builtin_keys]
    added = [k for k in missing if k.startswith(ADDED_BRANCHES)]
    if unexpected or len(added) < len(missing):
        raise SystemExit(f"--init {path}: the checkpoint does not fit the config's network: "
                         f"missing keys {[k for k in missing if k not in added][:3]}, unexpected keys {unexpected[:3]}")
    print(f"phase 1 starts from {path} ({checkpoint['meta'].get('source', 'weights')})"
          + (f"; new branches start at zero: {sorted({k.rsplit('.', 2)[0] for k in added})}" if added else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoints/last.ckpt")
    parser.add_argument("--resume-best", action="store_true", help="new phase from the best checkpoint")
    parser.add_argument("--init", type=Path, help="start from this pare-demo checkpoint's weights")
    parser.add_argument("--lr", type=float, default=None)
    args = parser.parse_intermixed_args(argv)  # key=value overrides may follow the options
    if args.init and args.resume_best:
        parser.error("--init starts phase 1; --resume-best starts phase 2 from phase 1: choose one")

    from training.module import PareTraining

    config = load_config(args.config, args.overrides)
    train = config["train"]
    if args.lr is not None:
        train["lr"] = args.lr
    L.seed_everything(train.get("seed", 0), workers=True)
    torch.set_num_threads(train.get("threads", torch.get_num_threads()))
    run_dir = Path(train["run_dir"]).expanduser()
    phase = "phase2" if args.resume_best else "phase1"
    ckpt_dir = run_dir / phase / "checkpoints"
    train_loader, val_loader = build_loaders(config)
    model_cfg = model_config(config)
    module = PareTraining(model_cfg, lr=train["lr"], weight_decay=train.get("weight_decay", 0.0),
                          loss_weights=config.get("loss"), lr_schedule=train.get("lr_schedule", "constant"),
                          min_lr=train.get("min_lr", 0.0), backbone_lr_scale=train.get("backbone_lr_scale", 1.0))
    if args.init and not (args.resume and (ckpt_dir / "last.ckpt").exists()):
        init_weights(module, args.init)
    if args.resume_best:
        best, score = best_checkpoint(run_dir, "phase1")
        print(f"phase 2 starts from {best.name} (validation PA-MPJPE {score:.1f} mm)")
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)

    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, monitor="val/pa_mpjpe", mode="min", save_top_k=train.get("top_k", 30),
        filename="epoch{epoch:03d}-pa_mpjpe{val/pa_mpjpe:.2f}", auto_insert_metric_name=False)
    # last.ckpt, for --resume, from a callback of its own: Lightning 2.6's save_last writes it
    # only in epochs that also kept a top-k checkpoint, so it went stale after an epoch that
    # did not improve and a resume would have repeated those epochs.
    latest = L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                                                 enable_version_counter=False)
    callbacks = [checkpoints, latest, EpochSeed(), L.pytorch.callbacks.LearningRateMonitor()]
    photos = config["data"].get("photos")
    if photos:
        from training.photo_validation import PhotoValidation

        # The real-photo dev set scored after each validation; its best few are kept too.
        callbacks.insert(0, PhotoValidation(photos, model_cfg))
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir, monitor="val/photo_pck", mode="max", save_top_k=train.get("top_k", 30),
            filename="photo-epoch{epoch:03d}-pck{val/photo_pck:.3f}", auto_insert_metric_name=False))
    gpus = torch.cuda.device_count()
    trainer = L.Trainer(
        default_root_dir=run_dir, max_epochs=train["epochs"],
        accelerator="gpu" if gpus else "cpu", devices=gpus or 1,
        strategy="ddp" if gpus > 1 else "auto",
        precision="16-mixed" if gpus else "32-true",
        callbacks=callbacks,
        logger=L.pytorch.loggers.TensorBoardLogger(run_dir, name=phase),
        log_every_n_steps=train.get("log_every", 10), limit_train_batches=train.get("limit_train_batches"),
        num_sanity_val_steps=0, deterministic=False, enable_progress_bar=True)
    last = ckpt_dir / "last.ckpt"
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if args.resume and last.exists() else None)

    if trainer.is_global_zero and checkpoints.best_model_path:
        best_metrics = {"val_pa_mpjpe_mm": checkpoints.best_model_score}
        print(f"best: {checkpoints.best_model_path} (val PA-MPJPE {float(checkpoints.best_model_score):.1f} mm)")
        print(export_best(run_dir, checkpoints.best_model_path, model_cfg, best_metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
