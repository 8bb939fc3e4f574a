"""Exercise checkers: grade a student's answer against the synthetic world's truth or the package's result.

The chapters end with exercises. Each exercise that asks for a number, a set or a short computation has a
checker here, in the module named after its chapter (``vclip.exercises.zero_shot`` for chapter 06, ...). A
checker never raises on a wrong answer: it returns a :class:`Feedback` that says what is right, or what is
wrong and by how much, naming where the correct value comes from ("the world's truth says 11",
"``vclip.metrics.retrieval_metrics`` gives 12.5"). The synthetic world knows which pairs share a step, which
seconds belong to which step and which answer is correct, so grading against truth is possible where a
real dataset has only its labels.

Three helpers are shared by every chapter's checkers:

* :func:`compare_number` and :func:`compare_set`: one graded quantity, with a tolerance taken from the
  quantity (rounding, float32), never from a recorded value;
* :func:`predict_then_reveal`: the student writes a guess before a cell computes the value; the reveal says
  how far the guess was (a guess left as ``None`` is told the value, so the notebook still runs unattended).

A worked solution sits under each exercise as a collapsed ``<details>`` block in the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Feedback", "compare_number", "compare_set", "not_answered", "predict_then_reveal"]


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: whether it passed and a sentence for the student."""

    exercise: str
    passed: bool
    message: str

    def __str__(self) -> str:
        mark = "\u2713" if self.passed else "\u2717"
        return f"{mark} {self.exercise}: {self.message}"

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the sentence, not the dataclass
        printer.text(str(self))

    def __bool__(self) -> bool:
        return self.passed


def not_answered(exercise: str, what: str) -> Feedback:
    """The answer is still ``None``: say what to fill in."""
    return Feedback(exercise, False, f"no answer yet: set {what} and run this cell again")


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def compare_number(exercise: str, name: str, yours, expected: float, source: str,
                   tolerance: float = 0.0) -> Feedback:
    """Grade one number: passed when ``|yours - expected| <= tolerance``.

    Args:
        exercise: the exercise's label, e.g. ``"06.2"``.
        name: what the number is, as the student would say it ("your false-negative count for group 3").
        yours: the student's answer (``None`` means not answered yet).
        expected: the correct value.
        source: where the correct value comes from ("the world's truth", "vclip.metrics.retrieval_metrics").
        tolerance: the largest difference still counted right (0 for counts).
    """
    if yours is None:
        return not_answered(exercise, name)
    value = _number(yours)
    if value is None:
        return Feedback(exercise, False, f"{name} should be a finite number, got {yours!r}")
    shown = _format(expected)
    if abs(value - expected) <= tolerance:
        return Feedback(exercise, True, f"{name} is {_format(value)}; {source} gives {shown}")
    return Feedback(exercise, False, f"{name} is {_format(value)}; {source} says {shown} "
                                     f"(off by {_format(value - expected)})")


def compare_set(exercise: str, name: str, yours: Iterable | None, expected: Iterable, source: str) -> Feedback:
    """Grade a set of items (ids, steps, seconds): names what is missing and what should not be there."""
    if yours is None:
        return not_answered(exercise, name)
    try:
        mine = set(yours)
    except TypeError:
        return Feedback(exercise, False, f"{name} should be a collection of items, got {yours!r}")
    truth = set(expected)
    if mine == truth:
        return Feedback(exercise, True, f"{name} has the {len(truth)} items {source} gives")
    missing, extra = sorted(truth - mine, key=str), sorted(mine - truth, key=str)
    parts = []
    if missing:
        parts.append(f"missing {len(missing)}: {_preview(missing)}")
    if extra:
        parts.append(f"not in {source}: {len(extra)}: {_preview(extra)}")
    return Feedback(exercise, False, f"{name} has {len(mine)} items, {source} has {len(truth)}; " + "; ".join(parts))


def predict_then_reveal(name: str, guess, actual: float, close: float) -> Feedback:
    """Reveal a computed value beside the student's earlier guess.

    Args:
        name: what was guessed ("the untrained loss").
        guess: the student's guess, or ``None`` when none was made.
        actual: the value the chapter computed.
        close: how near counts as a good guess, in the quantity's units (from the quantity: for a loss,
            e.g. a tenth of ``log(B)``).
    """
    if guess is None:
        return Feedback(f"predict: {name}", False, f"no guess made; it is {_format(actual)}")
    value = _number(guess)
    if value is None:
        return Feedback(f"predict: {name}", False, f"a guess should be a finite number, got {guess!r}; "
                                                     f"it is {_format(actual)}")
    off = value - actual
    verdict = "close" if abs(off) <= close else "not close"
    return Feedback(f"predict: {name}", abs(off) <= close,
                    f"you guessed {_format(value)}, it is {_format(actual)} ({verdict}: off by {_format(off)})")


def _format(value: float) -> str:
    value = float(value)
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def _preview(items: list, limit: int = 5) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
