"""Shared fixtures: the synthetic world (generated once per test session) and the real annotations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
# The real annotation files ship in data/annotations/ (provenance and licences in its README); VCLIP_ANNOTATIONS
# points the tests at another copy.
ANNOTATIONS = Path(os.environ.get("VCLIP_ANNOTATIONS", REPO / "data" / "annotations"))


@pytest.fixture(scope="session")
def synthetic_world(tmp_path_factory) -> Path:
    """The default synthetic world, generated once per session (seed 0). Treat it as read-only."""
    from vclip.synthetic.__main__ import main as synthetic_main

    root = tmp_path_factory.mktemp("world") / "synthetic"
    assert synthetic_main(["--out", str(root), "--seed", "0", "--no-regime"]) in (0, None)
    return root


@pytest.fixture(scope="session")
def real_annotations() -> Path:
    """The folder of the real annotation files (YouCook2 val, MSR-VTT 1k-A test, DiDeMo test/val). They ship with
    the kit, so a missing file is a failure, not a skip. Every test reads them through this fixture."""
    names = ("youcook2_validation.csv", "msrvtt_jsfusion_test.csv", "didemo_test.json", "didemo_val.json")
    missing = [n for n in names if not (ANNOTATIONS / n).is_file()]
    assert not missing, f"{ANNOTATIONS}: missing real annotation files {missing} (see data/annotations/README.md)"
    return ANNOTATIONS


def _random_videos(n: int = 12, seed: int = 0):
    """An in-memory store of ``n`` random videos (20-60 s of 512-d features, 8 captions of 2-9 tokens)."""
    import numpy as np

    from vclip.sampling import ArrayVideos

    rng = np.random.default_rng(seed)
    videos = {}
    for i in range(n):
        t = int(rng.integers(20, 60))
        starts = np.sort(rng.uniform(0, t, 8))
        videos[f"v{i:02d}"] = (
            rng.standard_normal((t, 512)).astype(np.float32),
            starts,
            starts + 3.0,
            [list(rng.integers(1000, 3000, int(rng.integers(2, 10)))) for _ in range(8)],
        )
    return ArrayVideos(videos)


@pytest.fixture(scope="session")
def random_videos():
    """``random_videos(n=12, seed=0)`` -> a :class:`vclip.sampling.ArrayVideos` of random videos and captions
    (training data for the trainer, retrieval and DDP tests)."""
    return _random_videos


def small_config(run: Path, **overrides):
    """A two-update pre-training configuration of the tiny model on small groups (the reliability tests' run)."""
    from vclip.config import PretrainConfig

    values = dict(output=str(run), preset="tiny", videos_per_group=4, clips_per_video=2, lr=1e-3, warmup_updates=2,
                  log_every=1, progress=False, device="cpu", retrieval=False, steps=2, save_every=1)
    values.update(overrides)
    return PretrainConfig(**values)
