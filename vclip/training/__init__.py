"""The parts of one pre-training process, each one idea; ``vclip.training.trainer.Trainer`` runs them.

Paper: VideoCLIP sections 3.3-3.4 (overlapped clips, retrieval-augmented batches) and 4.1 (the
optimisation recipe). Reference (fairseq ``examples/MMPT``): ``mmpt/tasks/retritask.py`` (the
retrieval pass before each epoch), ``projects/retri/videoclip/how2.yaml`` and fairseq's trainer
(Adam, ``polynomial_decay``, fp16 loss scaling, ``checkpoint_best``).

=====================================  ===================================================================
``vclip.training.seeds``               every random stream of a run, derived from ``--seed`` (exact resume)
``vclip.training.plan``                the epoch plan: rank shares, the retrieval pass, groups, batches
``vclip.training.update``              one update: precision, forward/backward, clipping, Adam, schedule
``vclip.training.validation``          validation loss on val.lst groups; the zero-shot evaluation hook
``vclip.training.checkpoints``         the run directory as training sees it: lock, resume rule, save
``vclip.training.trainer``             the loop that calls them: plan, update, log, validate, save
``vclip.training.pretraining``         ``pretrain(config)``: one run, the library call of the program
``vclip.training.export``              a run as a Hugging Face Hub model folder: its model card, the export
``vclip.training.resolve``             a run to evaluate, resolved once (pre-trained, untrained, fine-tuned)
=====================================  ===================================================================

The program around them (the command line) is :mod:`vclip.pretrain`; the configuration is
:mod:`vclip.config`.
"""
