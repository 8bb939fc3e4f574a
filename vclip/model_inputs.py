"""What the two towers accept: the checks of their inputs, and the video's cut and padding to 32 seconds.

Paper: VideoCLIP section 3.1 (one S3D vector per second, at most 32 seconds per clip; texts as BERT
token ids). Reference (fairseq ``examples/MMPT``): ``mmpt/processors/dsprocessor.py`` and
``how2processor.py`` (``[CLS] text [SEP]``, 32-second clips zero-padded), ``mmpt/models/mmfusion.py``
(``MMPTModel`` asserts at most 32 seconds) and ``mmpt/modules/mm.py`` (``MMBertEmbeddings``).

A wrong input fails here with a message naming the shape, dtype or position that is wrong, rather
than deep inside BERT. The value checks (finite features, token ids, [CLS] first) read tensors back to
the host; :class:`vclip.model.VideoCLIP` runs them unless its ``check_input_values`` is off (the
trainer checks its batches on the host, :meth:`vclip.training.plan.EpochPlan.check_batch`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vclip.model_config import VideoCLIPConfig

logger = logging.getLogger("vclip.model")

S3D_MIXED_5C_DIM = 1024  # width of S3D's mixed_5c layer, a common wrong input (not the 512-d embedding)


def padded_video(
    config: VideoCLIPConfig,
    vfeats: torch.Tensor,
    vmask: torch.Tensor | None,
    check_values: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate, cut to the first 32 seconds and zero-pad to 32: ((B, 32, F), (B, 32) bool, T).

    Args:
        vfeats: (B, T, F) float features, F = ``config.video_feature_dim``; T > 32 keeps the first 32.
        vmask: (B, T) True on real seconds, or None (all True).
        check_values: also check that every feature is finite (reads the tensor back to the host).
        dtype, device: those of the video tower, where the padded tensors are made.
    """
    if not isinstance(vfeats, torch.Tensor):
        vfeats = torch.as_tensor(vfeats)
    if vfeats.dim() != 3:
        raise ValueError(
            f"vfeats must be (B, T, {config.video_feature_dim}), got shape {tuple(vfeats.shape)}"
        )
    batch, seconds, width = vfeats.shape
    if width != config.video_feature_dim:
        hint = ""
        if width == S3D_MIXED_5C_DIM:
            hint = (
                " These look like S3D `mixed_5c` activations (1024-d) rather than the 512-d "
                "`video_embedding` output that VideoCLIP was trained on; take the S3D `fc` output."
            )
        raise ValueError(
            f"vfeats last dimension is {width}, expected video_feature_dim={config.video_feature_dim}.{hint}"
        )
    if batch < 1 or seconds < 1:
        raise ValueError(
            f"vfeats needs at least one video and one second, got shape {tuple(vfeats.shape)}"
        )
    if not vfeats.is_floating_point():
        raise ValueError(f"vfeats must be a floating-point tensor, got {vfeats.dtype}")
    if vmask is None:
        vmask = torch.ones(batch, seconds, dtype=torch.bool, device=vfeats.device)
    if not isinstance(vmask, torch.Tensor):
        vmask = torch.as_tensor(vmask)
    if tuple(vmask.shape) != (batch, seconds):
        raise ValueError(f"vmask must have shape (B, T) = {(batch, seconds)}, got {tuple(vmask.shape)}")
    vmask = vmask.to(device=vfeats.device, dtype=torch.bool)
    finite = torch.isfinite(vfeats) if check_values else None
    if finite is not None and not bool(finite.all()):
        bad = (~finite).any(dim=2).nonzero()[:5].tolist()
        raise ValueError(f"vfeats contains NaN or inf (first (video, second) positions: {bad})")
    limit = config.max_video_len
    if seconds > limit:
        # The reference keeps the first 32 seconds (DSAligner / MMPTModel assert S <= 32).
        logger.debug("vfeats has %d seconds; keeping the first %d as the reference", seconds, limit)
        vfeats, vmask, seconds = vfeats[:, :limit], vmask[:, :limit], limit
    padded = torch.zeros(batch, limit, width, dtype=dtype, device=device)
    padded[:, :seconds] = vfeats.to(device=device, dtype=dtype)
    padded_mask = torch.zeros(batch, limit, dtype=torch.bool, device=device)
    padded_mask[:, :seconds] = vmask.to(device)
    return padded, padded_mask, seconds

def text_attention(
    config: VideoCLIPConfig, input_ids: torch.Tensor, attention_mask: torch.Tensor, check_values: bool = True
) -> torch.Tensor:
    """Validate a text batch laid out ``[CLS] text [SEP] [PAD]...``; its (B, L) bool attention mask.

    Shapes and dtypes are always checked; ``check_values`` also checks token ids against the
    vocabulary, an attended [CLS] first and at least [CLS] [SEP] per text (reads back to the host).
    """
    if input_ids.dim() != 2 or tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(
            f"input_ids and attention_mask must both be (B, L); got {tuple(input_ids.shape)} and "
            f"{tuple(attention_mask.shape)}"
        )
    batch, length = input_ids.shape
    if batch < 1 or length < 2:
        raise ValueError(
            f"need at least one text of at least [CLS] [SEP], got input_ids {tuple(input_ids.shape)}"
        )
    if length > config.max_position_embeddings:
        raise ValueError(
            f"texts have {length} positions, the text tower has {config.max_position_embeddings}"
        )
    if input_ids.dtype not in (torch.long, torch.int32, torch.int64):
        raise ValueError(f"input_ids must be integer token ids, got {input_ids.dtype}")
    if not check_values:
        return attention_mask.to(torch.bool)
    if int(input_ids.min()) < 0 or int(input_ids.max()) >= config.vocab_size:
        raise ValueError(
            f"input_ids must lie in [0, {config.vocab_size}), got min {int(input_ids.min())} "
            f"max {int(input_ids.max())}"
        )
    attention_mask = attention_mask.to(torch.bool)
    not_cls = (input_ids[:, 0] != config.cls_token_id) | ~attention_mask[:, 0]
    if bool(not_cls.any()):
        rows = not_cls.nonzero().flatten()[:5].tolist()
        raise ValueError(
            f"texts {rows} do not start with an attended [CLS] (id {config.cls_token_id}); lay texts out as "
            "[CLS] text [SEP] [PAD]... with vclip.tokenizer.build_text_batch / encode_texts"
        )
    if bool((attention_mask.sum(1) < 2).any()):
        rows = (attention_mask.sum(1) < 2).nonzero().flatten()[:5].tolist()
        raise ValueError(f"texts {rows} attend to fewer than 2 tokens; at least [CLS] [SEP] is required")
    return attention_mask
