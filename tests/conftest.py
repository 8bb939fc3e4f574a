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
# The real annotation files live beside the repository in shared/data/annotations, or where
# VCLIP_ANNOTATIONS points (a checkout elsewhere).
ANNOTATIONS = Path(os.environ.get("VCLIP_ANNOTATIONS", REPO.parent / "shared" / "data" / "annotations"))


@pytest.fixture(scope="session")
def synthetic_world(tmp_path_factory) -> Path:
    """The default synthetic world, generated once per session (seed 0). Treat it as read-only."""
    from vclip.synthetic import main as synthetic_main

    root = tmp_path_factory.mktemp("world") / "synthetic"
    assert synthetic_main(["--out", str(root), "--seed", "0"]) in (0, None)
    return root


@pytest.fixture(scope="session")
def real_annotations() -> Path:
    """The folder of the real annotation files (YouCook2 val, MSR-VTT 1k-A test, DiDeMo test/val), or a skip
    when this checkout has no shared/ beside it. Every test reads them through this fixture."""
    if not (ANNOTATIONS / "youcook2_validation.csv").exists():
        pytest.skip("real annotations not found beside the repository (shared/data/annotations/, or set "
                    "VCLIP_ANNOTATIONS)")
    return ANNOTATIONS
