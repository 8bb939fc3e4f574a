"""Training: one loop, with pre-training and fine-tuning plugged in; the parts of a run, each one idea.

Paper: VideoCLIP sections 3.3-3.4 (overlapped clips, retrieval-augmented batches) and 4.1 (the
optimisation recipe). Reference (fairseq ``examples/MMPT``): ``mmpt/tasks/retritask.py`` (the
retrieval pass before each epoch), ``projects/retri/videoclip/how2.yaml`` and fairseq's trainer
(Adam, ``polynomial_decay``, fp16 loss scaling, ``checkpoint_best``).

=====================================  ===================================================================
``vclip.training.seeds``               every random stream of a run, derived from ``--seed`` (exact resume)
``vclip.training.plan``                the epoch plan: rank shares, the retrieval pass, groups, batches
``vclip.training.update``              one update of an objective: precision, DDP, clipping, Adam, schedule
``vclip.training.validation``          validation loss on val.lst groups; the zero-shot evaluation hook
``vclip.training.checkpoints``         the run directory as training sees it: lock, resume rule, save
``vclip.training.loop``                the loop: plan an epoch, update, log, validate, select, save, resume
``vclip.training.trainer``             pre-training on it: retrieved groups, the contrastive objective
``vclip.training.pretraining``         ``pretrain(config)``: one run, the library call of the program
``vclip.training.finetuning``          fine-tuning on it: a task's hooks, recipes, streamed batches, selection
``vclip.training.finetuned``           a fine-tuned run read back (its summary, model, head), without the loop
``vclip.training.export``              a run as a Hugging Face Hub model folder: its model card, the export
``vclip.training.resolve``             a run to evaluate, resolved once (pre-trained, untrained, fine-tuned)
=====================================  ===================================================================

The programs around them are :mod:`vclip.pretrain`, :mod:`vclip.finetune`, :mod:`vclip.evaluate` and
:mod:`vclip.hub`; the pre-training configuration is :mod:`vclip.config`, fine-tuning's
:class:`vclip.training.finetuning.FinetuneConfig`.
"""
