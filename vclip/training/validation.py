"""Measuring a run while it trains: the validation loss (model selection) and zero-shot evaluation.

Paper: VideoCLIP section 4.1 (the checkpoint kept is the one with the lowest validation loss).
Reference (fairseq ``examples/MMPT``): ``projects/retri/videoclip/how2.yaml`` (validation on How2
val groups at every checkpoint save and at epoch ends, ``best_checkpoint_metric: loss``) and
``mmpt/tasks/retritask.py`` (val groups are sampled without the retrieval pass).
"""

from __future__ import annotations

import torch

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.loss import contrastive_loss
from vclip.sampling import sample_group
from vclip.training import seeds


def validation_groups(val_ids: list[str], videos_per_group: int, max_groups: int | None) -> list[list[str]]:
    """Consecutive slices of V val videos, a short tail dropped when there are others, at most ``max_groups``.

    A val list shorter than V gives one smaller group (the reference drops val lists under 256
    videos; vclip does not).
    """
    v = videos_per_group
    groups = [val_ids[i : i + v] for i in range(0, len(val_ids), v)]
    if len(groups) > 1 and len(groups[-1]) < v:
        groups.pop()  # a short tail group would be easier than the others
    return groups[:max_groups]


@torch.no_grad()
def validation_loss(model, store, val_ids: list[str], config: PretrainConfig, dist: vdist.DistInfo,
                    autocast) -> float | None:
    """Mean contrastive loss over val.lst groups (overlapped sampling, no retrieval, fixed seed).

    The groups are shared out among the ranks and the mean is over all of them; ``autocast`` is a
    callable giving the run's precision context (:meth:`vclip.training.update.Optimisation.autocast`).
    None when there is nothing to contrast (fewer than two val pairs).
    """
    cfg = config
    if len(val_ids) * cfg.clips_per_video < 2:  # nothing to contrast
        return None
    groups = validation_groups(val_ids, cfg.videos_per_group, cfg.val_max_groups)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for g, ids in enumerate(groups):
            if g % dist.world_size != dist.rank:
                continue
            batch = sample_group(store, ids, cfg.clips_per_video, seeds.rng(cfg.seed, seeds.VAL, g), cfg.sampling)
            batch = batch.to(dist.device)
            with autocast():
                out = model(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
            total += float(contrastive_loss(out.pooled_video.float(), out.pooled_text.float(),
                                            cfg.temperature, cfg.normalize))
            count += 1
    finally:
        model.train(was_training)
    sums = vdist.all_gather_objects((total, count))
    total, count = sum(s for s, _ in sums), sum(c for _, c in sums)
    return total / count if count else None


def zero_shot_record(model, config: PretrainConfig, dist: vdist.DistInfo) -> dict:
    """Zero-shot ``eval_task`` on ``eval_data`` as a metrics record (rank 0 evaluates; the others wait)."""
    from vclip.tasks import evaluate_task

    record: dict = {}
    if dist.is_main:
        result = evaluate_task(model, config.eval_task, config.eval_data, device=dist.device)
        record = {"metrics": result.metrics, "n": result.n_evaluated}
    model.train()
    vdist.barrier()
    return record
