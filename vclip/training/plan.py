"""The epoch plan: which videos form each training batch, on which rank, in which order.

Paper: VideoCLIP section 3.3 (a batch is V videos x C overlapped clips) and 3.4 (before each epoch
the current model embeds every video, and the batches are groups of similar videos retrieved from
that embedding). Reference (fairseq ``examples/MMPT``): ``mmpt/tasks/retritask.py`` (the retrieval
pass on each rank's share of the videos, ``DistributedSampler``), ``mmpt/modules/retri.py`` and
``vectorpool.py`` (the groups), ``mmpt/processors/how2retriprocessor.py`` (a group's clips).

The plan of an epoch holds all ranks' groups, shuffled; rank ``r`` trains groups ``r, r + W, ...``.
Every draw is keyed by :mod:`vclip.training.seeds`, so a resumed run rebuilds the same batches.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.errors import ConfigError
from vclip.retrieval import random_groups, retrieval_groups, video_vectors
from vclip.sampling import sample_group
from vclip.training import seeds


class EpochPlan:
    """Groups of training videos per epoch and the batch of each group, for one rank.

    ``store`` is a feature store (or a :class:`vclip.sampling.ArrayVideos`), ``train_ids`` its training
    videos; ``dist.rank`` is read at each call (a test may pose as another rank).
    """

    def __init__(self, config: PretrainConfig, dist: vdist.DistInfo, store, train_ids: list[str]):
        self.cfg, self.dist, self.store, self.train_ids = config, dist, store, train_ids
        self._checked_shapes: set[tuple] = set()
        self.groups_per_epoch = self._count_groups()
        self.steps_per_epoch = self.groups_per_epoch // dist.world_size  # updates per epoch on each rank
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"{len(train_ids)} training videos make {self.groups_per_epoch} groups of "
                f"{config.videos_per_group} videos, fewer than {dist.world_size} rank(s): lower --videos-per-group"
            )

    def shares(self, epoch: int) -> list[np.ndarray]:
        """Each rank's share of the training videos for the embedding pass (a DistributedSampler).

        ``retrieval.shares == "fixed"``: the same shares every epoch, as the reference (its sampler's
        epoch is never set); ``"per_epoch"``: redrawn each epoch.
        """
        if self.cfg.retrieval.shares == "fixed":
            epoch = 0
        perm = seeds.rng(self.cfg.seed, seeds.SHARES, epoch).permutation(len(self.train_ids))
        return [perm[r :: self.dist.world_size] for r in range(self.dist.world_size)]

    def _count_groups(self) -> int:
        v = self.cfg.videos_per_group
        if self.cfg.retrieval.enabled and self.cfg.retrieval_scope == "rank":
            return sum(len(s) // v for s in self.shares(0))
        return len(self.train_ids) // v

    def plan(self, model, epoch: int, device, autocast_dtype) -> tuple[list[list[int]], dict]:
        """All ranks' groups for ``epoch`` (indices into train_ids), shuffled; plus retrieval stats.

        With retrieval, ``model`` embeds this rank's share first (the retrieval pass, section 3.4);
        without, the groups are random.
        """
        cfg = self.cfg
        info: dict = {"epoch": epoch}
        if not cfg.retrieval.enabled:
            groups = random_groups(len(self.train_ids), cfg.videos_per_group, seeds.rng(cfg.seed, seeds.GROUPS, epoch))
        else:
            groups, info["retrieval"] = self._retrieved_groups(model, epoch, device, autocast_dtype)
        order = seeds.rng(cfg.seed, seeds.ORDER, epoch).permutation(len(groups))
        return [groups[i] for i in order], info

    def _retrieved_groups(self, model, epoch: int, device, autocast_dtype) -> tuple[list[list[int]], dict]:
        """The retrieval pass: embed this rank's share, group similar videos (per rank or over all ranks)."""
        cfg, rank = self.cfg, self.dist.rank
        share = self.shares(epoch)[rank]
        t0 = time.perf_counter()
        vecs = video_vectors(
            model,
            self.store,
            [self.train_ids[i] for i in share],
            cfg.embed_clips_per_video or cfg.clips_per_video,
            seeds.rng(cfg.seed, seeds.EMBED, epoch, rank),
            cfg.sampling,
            cfg.embed_videos_per_batch,
            device,
            autocast_dtype,
            progress=cfg.progress and self.dist.is_main,
        )
        embed_s = time.perf_counter() - t0
        if cfg.retrieval_scope == "global":
            gathered = vdist.all_gather_objects((share, vecs))
            share = np.concatenate([s for s, _ in gathered])
            vecs = np.concatenate([v for _, v in gathered])
            key = (cfg.seed, seeds.GROUPS, epoch)  # every rank forms the same groups
        else:
            key = (cfg.seed, seeds.GROUPS, epoch, rank)
        local, stats = retrieval_groups(
            vecs,
            cfg.videos_per_group,
            seeds.rng(*key),
            cfg.num_candidates,
            cfg.index,
            cfg.exact_max_videos,
            None,
            cfg.nprobe,
            cfg.retrieval.top_up,
        )
        stats.embed_seconds = embed_s
        local = [[int(share[i]) for i in g] for g in local]
        if cfg.retrieval_scope == "global":
            groups = local
        else:
            groups = [g for part in vdist.all_gather_objects(local) for g in part]
        return groups, {k: v for k, v in dataclasses.asdict(stats).items() if k != "extra"}

    def rank_groups(self, epoch_groups: list[list[int]]) -> list[list[int]]:
        """This rank's groups of an epoch's plan: ``r, r + W, ...``, ``steps_per_epoch`` of them."""
        w, r = self.dist.world_size, self.dist.rank
        return epoch_groups[r::w][: self.steps_per_epoch]

    def batch(self, model, epoch: int, position: int, group: list[int]):
        """The collated V*C pairs of ``group`` at ``position`` in ``epoch`` on this rank, checked."""
        rng = seeds.rng(self.cfg.seed, seeds.CLIPS, epoch, self.dist.rank, position)
        ids = [self.train_ids[i] for i in group]
        batch = sample_group(self.store, ids, self.cfg.clips_per_video, rng, self.cfg.sampling)
        self.check_batch(model, batch, ids)
        return batch

    def check_batch(self, model, batch, ids: list[str]) -> None:
        """Validate a batch on the host, where it is made (the forward pass then skips its value checks).

        The model's own checks of values (finite features, token ids in the vocabulary, [CLS] first)
        read device memory back, a host synchronisation per forward on a GPU; here the same facts are
        checked on the CPU arrays before they move. Shapes are checked once per batch shape.
        """
        vfeats, input_ids = batch.vfeats.numpy(), batch.input_ids.numpy()
        shape = (tuple(vfeats.shape[1:]), tuple(input_ids.shape[1:]))
        if shape not in self._checked_shapes:
            model.check_input_values = False  # values are checked below, on the host arrays
            try:
                model.check_inputs(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
            finally:
                model.check_input_values = True
            self._checked_shapes.add(shape)
        finite = np.isfinite(vfeats).all(axis=(1, 2))
        if not finite.all():
            rows = np.flatnonzero(~finite)
            videos = sorted({ids[int(i)] for i in batch.video_index.numpy()[rows]})
            raise ValueError(f"videos {videos[:5]}: features contain NaN or inf")
        vocab = model.config.vocab_size
        if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= vocab):
            raise ValueError(f"token ids must lie in [0, {vocab}) of the model's vocabulary, got {input_ids.max()}")
