"""The numbers VideoCLIP reports (Xu et al., EMNLP 2021, arXiv 2109.14084, tables of section 4/5),
each with the source it was read from here and a flag on those not confirmed in a retrievable source.

Sources: paperswithcode.com's VideoCLIP page (the paper's tables), fairseq
issue 4940 for COIN zero-shot, yyuncong/TempCLR issue 3 for a third-party rerun). These are numbers
on the REAL datasets; tables that print them next to results on the synthetic world label them so.
"""

from __future__ import annotations

from dataclasses import dataclass

PWC = "paperswithcode.com/paper/videoclip-contrastive-pre-training-for-zero"
FAIRSEQ_4940 = "github.com/facebookresearch/fairseq/issues/4940"
TEMPCLR_3 = "github.com/yyuncong/TempCLR/issues/3"
RECALLED = "recalled from the paper, not confirmed in a source reachable here; check against the PDF"


@dataclass(frozen=True)
class PaperNumber:
    """One reported number: task, setting ("zero-shot", "fine-tuned"), metric name (as returned by
    :mod:`vclip.metrics`), value (percent or rank), source, and whether it is confirmed."""

    task: str
    setting: str
    metric: str
    value: float
    source: str
    confirmed: bool = True


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("youcook2", "zero-shot", "R@1", 22.7, PWC),
    PaperNumber("youcook2", "zero-shot", "R@5", 50.4, PWC),
    PaperNumber("youcook2", "zero-shot", "R@10", 63.1, PWC),
    PaperNumber("youcook2", "fine-tuned", "R@1", 32.2, PWC),
    PaperNumber("youcook2", "fine-tuned", "R@5", 62.6, PWC),
    PaperNumber("youcook2", "fine-tuned", "R@10", 75.0, PWC),
    PaperNumber("msrvtt", "zero-shot", "R@1", 10.4, PWC),
    PaperNumber("msrvtt", "zero-shot", "R@5", 22.2, PWC),
    PaperNumber("msrvtt", "zero-shot", "R@10", 30.0, PWC),
    PaperNumber("msrvtt", "fine-tuned", "R@1", 30.9, PWC),
    PaperNumber("msrvtt", "fine-tuned", "R@5", 55.4, PWC),
    PaperNumber("msrvtt", "fine-tuned", "R@10", 66.8, PWC),
    PaperNumber("msrvtt_qa", "zero-shot", "accuracy", 73.9, RECALLED, confirmed=False),
    PaperNumber("msrvtt_qa", "fine-tuned", "accuracy", 92.1, RECALLED, confirmed=False),
    PaperNumber("didemo", "zero-shot", "rank@1", 16.6, PWC),
    PaperNumber("didemo", "zero-shot", "rank@5", 46.9, PWC),
    PaperNumber("crosstask", "zero-shot", "recall", 33.9, RECALLED, confirmed=False),
    PaperNumber("crosstask", "fine-tuned", "recall", 47.3, PWC),
    PaperNumber("coin", "zero-shot", "frame_acc", 58.9, FAIRSEQ_4940 + " (every prediction was background)"),
    PaperNumber("coin", "fine-tuned", "frame_acc", 68.7, PWC),
)

# A third-party rerun of the released checkpoint (not the paper): YouCook2 zero-shot.
RELEASED_CHECKPOINT_RERUN: tuple[PaperNumber, ...] = (
    PaperNumber("youcook2", "zero-shot (released checkpoint rerun)", "R@1", 22.37, TEMPCLR_3),
    PaperNumber("youcook2", "zero-shot (released checkpoint rerun)", "R@5", 50.30, TEMPCLR_3),
    PaperNumber("youcook2", "zero-shot (released checkpoint rerun)", "R@10", 62.56, TEMPCLR_3),
    PaperNumber("youcook2", "zero-shot (released checkpoint rerun)", "MedR", 5.0, TEMPCLR_3),
)


def paper_number(task: str, metric: str, setting: str = "zero-shot") -> PaperNumber | None:
    """The paper's number for (task, metric, setting), or None when the paper reports none."""
    for number in PAPER_NUMBERS:
        if (number.task, number.metric, number.setting) == (task, metric, setting):
            return number
    return None


def format_paper_number(task: str, metric: str, setting: str = "zero-shot") -> str:
    """"22.7", "73.9 (unconfirmed)", or "-" when there is none: for report tables."""
    number = paper_number(task, metric, setting)
    if number is None:
        return "-"
    return f"{number.value:.1f}" + ("" if number.confirmed else " (unconfirmed)")
