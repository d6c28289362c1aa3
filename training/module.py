"""The Lightning module: PARE + body model, the study's loss, 3DPW metrics on validation."""
from __future__ import annotations

import lightning as L
import torch

from pare_demo import metrics
from pare_demo.body import load_body_model
from pare_demo.models import PARE, ModelConfig
from pare_demo.models.backbones import build_backbone
from training.losses import LossWeights, pare_loss


class PareTraining(L.LightningModule):
    def __init__(self, model_config: dict, lr: float = 5e-4, weight_decay: float = 0.0,
                 loss_weights: dict | None = None, lr_schedule: str = "constant", min_lr: float = 0.0,
                 backbone_lr_scale: float = 1.0):
        """backbone_lr_scale: the backbone's learning rate relative to lr; 0 freezes it (a
        pretrained backbone, e.g. BlazePose's, kept as it is while the head learns)."""
        super().__init__()
        self.save_hyperparameters()  # plain dicts and numbers only: checkpoints stay weights-only readable
        self.model = PARE(ModelConfig.from_dict(model_config))
        self.body_model = load_body_model(self.model.config.body_model)
        for p in self.body_model.parameters():
            p.requires_grad_(False)
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule {lr_schedule!r}: use constant or cosine")
        self.weights = LossWeights(**(loss_weights or {}))
        if backbone_lr_scale == 0:
            for p in self.model.backbone.parameters():
                p.requires_grad_(False)
            self.model.backbone.eval()
        self.reference_backbone = None
        if self.weights.trunk_distillation:
            if backbone_lr_scale == 0:
                raise ValueError("loss.trunk_distillation needs a backbone that trains (train.backbone_lr_scale > 0)")
            # The backbone as built: for BlazePose, the original network, whatever --init loads.
            self.reference_backbone = build_backbone(self.model.config.backbone).eval()
            for p in self.reference_backbone.parameters():
                p.requires_grad_(False)
        # Channels-last: convolution backward (most of a CPU training step) ran 1.8x faster.
        self.model.to(memory_format=torch.channels_last)
        self._init_outputs()

    def _init_outputs(self) -> None:
        """Start near a standing person of average shape seen at the crop's usual scale."""
        head = self.model.head
        with torch.no_grad():
            head.cam_regressor.weight.mul_(0.1)
            head.cam_regressor.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
            head.shape_regressor.weight.mul_(0.1)
            head.shape_regressor.bias.zero_()

    def train(self, mode: bool = True):
        """A frozen backbone stays in eval mode: its batch norms keep their statistics too."""
        super().train(mode)
        if self.hparams.backbone_lr_scale == 0:
            self.model.backbone.eval()
        if self.reference_backbone is not None:
            self.reference_backbone.eval()
        return self

    def body(self, pose: torch.Tensor, betas: torch.Tensor):
        return self.body_model.posed(pose, betas)

    def forward(self, images):
        return self.model(images)

    def _step(self, batch):
        images = batch["image"].contiguous(memory_format=torch.channels_last)
        out = self.model(images, return_features=self.reference_backbone is not None)
        pred_body = self.body(out.pose, out.betas)
        with torch.no_grad():
            target_body = self.body(batch["pose"], batch["betas"])
        pred = {"joints3d": pred_body.joints[:, :24], "cam": out.cam, "pose": out.pose, "betas": out.betas,
                "part_logits": out.part_logits, "part_attention": out.part_attention}
        target = dict(batch, joints3d=target_body.joints[:, :24])
        losses = pare_loss(pred, target, self.weights)
        if self.reference_backbone is not None:
            with torch.no_grad():
                reference = self.reference_backbone(images)
            losses["trunk_distillation"] = torch.nn.functional.mse_loss(out.features, reference)
            losses["total"] = losses["total"] + self.weights.trunk_distillation * losses["trunk_distillation"]
        return out, pred_body, target_body, losses

    def training_step(self, batch, batch_idx):
        _, _, _, losses = self._step(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(batch["image"]))
        self.log("loss", losses["total"], prog_bar=True, batch_size=len(batch["image"]))
        return losses["total"]

    def validation_step(self, batch, batch_idx):
        _, pred_body, target_body, losses = self._step(batch)
        has_3d = batch["has_3d"]
        n = int(has_3d.sum())
        if n == 0:
            return
        pred_eval = self.body_model.eval_joints(pred_body.vertices[has_3d])
        target_eval = self.body_model.eval_joints(target_body.vertices[has_3d])
        self.log_dict({
            "val/mpjpe": metrics.mpjpe(pred_eval, target_eval).mean(),
            "val/pa_mpjpe": metrics.pa_mpjpe(pred_eval, target_eval).mean(),
            "val/pve": metrics.pve(pred_body.vertices[has_3d], target_body.vertices[has_3d],
                                   pred_eval, target_eval).mean(),
            "val/loss": losses["total"],
        }, prog_bar=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        scale = self.hparams.backbone_lr_scale
        groups = [{"params": [p for p in self.model.head.parameters() if p.requires_grad]}]
        if scale:
            groups.append({"params": list(self.model.backbone.parameters()), "lr": self.hparams.lr * scale})
        optimizer = torch.optim.Adam(groups, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":  # the study's: a step down between two phases
            return optimizer
        # Cosine: one smooth descent to min_lr over the whole run, step by step.
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, int(self.trainer.estimated_stepping_batches)), eta_min=self.hparams.min_lr)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
