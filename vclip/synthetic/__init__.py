"""A synthetic instructional-video world, written in the real layouts of every dataset.

Paper: VideoCLIP (Xu et al., EMNLP 2021), sections 3.3-3.4 (overlapped clips, retrieval-augmented
hard negatives) and 4 (HowTo100M pre-training, zero-shot YouCook2, MSR-VTT, CrossTask, COIN, DiDeMo).
Reference formats: fairseq ``examples/MMPT`` (``mmpt/processors/dsprocessor.py``,
``how2processor.py``, ``dedupprocessor.py``, ``scripts/video_feature_extractor``).

On a machine without the real data, ``python -m vclip.synthetic --out DIR [--preset default|large|howto]
[--seed S]`` writes a world carrying the structure the paper's ideas depend on, at CPU teaching size:
domains of hundreds of how-to tasks built from shared steps (:mod:`~vclip.synthetic.language`);
per-second S3D-like features from latent factors, and ASR captions said before, during or after the
action, with chatter and rolling duplicates (:mod:`~vclip.synthetic.world`); every evaluation set
(:mod:`~vclip.synthetic.generate`); the latent truth for oracle scores (its format: :mod:`vclip.data.truth`,
``load_truth``); and ground-truth measurements of what overlap and retrieval change in a batch
(:mod:`~vclip.synthetic.measure`). The ``howto`` preset has HowTo100M's retrieval regime (videos per task
of one rank's share, hundreds of tasks, a headline set of distinct tasks) and records the training it is
meant for in ``WORLD.json``.
"""

from vclip.synthetic.generate import PRESETS, WORLD_FILE, WorldConfig, generate, world_config

__all__ = ["PRESETS", "WORLD_FILE", "WorldConfig", "generate", "world_config"]
