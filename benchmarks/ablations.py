"""The paper's two ablations at CPU teaching size, paired over seeds: random groups, and exact alignment.

Paper: VideoCLIP sections 3.3 (overlapped clips), 3.4 (retrieval augmentation) and the ablation study
(section 5, Table 6). Reference: ``projects/retri/videoclip/how2.yaml`` and ``mmpt/tasks/retritask.py``.

    python benchmarks/ablations.py --world data/generated/synthetic --seeds 0 1 2 3 4 --out OUT

For each condition and seed: pre-train the tiny model on the world's pre-training folder with the
teaching configuration (``vclip/configs/teaching.json``; ``--steps`` and ``--candidates`` override
it), then evaluate zero-shot text->video retrieval. One seed gives every condition the same
initialisation and the same clip draws where the conditions allow, so differences are paired.

Evaluations (rows of ``runs``, key ``task``; :func:`vclip.synthetic.measure.retrieval_views`):
``youcook2`` (the headline: clips of many tasks of one domain, each caption naming its task and its
step; the oracle is near 100), ``youcook2_within_video`` (each text against its own video's clips),
``youcook2_same_step`` (each text against the clips of other videos showing the same step) and
``msrvtt`` (short clips of every domain, descriptions without the task).

Writes ``OUT/ablations.json``: ``runs`` (condition, seed, task, R@1/R@5/R@10 in percent, MedR, N,
and for each run the training curve and the same-task / same-domain share of its last groups),
``summary`` ({task: {condition: mean, std, and the paired difference to ``paper`` with its 95%
t-interval}}), ``reference`` (chance, oracle and the untrained model per task) and ``settings``.

Conditions: ``paper`` (overlapped clips + retrieval-augmented groups), ``no_retrieval`` (random
groups), ``exact`` (video span = text span), ``exact_no_retrieval`` (both).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from vclip.rundir import RunDir
from vclip.synthetic.measure import t_half_width

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONDITIONS = {
    "paper": {},
    "no_retrieval": {"retrieval": False},
    "exact": {"alignment": "exact"},
    "exact_no_retrieval": {"alignment": "exact", "retrieval": False},
}
HEADLINE = "youcook2"


def paired_difference(values: list[float], baseline: list[float]) -> dict:
    """Mean of ``values - baseline`` (paired by seed) with its 95% t-interval."""
    diffs = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    mean = float(diffs.mean())
    if len(diffs) < 2:
        return {"mean": mean, "low": None, "high": None, "n": len(diffs)}
    half = t_half_width(diffs)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(diffs)}


def training_overrides(world_record: dict, steps: int | None, candidates: int | None) -> tuple[dict, dict]:
    """The recipe overrides of a benchmark on a world: ``--steps``/``--candidates`` when given, else the
    world's recommended training (WORLD.json ``recommended``, written by ``python -m vclip.synthetic``),
    else the teaching recipe's. Returns (overrides, {key: where it came from})."""
    recommended = world_record.get("recommended") or {}
    overrides, sources = {}, {}
    for key, given in (("steps", steps), ("num_candidates", candidates)):
        if given is not None:
            overrides[key], sources[key] = given, "the command line"
        elif recommended.get(key) is not None:
            overrides[key], sources[key] = int(recommended[key]), "WORLD.json"
        else:
            sources[key] = "the teaching recipe"
    return overrides, sources


def baseline_views(world: Path) -> dict[str, dict]:
    """Chance and oracle on the headline and the MSR-VTT-like set."""
    from vclip.tasks import evaluate_baselines

    out = {}
    for task in ("youcook2", "msrvtt"):
        if (world / task).is_dir():
            base = evaluate_baselines(task, world)
            out[task] = {name: base[name].metrics["R@1"] for name in ("chance", "oracle") if name in base}
    return out


def group_shares(trainer) -> dict:
    """Same-task and same-domain share (%) of the video pairs in the trainer's current groups."""
    from vclip.data.truth import load_truth
    from vclip.synthetic.language import TASKS_BY_TITLE
    from vclip.synthetic.measure import same_task_share

    if not trainer.epoch_groups:  # the run ended on an epoch boundary: no current groups (see ``mechanism``)
        return {"group_same_task_percent": None, "group_same_domain_percent": None}
    truth = load_truth(Path(trainer.cfg.data))
    tasks = [truth.video_tasks[v] for v in trainer.train_ids]
    domains = [TASKS_BY_TITLE[t].domain for t in tasks]
    groups = trainer.epoch_groups
    return {"group_same_task_percent": same_task_share(groups, tasks),
            "group_same_domain_percent": same_task_share(groups, domains)}


def mechanism_through_training(world: Path, config, run_dir: Path, data, seed: int, groups: int) -> list[dict]:
    """:func:`vclip.synthetic.measure.group_mechanism` (retrieved vs random groups: loss, gradient norm,
    margin, false negatives by source) at the untrained model and at every checkpoint of a finished run
    (the epoch ends and the last update), each model forming its own retrieved groups."""
    import torch

    from vclip.data.truth import load_truth
    from vclip.synthetic.measure import group_mechanism
    from vclip.weights import load_weights_file

    store, train_ids, _ = data
    truth = load_truth(world / "pretrain")
    raw_captions = json.loads((world / "pretrain" / "raw_caption.json").read_text())
    torch.manual_seed(seed)  # the untrained model of this seed: the Trainer's initialisation
    model = config.model.build()
    points = [(0, None)] + sorted((int(p.name.split("_")[1]), p) for p in (run_dir / "checkpoints").glob("step_*"))
    rows = []
    for step, folder in points:
        if folder is not None:
            model.load_weights(load_weights_file(folder / "model.safetensors"), source=str(folder))
        rng = np.random.default_rng([seed, 7, step])
        rows.append({"step": step, **group_mechanism(model, store, truth, raw_captions, train_ids, config, rng, groups)})
    return rows


def run_one(world: Path, out: Path, condition: str, seed: int, overrides: dict, data,
            hardness_groups: int = 0) -> list[dict]:
    from vclip.config import load_recipe
    from vclip.synthetic.measure import retrieval_views
    from vclip.training.trainer import Trainer

    output = str(out / f"{condition}_seed{seed}")
    config = load_recipe("teaching").updated(**overrides, **CONDITIONS[condition], seed=seed, output=output,
                                             progress=False, device="cpu", save_every=10**9,
                                             keep_last=10**6, data=str(world / "pretrain"))
    config = config.updated(eval_every=max(1, config.steps // 3), eval_data=str(world))
    RunDir(output).remove()  # under its lock: a run another process owns is refused, not removed
    t0 = time.perf_counter()
    trainer = Trainer(config, data=data)
    result = trainer.fit()
    train_s = time.perf_counter() - t0
    curve = [{"step": r["step"], "R@1": r["metrics"]["R@1"]} for r in result.history if r["kind"] == "eval"]
    val = [r["val_loss"] for r in result.history if r["kind"] == "val"]
    shared = {"condition": condition, "seed": seed, "steps": result.final_step, "train_seconds": round(train_s, 1),
              "final_val_loss": val[-1] if val else None, "curve": curve, **group_shares(trainer)}
    if hardness_groups:
        t0 = time.perf_counter()
        shared["mechanism"] = mechanism_through_training(world, config, Path(result.run_dir), data, seed,
                                                         hardness_groups)
        shared["mechanism_seconds"] = round(time.perf_counter() - t0, 1)
    RunDir(output).remove()  # the checkpoints are not needed
    views = retrieval_views(trainer.model.eval(), world)
    return [{**shared, "task": task, **metrics} for task, metrics in views.items()]


def _run_in_worker(world: Path, out: Path, condition: str, seed: int, overrides: dict,
                   hardness_groups: int = 0) -> list[dict]:
    from vclip.data.store import open_pretrain

    return run_one(world, out, condition, seed, overrides, open_pretrain(world / "pretrain"), hardness_groups)


def summarise(runs: list[dict], conditions: list[str]) -> dict:
    summary: dict = {}
    for task in dict.fromkeys(r["task"] for r in runs):
        summary[task] = {}
        paper = {r["seed"]: r for r in runs if r["task"] == task and r["condition"] == "paper"}
        for condition in conditions:
            rows = {r["seed"]: r for r in runs if r["task"] == task and r["condition"] == condition}
            entry = {}
            for key in ("R@1", "R@5", "R@10"):
                values = [rows[s][key] for s in sorted(rows)]
                entry[key] = {"mean": float(np.mean(values)),
                              "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
                seeds = [s for s in sorted(rows) if s in paper]
                if condition != "paper" and seeds:
                    entry[key]["minus_paper"] = paired_difference([rows[s][key] for s in seeds],
                                                                  [paper[s][key] for s in seeds])
            summary[task][condition] = entry
    return summary


LABELS = {
    "paper": "**paper recipe** (overlapped clips + retrieval groups)",
    "no_retrieval": "no retrieval (random groups)",
    "exact": "exact alignment",
    "exact_no_retrieval": "exact alignment, no retrieval",
}
VIEWS = ("youcook2", "youcook2_within_video", "youcook2_same_step", "msrvtt")


def markdown_table(payload: dict, views=VIEWS) -> str:
    """The R@1 table that README.md and docs/pretraining.md quote, from a result of this script.

    Rows: chance, the untrained model, each condition (mean +- std over seeds, then the difference to
    the paper recipe paired by seed with its 95% interval), the oracle. ``tests/test_docs_numbers.py``
    checks that the documents hold exactly this text, so they cannot drift from the committed result.
    """
    summary, reference = payload["summary"], payload["reference"]
    n_seeds = len(payload["settings"]["seeds"])
    header = (f"| R@1 (%), mean +- std of {n_seeds} seeds; [paired difference to the paper recipe, 95% interval] | "
              + " | ".join(f"`{v}`" for v in views) + " |")
    lines = [header, "| --- |" + " --- |" * len(views)]

    def baseline(name: str) -> str:
        cells = [f"{reference['baselines'][v][name]:.1f}" if v in reference["baselines"] else "" for v in views]
        return " | ".join(cells)

    untrained = [np.mean([u[v] for u in reference["untrained"]]) for v in views]
    lines.append(f"| chance | {baseline('chance')} |")
    lines.append(f"| untrained tiny model (mean of {len(reference['untrained'])}) | "
                 + " | ".join(f"{u:.1f}" for u in untrained) + " |")
    for condition, label in LABELS.items():
        if condition not in summary[views[0]]:
            continue
        label += _seed_note(payload, condition)
        cells = []
        for view in views:
            r1 = summary[view][condition]["R@1"]
            cell = f"{r1['mean']:.1f} +- {r1['std']:.1f}"
            diff = r1.get("minus_paper")
            if diff and diff["low"] is not None:
                cell += f" [{diff['mean']:+.1f}; {diff['low']:+.1f}..{diff['high']:+.1f}]"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"| oracle (latent truth) | {baseline('oracle')} |")
    return "\n".join(re.sub(r"\|  (?=\|)", "| ", line) for line in lines)


# VideoCLIP Table 7 (zero-shot YouCook2 text->video): the full model, without retrieval, and without
# retrieval and overlap (exact alignment). The paper has no row for exact alignment with retrieval.
PAPER_TABLE7 = {"paper": {"R@1": 22.7, "R@5": 50.4, "R@10": 63.1},
                "no_retrieval": {"R@1": 18.5, "R@5": 42.8, "R@10": 54.6},
                "exact_no_retrieval": {"R@1": 12.4, "R@5": 30.2, "R@10": 40.7}}
ABLATIONS = ("no_retrieval", "exact_no_retrieval", "exact")


SETTINGS_OF_A_RUN = ("model", "sampling", "retrieval", "optimisation", "steps", "num_candidates", "world",
                     "world_seed", "world_preset")


def merge_results(payloads: list[dict], names: list[str]) -> dict:
    """One result from several of the same world and training (their runs pooled; a (condition, seed)
    measured twice is an error): settings of the first, seeds and conditions the union, summary redone."""
    first = payloads[0]["settings"]
    runs, seen = [], set()
    for payload, name in zip(payloads, names):
        for key in SETTINGS_OF_A_RUN:
            if key in first and payload["settings"].get(key) != first.get(key):
                raise ValueError(f"{name}: settings.{key} differs from {names[0]}'s; only results of one world "
                                 f"and one training can be merged")
        for run in payload["runs"]:
            key = (run["condition"], run["seed"], run["task"])
            if key in seen:
                raise ValueError(f"{name}: condition {run['condition']} seed {run['seed']} is already in another result")
            seen.add(key)
            runs.append(run)
    conditions = [c for c in CONDITIONS if any(r["condition"] == c for r in runs)]
    seeds = sorted({r["seed"] for r in runs})
    untrained = {u["seed"]: u for p in payloads for u in p["reference"]["untrained"]}
    settings = {**first, "seeds": seeds, "conditions": conditions, "merged_from": len(payloads),
                "seeds_per_condition": {c: sorted({r["seed"] for r in runs if r["condition"] == c}) for c in conditions}}
    reference = {**payloads[0]["reference"], "untrained": [untrained[s] for s in sorted(untrained)]}
    return {"settings": settings, "reference": reference, "runs": runs, "summary": summarise(runs, conditions)}


def relative_effects(payload: dict, view: str = HEADLINE) -> dict:
    """{ablation: {metric: {"percent", "low", "high"}}}: each ablation's change relative to the paper
    recipe on ``view``, 100 x (paired mean difference) / (paper recipe's mean over the same seeds), with
    the paired 95% interval scaled the same way (the paper recipe's mean taken as fixed)."""
    summary = payload["summary"][view]
    out = {}
    for condition in ABLATIONS:
        if "minus_paper" not in summary.get(condition, {}).get("R@1", {}):  # not run, or not paired with paper
            continue
        out[condition] = {}
        seeds = {r["seed"] for r in payload["runs"] if r["task"] == view and r["condition"] == condition}
        paper = [r for r in payload["runs"] if r["task"] == view and r["condition"] == "paper" and r["seed"] in seeds]
        for metric in ("R@1", "R@5", "R@10"):
            base = float(np.mean([r[metric] for r in paper]))  # the paper recipe over the same (paired) seeds
            diff = summary[condition][metric]["minus_paper"]
            scale = 100.0 / base if base else float("nan")
            out[condition][metric] = {"percent": diff["mean"] * scale,
                                      "low": None if diff["low"] is None else diff["low"] * scale,
                                      "high": None if diff["high"] is None else diff["high"] * scale}
    return out


def paper_relative_effects() -> dict:
    """The paper's Table 7 as relative changes (percent of the full model)."""
    full = PAPER_TABLE7["paper"]
    return {c: {m: 100.0 * (PAPER_TABLE7[c][m] - full[m]) / full[m] for m in full} for c in PAPER_TABLE7 if c != "paper"}


def relative_table(results: dict[str, dict]) -> str:
    """Markdown: headline R@1/R@5/R@10 of each condition per world, and the relative change of each
    ablation beside the paper's Table 7 (``results``: {label: result of this script})."""
    paper = paper_relative_effects()
    header = ("| headline R@1 / R@5 / R@10 (%), mean over seeds; R@1 change vs the paper recipe [paired 95% interval] | "
              + " | ".join(f"{label} ({len(p['settings']['seeds'])} seeds)" for label, p in results.items())
              + " | paper, Table 7 (YouCook2) |")
    lines = [header, "| --- |" + " --- |" * (len(results) + 1)]
    for condition, label in LABELS.items():
        cells = []
        for payload in results.values():
            summary = payload["summary"][HEADLINE]
            if condition not in summary or (condition != "paper" and condition not in relative_effects(payload)):
                cells.append("")
                continue
            values = " / ".join(f"{summary[condition][m]['mean']:.1f}" for m in ("R@1", "R@5", "R@10"))
            values += _seed_note(payload, condition)
            if condition != "paper":
                rel = relative_effects(payload)[condition]["R@1"]
                values += (f"; R@1 {rel['percent']:+.0f}% [{rel['low']:+.0f}..{rel['high']:+.0f}%]"
                           if rel["low"] is not None else f"; R@1 {rel['percent']:+.0f}%")
            cells.append(values)
        if condition in PAPER_TABLE7:
            ref = " / ".join(f"{PAPER_TABLE7[condition][m]:.1f}" for m in ("R@1", "R@5", "R@10"))
            if condition in paper:
                ref += f"; R@1 {paper[condition]['R@1']:+.1f}%"
        else:
            ref = "(no such row)"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ref} |")
    return "\n".join(lines)


def mechanism_summary(payload: dict) -> list[dict]:
    """Per measured step: mean and paired 95% interval over seeds of retrieved minus random groups
    (loss, gradient norm, margin, false negatives) and each kind's mean, from the runs that measured it."""
    rows = {}
    for run in payload["runs"]:
        if run["task"] != HEADLINE or not run.get("mechanism"):
            continue
        for point in run["mechanism"]:
            rows.setdefault(point["step"], []).append(point)
    keys = ("loss", "grad_norm", "margin", "hardest_wins_percent", "false_negative_percent", "same_task_percent")
    out = []
    for step in sorted(rows):
        entry = {"step": step, "seeds": len(rows[step])}
        for key in keys:
            random = [p["random"][key] for p in rows[step]]
            retrieved = [p["retrieved"][key] for p in rows[step]]
            entry[key] = {"random": float(np.mean(random)), "retrieved": float(np.mean(retrieved)),
                          "retrieved_minus_random": paired_difference(retrieved, random)}
        for source in ("same_video", "same_task", "other_task"):
            for kind in ("random", "retrieved"):
                entry.setdefault("false_by_source", {}).setdefault(kind, {})[source] = float(np.mean(
                    [p[kind]["false_negatives"][source]["false_percent"] for p in rows[step]]))
        out.append(entry)
    return out


def mechanism_table(payload: dict) -> str:
    """Markdown: group hardness and false negatives, random vs retrieved groups, through training."""
    lines = ["| update | loss: random / retrieved [difference, 95%] | gradient norm: random / retrieved | "
             "margin: random / retrieved | same task (%): random / retrieved | "
             "false negatives (% of negatives), random / retrieved: same video, same task, other tasks |",
             "| --- | --- | --- | --- | --- | --- |"]
    for e in mechanism_summary(payload):
        d = e["loss"]["retrieved_minus_random"]
        loss = f"{e['loss']['random']:.2f} / {e['loss']['retrieved']:.2f}"
        if d["low"] is not None:
            loss += f" [{d['mean']:+.2f}; {d['low']:+.2f}..{d['high']:+.2f}]"
        fb = e["false_by_source"]
        lines.append(
            f"| {e['step']} | {loss} | {e['grad_norm']['random']:.1f} / {e['grad_norm']['retrieved']:.1f} | "
            f"{e['margin']['random']:+.2f} / {e['margin']['retrieved']:+.2f} | "
            f"{e['same_task_percent']['random']:.1f} / {e['same_task_percent']['retrieved']:.1f} | "
            + ", ".join(f"{fb['random'][s]:.2f}" for s in ("same_video", "same_task", "other_task")) + " / "
            + ", ".join(f"{fb['retrieved'][s]:.2f}" for s in ("same_video", "same_task", "other_task")) + " |")
    return "\n".join(lines)


def figure(results: dict[str, dict], mechanism: dict | None, path: Path) -> Path:
    """The paper's Table 7 beside the kit's as relative effects on headline R@1/5/10 with paired 95%
    intervals (left), and group hardness through training, random vs retrieved groups (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if mechanism:
        fig, grid = plt.subplots(2, 2, figsize=(11.5, 8.0))
        axes = grid.ravel()
    else:
        fig, ax0 = plt.subplots(figsize=(6.0, 4.2))
        axes = [ax0]
    ax = axes[0]
    paper = paper_relative_effects()
    sources = [("paper, Table 7", None)] + [(label, payload) for label, payload in results.items()]
    conditions = ["no_retrieval", "exact_no_retrieval", "exact"]
    width = 0.8 / len(sources)
    colors = ["black", "tab:blue", "tab:orange", "tab:green"]
    for k, (label, payload) in enumerate(sources):
        for c, condition in enumerate(conditions):
            for m, metric in enumerate(("R@1", "R@5", "R@10")):
                x = c * 3.6 + m * 1.1 + (k - (len(sources) - 1) / 2) * width
                if payload is None:
                    if condition in paper:
                        ax.bar(x, paper[condition][metric], width, color=colors[k],
                               label=label if (c, m) == (0, 0) else None)
                    continue
                rel = relative_effects(payload).get(condition, {}).get(metric)
                if rel is None:
                    continue
                err = None if rel["low"] is None else [[rel["percent"] - rel["low"]], [rel["high"] - rel["percent"]]]
                ax.bar(x, rel["percent"], width, yerr=err, capsize=2, color=colors[k % len(colors)],
                       label=label if (c, m) == (0, 0) else None)
    ax.set_xticks([c * 3.6 + m * 1.1 for c in range(3) for m in range(3)],
                  [f"{metric}" for _ in conditions for metric in ("R@1", "R@5", "R@10")], fontsize=7)
    for c, condition in enumerate(("without retrieval", "without retrieval\nand overlap", "without overlap\n(kit only)")):
        ax.text(c * 3.6 + 1.1, 0.98, condition, ha="center", va="top", fontsize=7,
                transform=ax.get_xaxis_transform())
    ax.axhline(0, color="gray", lw=0.8)
    low, high = ax.get_ylim()
    ax.set_ylim(low, max(high, 0) + 0.22 * (max(high, 0) - low))  # room for the group labels
    ax.set(ylabel="change vs the full recipe (% of its score)", title="Table 7: the paper and the kit")
    ax.legend(fontsize=7, loc="lower left")
    if mechanism:
        rows = mechanism_summary(mechanism)
        steps = [r["step"] for r in rows]
        seeds = rows[0]["seeds"]
        for ax, key, label in ((axes[1], "loss", "contrastive loss of one group"),
                               (axes[2], "margin", "margin: positive - hardest negative"),
                               (axes[3], "false_negative_percent", "false negatives (% of negatives)")):
            for kind, color in (("random", "tab:gray"), ("retrieved", "tab:red")):
                ax.plot(steps, [r[key][kind] for r in rows], "o-", color=color, label=f"{kind} groups")
            ax.set(xlabel="update (checkpoints of the paper recipe's runs)", ylabel=label,
                   title=f"{label.split(':')[0]}, same model, mean of {seeds} seeds")
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _seed_note(payload: dict, condition: str) -> str:
    """" (5 seeds)" when a merged result has fewer seeds of ``condition`` than of the whole result."""
    settings = payload.get("settings", {})
    per_condition = settings.get("seeds_per_condition", {}).get(condition)
    if per_condition is None or len(per_condition) == len(settings.get("seeds", [])):
        return ""
    return f" ({len(per_condition)} seeds)"


def _interval(d: dict | None) -> str:
    if not d:
        return ""
    if d["low"] is None:
        return f"{d['mean']:+6.2f}"
    return f"{d['mean']:+6.2f} [{d['low']:+6.2f}, {d['high']:+6.2f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="data/generated/synthetic", help="a synthetic world root")
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None,
                        help="updates per run (default: the world's recommended training in WORLD.json, else the "
                             "teaching configuration's)")
    parser.add_argument("--candidates", type=int, default=None,
                        help="num_candidates, neighbours per query video (default: WORLD.json's recommendation, "
                             "else the teaching configuration's)")
    parser.add_argument("--jobs", type=int, default=1, help="train this many runs at once (one process each)")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--shares", choices=["fixed", "per_epoch"], default=None,
                        help="rank shares of the retrieval pass (default: the recipe's, fixed as the reference, "
                             "which the committed result used)")
    parser.add_argument("--hardness-conditions", nargs="*", default=["paper"], choices=list(CONDITIONS),
                        help="conditions whose runs also measure group hardness and false negatives (retrieved vs "
                             "random groups) at the untrained model and every checkpoint (default: paper)")
    parser.add_argument("--hardness-groups", type=int, default=16,
                        help="groups of each kind per hardness measurement (0: measure none)")
    parser.add_argument("--table", metavar="RESULT_JSON", default=None,
                        help="print the markdown R@1 table of a saved result (the one README.md and "
                             "docs/pretraining.md quote) and exit")
    parser.add_argument("--relative", metavar="LABEL=RESULT_JSON", nargs="+", default=None,
                        help="print the headline table of saved results beside the paper's Table 7 (relative "
                             "effects with paired intervals), the mechanism table of the last one, and exit")
    parser.add_argument("--figure", metavar="PNG", default=None,
                        help="with --relative: also draw Table 7 vs the kit and group hardness through training")
    parser.add_argument("--merge", metavar="RESULT_JSON", nargs="+", default=None,
                        help="combine saved results of one world and one training (e.g. more seeds of some "
                             "conditions) into OUT/ablations.json, re-summarised, and exit")
    args = parser.parse_args(argv)
    if args.merge:
        try:
            payload = merge_results([json.loads(Path(name).read_text()) for name in args.merge], args.merge)
        except ValueError as error:
            print(f"error: {error}")
            return 2
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "ablations.json").write_text(json.dumps(payload, indent=1))
        print(markdown_table(payload) + f"\n\nwritten {Path(args.out) / 'ablations.json'}")
        return 0
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0
    if args.relative:
        results = {}
        for item in args.relative:
            label, sep, name = item.partition("=")
            if not sep or not Path(name).is_file():
                print(f"error: --relative {item}: expected LABEL=RESULT_JSON naming an existing file")
                return 2
            results[label] = json.loads(Path(name).read_text())
        print(relative_table(results))
        last = list(results.values())[-1]
        if mechanism_summary(last):
            print("\n" + mechanism_table(last))
        if args.figure:
            with_mechanism = next((p for p in reversed(list(results.values())) if mechanism_summary(p)), None)
            print(f"\nwritten {figure(results, with_mechanism, Path(args.figure))}")
        return 0

    import torch

    from vclip.config import load_recipe
    from vclip.data.store import open_pretrain
    from vclip.model import VideoCLIP
    from vclip.synthetic.measure import retrieval_views

    world, out = Path(args.world), Path(args.out)
    if not (world / "youcook2").is_dir() or not (world / "pretrain").is_dir():
        print(f"error: {world}: not a synthetic world root (run python -m vclip.synthetic --out {world})")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    world_record = json.loads((world / "WORLD.json").read_text()) if (world / "WORLD.json").is_file() else {}
    overrides, sources = training_overrides(world_record, args.steps, args.candidates)
    if args.shares is not None:
        overrides["retrieval.shares"] = args.shares
    settings = {**load_recipe("teaching").updated(**overrides).to_dict(), **overrides, "world": str(world),
                "seeds": args.seeds,
                "conditions": args.conditions}
    settings.pop("_comment", None)
    settings["world_seed"], settings["world_preset"] = world_record.get("seed"), world_record.get("preset")
    settings["training_from"] = sources
    settings["hardness"] = {"conditions": args.hardness_conditions, "groups": args.hardness_groups}
    print(f"training: {overrides.get('steps', 'recipe')} updates, {overrides.get('num_candidates', 'recipe')} "
          f"candidates ({', '.join(f'{k} from {v}' for k, v in sources.items())})", flush=True)
    data = open_pretrain(world / "pretrain")

    reference = {"baselines": baseline_views(world), "untrained": []}
    for seed in args.seeds:
        torch.manual_seed(seed)
        views = retrieval_views(VideoCLIP.from_preset("tiny").eval(), world)
        reference["untrained"].append({"seed": seed, **{task: v["R@1"] for task, v in views.items()}})
    print(f"R@1 (%) chance / oracle: {reference['baselines']}", flush=True)

    def hardness(condition: str) -> int:
        return args.hardness_groups if condition in args.hardness_conditions else 0

    runs: list[dict] = []
    jobs = [(seed, condition) for seed in args.seeds for condition in args.conditions]  # seed-major: paired early
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_run_in_worker, world, out, condition, seed, overrides, hardness(condition))
                   for seed, condition in jobs]
        results = (future.result() for future in futures)
    else:
        results = (run_one(world, out, condition, seed, overrides, data, hardness(condition)) for seed, condition in jobs)
    for (seed, condition), rows in zip(jobs, results):
        runs += rows
        line = "  ".join(f"{r['task']} {r['R@1']:5.1f}" for r in rows)
        same = rows[0]["group_same_task_percent"]
        print(f"{condition:20s} seed {seed}: R@1 {line}  same-task groups "
              f"{'-' if same is None else f'{same:.2f}%'}  ({rows[0]['train_seconds']:.0f} s)", flush=True)
        summary = summarise(runs, args.conditions)
        (out / "ablations.json").write_text(json.dumps(
            {"settings": settings, "reference": reference, "runs": runs, "summary": summary}, indent=1))

    print("\nR@1 (%): mean +- std over seeds; difference to paper, paired by seed, with its 95% interval")
    for task, by_condition in summary.items():
        print(task)
        for condition, entry in by_condition.items():
            r1 = entry["R@1"]
            print(f"  {condition:20s} {r1['mean']:6.2f} +- {r1['std']:5.2f}   {_interval(r1.get('minus_paper'))}")
    print("\n" + markdown_table({"settings": settings, "reference": reference, "summary": summary}))
    print(f"\nwritten {out / 'ablations.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
