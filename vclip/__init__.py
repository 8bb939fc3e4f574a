"""vclip: a teaching and reproduction kit for VideoCLIP.

VideoCLIP (Xu et al., "VideoCLIP: Contrastive Pre-training for Zero-shot Video-Text Understanding",
EMNLP 2021, arXiv 2109.14084) pre-trains a video transformer and a text transformer with a
contrastive loss on temporally *overlapping* video/text clips, in batches made of *retrieved*
similar videos (hard negatives), and evaluates zero-shot on retrieval, VideoQA, action
localisation and action segmentation.

The package mirrors the paper, one module per idea:

=======================  ============================================================
``vclip.model``          video and text towers (paper section 3.1), presets, ``from_bert``
``vclip.bert``           reading a pre-trained BERT checkpoint (folder or hub name)
``vclip.tokenizer``      bert-base-uncased WordPiece text layout, offline
``vclip.loss``           the symmetric InfoNCE loss (section 3.2), distributed all-gather
``vclip.checkpoint``     the reference release's ``checkpoint_best.pt`` layout, native format
``vclip.data``           dataset formats, checks, caption de-duplication, sharded feature store
``vclip.synthetic``      a synthetic instructional-video world in the real formats
``vclip.sampling``       overlapped video/text clip sampling (section 3.3)
``vclip.retrieval``      retrieval-augmented batches (section 3.4)
``vclip.config``         the pre-training configuration: sections, recipes, command line
``vclip.pretrain``       the pre-training program (single process or ``torchrun``)
``vclip.distributed``    process groups from torchrun's environment
``vclip.metrics``        retrieval, QA, localisation and segmentation metrics
``vclip.localization``   sliding windows and the CrossTask order-constrained dynamic program
``vclip.tasks``          the six zero-shot tasks (section 4), chance and oracle baselines
``vclip.evaluate``       the zero-shot evaluation program
``vclip.paper_numbers``  the paper's reported numbers, with sources
``vclip.s3d``            the S3D video network used to make the features
``vclip.video``          decoding and preprocessing with the reference's extraction recipe
``vclip.extract``        the feature-extraction program for raw videos
``vclip.inference``      VideoCLIP on a user's own videos: video-text and per-second scores
``vclip.viz``            figures and the ipywidgets explorer used by the notebooks
``vclip.notebooks``      the papermill runner behind ``make demo``
=======================  ============================================================

Deliberate deviations from the reference implementation are listed in ``DEVIATIONS.md``.
"""

__version__ = "0.1.0"
