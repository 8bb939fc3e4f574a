"""Dataset formats, validation, caption de-duplication and the sharded feature store.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 (pre-training data). Reference: fairseq
``examples/MMPT``, ``mmpt/processors/how2processor.py``, ``dedupprocessor.py`` and
``utils/shardedtensor.py``. The layouts are documented in ``data/README.md``.

Submodules (import from them directly): :mod:`vclip.data.formats` (feature files and the
pre-training folder; each evaluation task's annotation reader lives beside its task in
:mod:`vclip.tasks`), :mod:`vclip.data.dedup` (rolling ASR caption de-duplication),
:mod:`vclip.data.store` (the feature store, the folder-backed readers with the same interface),
:mod:`vclip.data.check` (``python -m vclip.data check``).
"""
