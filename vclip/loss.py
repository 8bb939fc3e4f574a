"""The contrastive (symmetric InfoNCE) loss of VideoCLIP, with an optional cross-rank all-gather.

Paper: VideoCLIP (Xu et al., EMNLP 2021), section 3.2 "Contrastive Loss": InfoNCE from video to
text plus text to video over the pairs of a batch, the other pairs of the batch being negatives.

Reference (fairseq ``examples/MMPT``): ``mmpt/losses/nce.py`` ``MMContraLoss``::

    S = pooled_video @ pooled_text.T                      # (N, N) raw dot products
    loss = CE(S, arange(N)) + CE(S.T, arange(N))          # each a mean over rows; their *sum*

No temperature (tau = 1 on unnormalised 768-d vectors), no normalisation, and negatives only from
the same GPU's batch (512 pairs); DDP then averages the per-GPU gradients. That is the default here.

Deliberate options (faithful defaults; documented in DEVIATIONS.md, "Model and loss"):

* ``temperature``: divide the similarities by tau (``None`` = the reference's tau = 1).
* ``normalize``: L2-normalise both embeddings first (cosine similarities, as CLIP).
* ``gather``: contrast each rank's pairs against *every* rank's pairs (cross-rank negatives).

Scaling with ``gather=True`` (what DDP then computes). With W ranks of B pairs each (N = W B), rank
r computes its local rows against all N columns in both directions::

    loss_r = mean_{i in rank r} CE(v_i . t_all, i) + mean_{i in rank r} CE(t_i . v_all, i)

so ``mean_r loss_r`` is exactly the global symmetric loss over all N pairs (each direction a mean
over N rows). :func:`all_gather_with_grad`'s backward *sums* the gradient that every rank's loss
sends to a rank's slice, so after DDP *averages* parameter gradients over ranks the result is the
gradient of ``mean_r loss_r``, the global loss, with no extra factor. Report ``loss_r`` averaged over
ranks (or any one rank's value, which estimates it).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns, to each rank, the sum over ranks of the
    gradients of its own slice (an all-reduce then a slice; gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
        sizes = [int(size.item()) for size in sizes]
        if len(set(sizes)) != 1:
            raise ValueError(f"all_gather_with_grad needs the same batch size on every rank, got {sizes}")
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.batch = rank, x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, ...) from every rank in rank order: (W B, ...), differentiable.

    The backward gives each rank the gradient of the *sum of all ranks' losses* with respect to its
    own slice, so DDP's gradient averaging yields the gradient of the mean of the ranks' losses.
    Without an initialised process group (or with one rank) it returns ``x`` unchanged.
    """
    if not _distributed():
        return x
    return _AllGatherWithGrad.apply(x)


def contrastive_loss(
    pooled_video: torch.Tensor,
    pooled_text: torch.Tensor,
    temperature: float | None = None,
    normalize: bool = False,
    gather: bool = False,
) -> torch.Tensor:
    """VideoCLIP's loss (reference ``MMContraLoss``): CE over video->text plus text->video logits.

    The sum of the two terms of :func:`contrastive_loss_terms` (same arguments).
    """
    video_to_text, text_to_video = contrastive_loss_terms(pooled_video, pooled_text, temperature, normalize, gather)
    return video_to_text + text_to_video


def contrastive_loss_terms(
    pooled_video: torch.Tensor,
    pooled_text: torch.Tensor,
    temperature: float | None = None,
    normalize: bool = False,
    gather: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two directions of :func:`contrastive_loss`: (video->text CE, text->video CE), each a mean.

    Args:
        pooled_video: (B, H) video embeddings; row i is paired with ``pooled_text[i]``.
        pooled_text: (B, H) text embeddings.
        temperature: divide similarities by this tau > 0; ``None`` (default) = the reference's 1.
        normalize: L2-normalise both sides first (default False, as the reference).
        gather: contrast against every rank's pairs via :func:`all_gather_with_grad` (default False:
            the reference contrasts each GPU's batch alone). See the module docstring for scaling.

    Returns:
        Two scalars: the video->text and the text->video mean cross-entropies.
    """
    if pooled_video.dim() != 2 or pooled_video.shape != pooled_text.shape:
        raise ValueError(
            f"pooled_video and pooled_text must both be (B, H); got {tuple(pooled_video.shape)} and "
            f"{tuple(pooled_text.shape)}"
        )
    if pooled_video.shape[0] < 1:
        raise ValueError("contrastive_loss needs at least one pair (got B = 0)")
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature must be > 0 (or None for the reference's 1), got {temperature}")
    if normalize:
        pooled_video = F.normalize(pooled_video, dim=-1)
        pooled_text = F.normalize(pooled_text, dim=-1)
    batch = pooled_video.shape[0]
    if gather and _distributed():
        all_video = all_gather_with_grad(pooled_video)  # (W B, H)
        all_text = all_gather_with_grad(pooled_text)
        offset = dist.get_rank() * batch
    else:
        all_video, all_text, offset = pooled_video, pooled_text, 0
    logits_per_video = pooled_video @ all_text.T  # (B, W B): local videos against every text
    logits_per_text = pooled_text @ all_video.T  # (B, W B): local texts against every video
    if temperature is not None:
        logits_per_video = logits_per_video / temperature
        logits_per_text = logits_per_text / temperature
    if logits_per_video.dtype in (torch.float16, torch.bfloat16):  # softmax in float32 under autocast/half
        logits_per_video, logits_per_text = logits_per_video.float(), logits_per_text.float()
    labels = torch.arange(offset, offset + batch, device=pooled_video.device)
    return F.cross_entropy(logits_per_video, labels), F.cross_entropy(logits_per_text, labels)


class ContrastiveLoss(nn.Module):
    """:func:`contrastive_loss` as a module holding its options (faithful defaults)."""

    def __init__(self, temperature: float | None = None, normalize: bool = False, gather: bool = False):
        super().__init__()
        self.temperature, self.normalize, self.gather = temperature, normalize, gather

    def forward(self, pooled_video: torch.Tensor, pooled_text: torch.Tensor) -> torch.Tensor:
        return contrastive_loss(pooled_video, pooled_text, self.temperature, self.normalize, self.gather)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}, gather={self.gather}"


__all__ = ["ContrastiveLoss", "all_gather_with_grad", "contrastive_loss", "contrastive_loss_terms"]
