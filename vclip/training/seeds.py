"""Every random stream of a pre-training run, derived from ``--seed``.

A run draws random numbers for six purposes: each rank's share of the videos, the clips embedded by
the retrieval pass, the groups, their order, the clips of each training batch, dropout, and the
clips of the validation groups. Each stream is keyed by ``numpy.random.SeedSequence([seed, stream,
epoch, rank, position...])``, so any draw can be replayed from the counters a checkpoint holds: a
run resumed from its last checkpoint equals the uninterrupted run (``docs/reliability.md``).
The reference (fairseq) seeds one global generator per update instead; the resulting numbers differ,
the recipe does not.
"""

from __future__ import annotations

import numpy as np

# The streams (the second element of every key).
SHARES, EMBED, GROUPS, ORDER, CLIPS, DROPOUT, VAL = range(7)


def rng(*key: int) -> np.random.Generator:
    """A numpy generator for ``key`` = (seed, stream, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def stable_seed(*key: int) -> int:
    """A 63-bit integer seed for ``key``, for ``torch.manual_seed`` (dropout)."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0] >> 1)
