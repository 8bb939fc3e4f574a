"""One optimisation update: precision, forward and backward, gradient clipping, Adam, the schedule.

Paper: VideoCLIP section 4.1 (Adam, peak lr 5e-5, 1000 warm-up updates, linear decay; fp16 on 8
GPUs) and section 3.2 (the symmetric InfoNCE loss of :mod:`vclip.loss`). Reference: fairseq's
``adam`` optimiser, ``polynomial_decay`` scheduler, ``--clip-norm`` and ``--fp16`` loss scaling
(initial scale 128), as set by ``projects/retri/videoclip/how2.yaml``; the loss is
``mmpt/losses/nce.py::MMContraLoss``.

The update reads nothing back to the host: its loss and gradient norm stay 0-dim device tensors
until the loop logs them.
"""

from __future__ import annotations

import torch

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.errors import ConfigError
from vclip.loss import contrastive_loss_terms
from vclip.training import seeds


def polynomial_decay(step: int, warmup: int, total: int, peak: float, end: float = 0.0, power: float = 1.0):
    """fairseq ``polynomial_decay`` lr at ``step`` previous updates (warm-up starts at peak/warmup)."""
    if warmup > 0 and step <= warmup:
        return peak * max(step, 1) / warmup
    if step >= total:
        return end
    remaining = 1 - (step - warmup) / max(total - warmup, 1)
    return (peak - end) * remaining**power + end


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``optimisation.precision`` on ``device`` (None: full float32)."""
    if device.type != "cuda":
        if precision == "fp16":  # its loss scaler is CUDA's
            raise ConfigError(f"precision 'fp16' is for GPUs only; this run is on {device} (bf16 runs on a CPU too)")
        return torch.bfloat16 if precision == "bf16" else None  # CPU autocast: the bf16 path, testable without a GPU
    return {"auto": torch.float16, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[precision]


class Precision:
    """The arithmetic of an update, shared by pre-training (:class:`Optimisation`) and fine-tuning
    (:class:`vclip.training.finetuning.FineTuner`): the autocast context of ``precision`` on ``device`` and, under
    fp16, fairseq's dynamic loss scaling (initial scale 128; an update with inf/NaN gradients is skipped
    and the scale lowered).
    """

    def __init__(self, precision: str, device: torch.device):
        self.device = torch.device(device)
        self.dtype = autocast_dtype(precision, self.device)
        self.scaler = torch.amp.GradScaler(
            "cuda", init_scale=128.0, enabled=self.dtype == torch.float16
        )  # fairseq --fp16 starts its loss scale at 128

    def autocast(self):
        """The autocast context (a no-op in float32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def clip_and_step(self, optimizer: torch.optim.Optimizer, parameters, clip_norm: float) -> torch.Tensor:
        """Unscale the gradients, clip their norm to ``clip_norm``, step (skipped on inf/NaN under fp16);
        returns the gradient norm before clipping (a 0-dim device tensor)."""
        self.scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
        self.scaler.step(optimizer)
        self.scaler.update()
        return grad_norm.detach()


class ContrastiveObjective:
    """Pre-training's objective: the symmetric InfoNCE of a batch of V*C pairs (:mod:`vclip.loss`,
    reference ``mmpt/losses/nce.py::MMContraLoss``), each direction kept as a logged term."""

    dropout_stream = seeds.DROPOUT  # the seeds stream of the per-update dropout seed
    fused_adam = True  # one kernel for all parameters: 5x faster than the per-tensor loop on a CPU (docs/performance.md)

    def __init__(self, config: PretrainConfig):
        self.cfg = config

    def __call__(self, net, model, batch, device, autocast):
        batch = batch.to(device)
        model.check_input_values = False  # checked on the host by EpochPlan.batch (no sync per forward)
        try:
            with autocast():
                out = net(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
        finally:
            model.check_input_values = True
        video_to_text, text_to_video = contrastive_loss_terms(
            out.pooled_video.float(), out.pooled_text.float(), self.cfg.temperature, self.cfg.normalize,
            gather=self.cfg.global_negatives)
        terms = {"loss_video_to_text": video_to_text.detach(), "loss_text_to_video": text_to_video.detach()}
        return video_to_text + text_to_video, terms  # vclip.loss.contrastive_loss


class Optimisation:
    """The optimiser, lr schedule and loss scaler of ``model``, and the update that uses them.

    ``objective(net, model, batch, device, autocast) -> (loss, terms)`` is what is minimised
    (:class:`ContrastiveObjective` for pre-training, a task's loss for fine-tuning); ``model`` is the
    module whose parameters are trained (with a fine-tuning head, the module holding both). Under
    ``torchrun`` it is wrapped in DistributedDataParallel (gradients averaged over ranks);
    ``total_steps`` sets the schedule's length unless ``total_num_update`` does. ``config`` gives
    ``lr``, ``betas``, ``adam_eps``, ``weight_decay``, ``clip_norm``, ``warmup_updates``,
    ``total_num_update``, ``precision`` and ``seed`` (pre-training's and fine-tuning's configurations both do).
    """

    def __init__(self, config, model: torch.nn.Module, dist: vdist.DistInfo, total_steps: int, objective=None):
        self.cfg, self.model, self.dist = config, model, dist
        self.objective = objective if objective is not None else ContrastiveObjective(config)
        self.device = dist.device
        self.ddp = None
        if dist.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # The BERT poolers are computed but unused (as the reference), so they get no gradient.
            self.ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
        self.precision = Precision(config.precision, self.device)
        self.autocast_dtype = self.precision.dtype
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=config.lr,
            betas=config.betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            fused=getattr(self.objective, "fused_adam", None),
        )
        self.scaler = self.precision.scaler
        total = config.total_num_update or total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: polynomial_decay(s, config.warmup_updates, total, 1.0)
        )
        self.terms: dict = {}

    def autocast(self):
        """The autocast context of the run's precision (a no-op in float32)."""
        return self.precision.autocast()

    def forward_backward(self, batch) -> torch.Tensor:
        """The objective's loss of this rank's batch, with gradients left in ``.grad`` (DDP-averaged over ranks)."""
        loss, self.terms = self.objective(self.ddp or self.model, self.model, batch, self.device, self.autocast)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        return loss.detach()

    def step(self, batch, step: int) -> dict:
        """Update ``step`` (0-based): forward, loss, backward, unscale, clip to ``clip_norm``, Adam, schedule.

        Returns ``loss`` and ``grad_norm`` as 0-dim tensors on the device (reading them is a host sync,
        which the loop does at log intervals only) and ``lr`` as a float.
        """
        torch.manual_seed(seeds.stable_seed(self.cfg.seed, self.objective.dropout_stream, step, self.dist.rank))
        loss = self.forward_backward(batch)
        grad_norm = self.precision.clip_and_step(self.optimizer, self.model.parameters(), self.cfg.clip_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        return {"loss": loss, "grad_norm": grad_norm, "lr": lr, **self.terms}

    def state_dict(self) -> dict:
        """The optimiser's, scheduler's and scaler's states (plain containers and tensors)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
