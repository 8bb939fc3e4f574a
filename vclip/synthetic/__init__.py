"""A synthetic instructional-video world, written in the real layouts of every dataset.

Paper: VideoCLIP (Xu et al., EMNLP 2021), sections 3.3-3.4 (overlapped clips, retrieval-augmented
hard negatives) and 4 (HowTo100M pre-training, zero-shot YouCook2, MSR-VTT, CrossTask, COIN, DiDeMo).
Reference formats (fairseq ``examples/MMPT``: ``mmpt/processors/dsprocessor.py``,
``how2processor.py``, ``dedupprocessor.py``, ``scripts/video_feature_extractor``).

On a machine without the real data, ``python -m vclip.synthetic --out DIR [--preset default|large]
[--seed S]`` writes a world in which the paper's ideas are observable at CPU teaching size: how-to
tasks of ordered, shared steps (:mod:`~vclip.synthetic.language`); per-second S3D-like features
from latent factors and ASR captions offset from the action, with chatter and rolling duplicates
(:mod:`~vclip.synthetic.world`); every evaluation set (:mod:`~vclip.synthetic.generate`); and the
latent truth for oracle scores (:mod:`~vclip.synthetic.truth`, :func:`load_truth`).
"""

from vclip.synthetic.generate import PRESETS, WORLD_FILE, WorldConfig, generate, main, world_config
from vclip.synthetic.truth import TRUTH_FILE, SyntheticTruth, load_truth

__all__ = ["PRESETS", "TRUTH_FILE", "WORLD_FILE", "SyntheticTruth", "WorldConfig", "generate", "load_truth",
           "main", "world_config"]
