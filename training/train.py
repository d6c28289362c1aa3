"""Train PARE with PyTorch Lightning.

    python -m training.train --config training/configs/NAME.yaml [key=value ...]
                             [--resume] [--resume-best --lr 5e-5] [--init CHECKPOINT]

The config's sections and keys are dataclasses in training/config.py (docs/training.md):
an unknown key or a value of the wrong type is refused, naming its dotted path.
`key=value` overrides any config entry by its dotted path (train.epochs=5), checked the
same way. Runs write to train.run_dir (outside the repository): TensorBoard logs, the best
train.top_k checkpoints by validation PA-MPJPE plus last.ckpt (written atomically by
Lightning), and best.pt, the best weights as a pare-demo checkpoint the app and Predictor
load. --resume continues an interrupted run from last.ckpt with nothing lost;
--resume-best starts a second phase from the best checkpoint (the study: lr 5e-4, then
5e-5). --init CHECKPOINT starts phase 1 from a pare-demo checkpoint's weights (fine-tuning
the bundled weights on new data, say), as the config's train.init does (the flag wins).
train.lr_schedule: cosine decays the learning rate from train.lr to train.min_lr over the
run instead of keeping it constant. A config or command line that cannot run ends with
one line, `error: ...`, and exit status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, WeightedRandomSampler

from pare_demo.body import BodyModelError
from pare_demo.checkpoints import save_checkpoint
from training.config import ConfigError, Source, TrainingConfig, load_config
from training.datasets import NO_AUGMENTATION, CropDataset


# ---------------------------------------------------------------- data
def read_source(source: Source, split: str):
    root = Path(source.root).expanduser()
    if source.kind in ("pw3d", "synthetic"):
        from pare_demo.data.pw3d import read_pw3d

        return read_pw3d(root, split, every=source.every)
    if source.kind == "mpii":
        if split != "train":
            return []
        from pare_demo.data.mpii import read_mpii

        return read_mpii(root)
    raise ConfigError(f"unknown data source kind {source.kind!r}")


def build_loaders(config: TrainingConfig) -> tuple[DataLoader, DataLoader]:
    data, train = config.data, config.train
    network = config.network()
    size, norm = network["input_size"], {"mean": network["mean"], "std": network["std"]}
    parts, weights = [], []
    for source in data.sources:
        samples = read_source(source, "train")
        if samples:
            parts.append(CropDataset(samples, size, config.augment, seed=train.seed, **norm))
            weights.append(np.full(len(samples), source.weight / len(samples)))
    if not parts:
        raise ConfigError("no training samples found: check data.sources in the config")
    train_set = ConcatDataset(parts)
    per_epoch = train.samples_per_epoch or len(train_set)
    sampler = WeightedRandomSampler(torch.from_numpy(np.concatenate(weights)), per_epoch,
                                    generator=torch.Generator().manual_seed(train.seed))
    val_samples = []
    for source in data.sources:
        # A source may be train-only (`validation: false`), e.g. an extra synthetic set;
        # MPII always is (read_source gives it no other split).
        if source.validation:
            val_samples += read_source(source, data.val_split)
    limit = data.val_limit
    if limit and len(val_samples) > limit:
        keep = np.linspace(0, len(val_samples) - 1, limit).round().astype(int)
        val_samples = [val_samples[i] for i in keep]
    loader = dict(batch_size=train.batch_size, num_workers=train.workers, persistent_workers=False,
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
        raise FileNotFoundError(f"no scored checkpoints under {run_dir}/{phases}/checkpoints")
    value, path = min(scored) if lowest else max(scored)
    return path, value


def export_best(run_dir: Path, checkpoint_path: str | Path, model_cfg: dict, metrics: dict,
                extra_meta: dict | None = None, out: Path | None = None) -> Path:
    """The Lightning checkpoint's network weights as a pare-demo checkpoint at out (default
    run_dir/best.pt, which training writes at its end). Its meta says where it came from (run,
    phase, file) and after how many training steps, plus extra_meta (held-out test results, say)."""
    from pare_demo.models import PARE, ModelConfig

    checkpoint_path = Path(checkpoint_path)
    lightning = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    weights = {k[len("model."):]: v for k, v in lightning["state_dict"].items() if k.startswith("model.")}
    # Runs from before the landmark regressor left the BlazePose trunk carry its weights.
    legacy = {f"backbone.{k}" for k in PARE(ModelConfig.from_dict(model_cfg)).backbone.legacy_keys}
    weights = {k: v for k, v in weights.items() if k not in legacy}
    source = f"{run_dir.name}/{checkpoint_path.parent.parent.name}/{checkpoint_path.name}"
    return save_checkpoint(out or run_dir / "best.pt", model_cfg, weights,
                           {"source": source, "step": int(lightning["global_step"]),
                            **{k: float(v) for k, v in metrics.items()}, **(extra_meta or {})})


# Branches that start at zero, so weights trained without them still mean the same.
ADDED_BRANCHES = ("head.skeleton_mlp.",)


def init_weights(module, path: Path, what: str = "--init") -> None:
    """Load a pare-demo checkpoint's network weights into the module; its architecture
    must be the config's, except that the config may add a zero-started branch. what: where
    the path came from (--init or train.init), for the error message."""
    from pare_demo.checkpoints import CheckpointError, load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
        missing, unexpected = module.model.load_weights(checkpoint["state_dict"])
    except (CheckpointError, OSError, RuntimeError) as error:
        raise ConfigError(f"{what} {path}: {' '.join(str(error).split())}") from None
    added = [k for k in missing if k.startswith(ADDED_BRANCHES)]
    if unexpected or len(added) < len(missing):
        raise ConfigError(f"{what} {path}: the checkpoint does not fit the config's network: "
                          f"missing keys {[k for k in missing if k not in added][:3]}, unexpected keys {unexpected[:3]}")
    print(f"phase 1 starts from {path} ({checkpoint['meta'].get('source', 'weights')})"
          + (f"; new branches start at zero: {sorted({k.rsplit('.', 2)[0] for k in added})}" if added else ""))


def starting_weights(config: TrainingConfig, init: Path | None, phase: str) -> tuple[Path, str] | None:
    """The checkpoint phase 1 starts from and where that was said: the --init flag (init),
    else the config's train.init. None for phase 2, which starts from phase 1's best."""
    if phase == "phase2":
        if init is not None:
            raise ConfigError("--init starts phase 1; --resume-best starts phase 2 from phase 1: choose one")
        return None
    if init is not None:
        return init, "--init"
    if config.train.init_path is not None:
        return config.train.init_path, "train.init"
    return None


def run(config: TrainingConfig, phase: str = "phase1", resume: bool = False, init: Path | None = None) -> None:
    """Run one phase: phase1 from the network's own start, or from the weights of init (the
    --init flag) or else of train.init; phase2 from phase 1's best kept checkpoint. resume:
    continue this phase from its last.ckpt where there is one."""
    from training.module import PareTraining

    train = config.train
    run_dir = train.run_path
    ckpt_dir = run_dir / phase / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume_from = last if resume and last.exists() else None
    # Resumed, the run's own weights (and its optimizer's state) go on.
    start = None if resume_from else starting_weights(config, init, phase)
    if start and not start[0].is_file():
        raise ConfigError(f"{start[1]} {start[0]}: no such file")
    L.seed_everything(train.seed, workers=True)
    if train.threads:
        torch.set_num_threads(train.threads)
    train_loader, val_loader = build_loaders(config)
    model_cfg = config.network()
    module = PareTraining(model_cfg, lr=train.lr, weight_decay=train.weight_decay,
                          loss_weights=dataclasses.asdict(config.loss), lr_schedule=train.lr_schedule,
                          min_lr=train.min_lr, backbone_lr_scale=train.backbone_lr_scale)
    if start:
        init_weights(module, *start)
    if phase == "phase2":
        best, score = best_checkpoint(run_dir, "phase1")
        print(f"phase 2 starts from {best.name} (validation PA-MPJPE {score:.1f} mm)")
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)

    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, monitor="val/pa_mpjpe", mode="min", save_top_k=train.top_k,
        filename="epoch{epoch:03d}-pa_mpjpe{val/pa_mpjpe:.2f}", auto_insert_metric_name=False)
    # last.ckpt, for --resume, from a callback of its own: Lightning 2.6's save_last writes it
    # only in epochs that also kept a top-k checkpoint, so it went stale after an epoch that
    # did not improve and a resume would have repeated those epochs.
    latest = L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                                                 enable_version_counter=False)
    callbacks = [checkpoints, latest, EpochSeed(), L.pytorch.callbacks.LearningRateMonitor()]
    if config.data.photos:
        from training.photo_validation import PhotoValidation

        # The real-photo dev set scored after each validation; its best few are kept too.
        callbacks.insert(0, PhotoValidation(config.data.photos, model_cfg))
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir, monitor="val/photo_pck", mode="max", save_top_k=train.top_k,
            filename="photo-epoch{epoch:03d}-pck{val/photo_pck:.3f}", auto_insert_metric_name=False))
    gpus = torch.cuda.device_count()
    trainer = L.Trainer(
        default_root_dir=run_dir, max_epochs=train.epochs,
        accelerator="gpu" if gpus else "cpu", devices=gpus or 1,
        strategy="ddp" if gpus > 1 else "auto",
        precision="16-mixed" if gpus else "32-true",
        callbacks=callbacks,
        logger=L.pytorch.loggers.TensorBoardLogger(run_dir, name=phase),
        log_every_n_steps=train.log_every, limit_train_batches=train.limit_train_batches,
        num_sanity_val_steps=0, deterministic=False, enable_progress_bar=True)
    trainer.fit(module, train_loader, val_loader, ckpt_path=resume_from)

    if trainer.is_global_zero and checkpoints.best_model_path:
        best_metrics = {"val_pa_mpjpe_mm": checkpoints.best_model_score}
        print(f"best: {checkpoints.best_model_path} (val PA-MPJPE {float(checkpoints.best_model_score):.1f} mm)")
        print(export_best(run_dir, checkpoints.best_model_path, model_cfg, best_metrics))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoints/last.ckpt")
    parser.add_argument("--resume-best", action="store_true", help="new phase from the best checkpoint")
    parser.add_argument("--init", type=Path, help="start from this pare-demo checkpoint's weights (over train.init)")
    parser.add_argument("--lr", type=float, default=None, help="over train.lr")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may follow the options
    try:
        config = load_config(args.config, args.overrides)
        if args.lr is not None:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, lr=args.lr))
        run(config, "phase2" if args.resume_best else "phase1", args.resume, args.init)
    except (ConfigError, FileNotFoundError, BodyModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
