"""The zero-shot results as text: the table ``python -m vclip.evaluate`` prints, and its notes.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (Tables 1-6: each task's metrics beside the paper's);
reference: fairseq ``examples/MMPT`` ``mmpt/evaluators/metric.py`` (the metrics it prints).
Each row puts the model's metric beside chance, the synthetic oracle and the paper's number
(:meth:`vclip.tasks.registry.Task.paper_number`).
"""

from __future__ import annotations

import math

from vclip.tasks.common import TaskResult
from vclip.tasks.registry import TASKS


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_table(results: dict[str, dict[str, TaskResult]], model_label: str = "ours") -> str:
    """A plain-text table: task, metric, ours, chance, oracle, paper (real data), N, missing features.

    A fine-tuned model's results (a "zero-shot" entry beside "model": the model it started from) add
    the columns "zero-shot (init)" and "paper fine-tuned"."""
    tuned = any("zero-shot" in by_scorer for by_scorer in results.values())
    scorers = ("zero-shot", "chance", "oracle") if tuned else ("chance", "oracle")
    header = ["task", "metric", model_label, *(["zero-shot (init)"] if tuned else []), "chance", "oracle",
              "paper zero-shot (real data)" if tuned else "paper (real data)", *(["paper fine-tuned"] if tuned else []),
              "N", "missing features"]
    rows = [header]
    for task, by_scorer in results.items():
        model = by_scorer["model"]
        spec = TASKS[task]
        metrics = spec.metrics
        if not model.ok:
            rows.append([task, "-", "not evaluated", *["-"] * (len(header) - 5), str(model.n_evaluated),
                         str(model.n_missing_features)])
            continue
        for i, metric in enumerate(metrics):
            row = [task if i == 0 else "", metric, _format(model.metrics.get(metric))]
            for scorer in scorers:
                other = by_scorer.get(scorer)
                row.append(_format(other.metrics.get(metric)) if other is not None and other.ok else "-")
            number = spec.paper_number(metric)
            row.append(number.format() if number else "-")
            if tuned:
                number = spec.paper_number(metric, "fine-tuned")
                row.append(number.format() if number else "-")
            row += [str(model.n_evaluated), str(model.n_missing_features)] if i == 0 else ["", ""]
            rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def result_notes(results: dict[str, dict[str, TaskResult]]) -> list[str]:
    lines = []
    for task, by_scorer in results.items():
        model = by_scorer["model"]
        if model.missing_report():
            lines.append(model.missing_report())
        if not model.ok:
            lines.append(f"{task}: nothing could be evaluated in {model.folder}")
        lines += [f"{task}: {note}" for note in model.notes]
        if "video_to_text" in model.details and model.ok:
            v2t = model.details["video_to_text"]
            lines.append(f"{task}: video->text R@1 {v2t['R@1']:.1f}, R@5 {v2t['R@5']:.1f}, R@10 {v2t['R@10']:.1f}, "
                         f"MedR {v2t['MedR']:.1f}")
        if "threshold" in model.details:
            lines.append(f"{task}: label threshold lambda = {model.details['threshold']:.4g} "
                         f"(largest off-diagonal label-label similarity)")
    return lines


__all__ = ["format_table", "result_notes"]
