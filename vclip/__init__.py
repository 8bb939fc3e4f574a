"""vclip: a teaching and reproduction kit for VideoCLIP.

VideoCLIP (Xu et al., "VideoCLIP: Contrastive Pre-training for Zero-shot Video-Text Understanding",
EMNLP 2021, arXiv 2109.14084) pre-trains a video transformer and a text transformer with a
contrastive loss on temporally *overlapping* video/text clips, in batches made of *retrieved*
similar videos (hard negatives), and evaluates zero-shot on retrieval, VideoQA, action
localisation and action segmentation.

The package mirrors the paper, one module per idea:

=======================  ============================================================
``vclip.model``          video and text towers (paper section 3.1), ``from_bert``
``vclip.model_config``   their configuration and presets, importable without the model
``vclip.model_inputs``   what the towers accept: input checks, the cut and padding to 32 seconds
``vclip.bert``           reading a pre-trained BERT checkpoint (folder or hub name)
``vclip.tokenizer``      bert-base-uncased WordPiece text layout, offline
``vclip.loss``           the symmetric InfoNCE loss (section 3.2), distributed all-gather
``vclip.checkpoint``     the reference release's ``checkpoint_best.pt`` layout, native format
``vclip.weights``        reading weight files without running code from them
``vclip.data``           dataset formats, checks, caption de-duplication, sharded feature store
``vclip.synthetic``      a synthetic instructional-video world in the real formats
``vclip.sampling``       overlapped video/text clip sampling (section 3.3)
``vclip.retrieval``      retrieval-augmented batches (section 3.4)
``vclip.config``         the pre-training configuration: sections, recipes, command line
``vclip.pretrain``       the pre-training program (single process or ``torchrun``)
``vclip.training``       its parts: epoch plan, update, validation, checkpoints, the loop,
                         ``pretrain()``, a run's export and its resolution for evaluation
``vclip.distributed``    process groups from torchrun's environment
``vclip.metrics``        retrieval, QA, localisation and segmentation metrics
``vclip.localization``   sliding windows and the CrossTask order-constrained dynamic program
``vclip.tasks``          the task registry and the six zero-shot tasks (section 4): readers,
                         scoring, chance and oracle baselines, data checks, the paper's numbers
``vclip.evaluate``       the zero-shot evaluation program
``vclip.s3d``            the S3D video network used to make the features
``vclip.video``          decoding and preprocessing with the reference's extraction recipe
``vclip.features``       feature extraction from raw videos (the reference's recipe)
``vclip.extract``        the feature-extraction program
``vclip.inference``      VideoCLIP on a user's own videos: video-text and per-second scores
``vclip.viz``            figures and the ipywidgets explorer used by the notebooks
``vclip.notebooks``      the notebooks' helpers and the papermill runner behind ``make demo``
``vclip.huggingface``    Hugging Face Hub names and model cards; ``vclip.hub`` is the export program
``vclip.errors``         the kit's refusals (one line each at the programs' edge, ``vclip.cli``)
=======================  ============================================================

The modules sit on floors that only import downward (``docs/design.md``, "Floors"; checked by
``lint-imports``).

Deliberate deviations from the reference implementation are listed in ``DEVIATIONS.md``.

What a notebook needs is importable from the package itself (each name is loaded on first use, so
``import vclip`` and the programs import only what they use)::

    from vclip import TASKS, EvalConfig, VideoCLIP, evaluate_all, evaluate_task, load_model

The evaluation functions are exported by name (``evaluate_task``, ``evaluate_all``): ``vclip.evaluate``
is the evaluation program's module.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {  # name -> the module that defines it
    "VideoCLIP": "vclip.model",
    "VideoCLIPConfig": "vclip.model_config",
    "PretrainConfig": "vclip.config",
    "EvalConfig": "vclip.tasks",
    "load_model": "vclip.checkpoint",
    "evaluate_task": "vclip.tasks",
    "evaluate_all": "vclip.tasks",
    "TASKS": "vclip.tasks",
    "Task": "vclip.tasks",
    "register_task": "vclip.tasks",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vclip' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
