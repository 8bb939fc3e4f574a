"""The notebooks as a batch reproduction: run every chapter with papermill and summarise what it found.

The numbered notebooks in ``notebooks/`` teach VideoCLIP (Xu et al., EMNLP 2021) by running it: feature
loading (paper section 4.1 "pre-training data", reference ``scripts/video_feature_extractor/`` and
``processors/how2processor.py``), pre-training with overlapped clips and retrieval-augmented groups
(sections 3.3-3.4; ``tasks/retritask.py``), the full-scale programs, the zero-shot tasks (section 5;
``projects/retri/videoclip/test_*_zs.yaml``), visual exploration, and fine-tuning on the downstream
tasks (section 4; ``projects/retri/videoclip/*_videoclip.yaml``). This package holds the notebooks'
helpers and the runner behind ``make demo``; the command line is :mod:`vclip.notebooks.__main__`::

    python -m vclip.notebooks run --out runs/notebooks [--params notebooks/params/large.yaml]

It executes each notebook in order with papermill (kernel ``python3``, working directory
``notebooks/``), writes the executed copy to ``<out>/<stem>.ipynb``, and prints a summary of the key
metrics each notebook recorded with :func:`record` (a JSON file beside the executed copy,
``<out>/<stem>.metrics.json``).

Notebooks call :func:`setup_notebook` in their imports cell (seeds, deterministic algorithms, a fixed
thread count, the kit's progress bars as widgets only, so that committed outputs are a reproducible record under
``pytest --nbval``; figures at :data:`FIGURE_DPI`)
and :func:`record` for the numbers worth summarising. A float result of torch differs in its last digits between
CPUs, so a cell that prints one is not compared by ``pytest --nbval`` (``# NBVAL_IGNORE_OUTPUT``) and what the
chapter claims about it is a :func:`check`, which prints the same line on every machine.

Parameters files (YAML) have two optional sections::

    common:                 # applied to every notebook that declares the parameter
      data_dir: data/generated/synthetic_large
    notebooks:              # per notebook; an unknown parameter name is an error
      04_training_and_ablations:
        train_steps: 2000

Values of parameters whose name ends in ``_dir`` or ``_path`` that are relative paths are resolved
against the directory the runner is started from (the notebooks themselves run inside ``notebooks/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vclip.logs import VERBOSE_FLAG, VERBOSE_HELP, setup_logging

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
RECORD_ENV = "VCLIP_NOTEBOOK_RECORD"
"""Environment variable naming the JSON file that :func:`record` writes (set by the runner)."""
NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
PATH_PARAMETER = re.compile(r".*_(dir|path)$")

FIGURE_DPI = 120
"""Inline figures' resolution: a 9-point label is 15 pixels tall; tests/test_notebooks_runner.py asks >= 110."""

RECORDED: dict[str, Any] = {}
"""What :func:`record` saw in this process (always filled, with or without the runner)."""

THREADS_ENV = "VCLIP_NOTEBOOK_THREADS"
"""Environment variable that overrides :func:`setup_notebook`'s thread count (the notebook check sets it, so that
it runs under another thread count than the one that recorded the committed outputs)."""


# ----------------------------------------------------------------------------------------------------
# Helpers called from inside the notebooks


def setup_notebook(seed: int = 0, threads: int = 1, deterministic: bool = True) -> None:
    """Make a notebook's outputs reproducible: seeds, deterministic kernels, thread count, bars as widgets.

    Progress bars of the kit become widget-only outputs (``vclip.progress.set_progress("widgets")``): live in
    JupyterLab, never text that ``pytest --nbval`` would compare. Inline figures are drawn at
    :data:`FIGURE_DPI`.

    Args:
        seed: seeds Python's ``random``, NumPy's global generator and torch.
        threads: torch intra-op threads. Float sums depend on it, so it is fixed for the committed outputs;
            1 by default because teaching-size steps are small (a second thread gains little) and a busy
            machine makes spinning OpenMP threads many times slower. The environment variable
            ``VCLIP_NOTEBOOK_THREADS`` (:data:`THREADS_ENV`) overrides it: ``make notebooks`` checks the committed
            outputs under another thread count (and another CPU kernel path) than the one that recorded them.
        deterministic: ``torch.use_deterministic_algorithms`` (warn-only for ops without one).
    """
    import numpy as np
    import torch

    override = os.environ.get(THREADS_ENV, "").strip()
    if override:
        if not override.isdigit():
            raise ValueError(f"setup_notebook: {THREADS_ENV} must be a whole number of threads, got {override!r}")
        threads = int(override)
    if threads < 1:
        raise ValueError(f"setup_notebook: threads must be >= 1, got {threads}")
    from vclip.progress import set_progress

    set_progress("widgets")  # the kit's bars as widgets only: text on stderr would be compared by nbval
    os.environ["TQDM_DISABLE"] = "1"  # programs the notebook starts (tqdm reads it when it is imported)
    _silence_library_bars()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    logging.basicConfig(level=logging.WARNING, force=True)
    import matplotlib

    shell = _ipython_kernel_shell()
    if shell is not None:  # MPLBACKEND=Agg (the Makefile's) would hide every figure of a notebook
        shell.run_line_magic("matplotlib", "inline")
    matplotlib.rcParams.update({"figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI, "figure.figsize": (7.0, 3.0),
                                "font.size": 9})


def _silence_library_bars() -> None:
    """The bars of Hugging Face transformers (weights loading), through its own switch."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _ipython_kernel_shell():
    """The running IPython kernel's shell, or None outside a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and "IPKernelApp" in shell.config else None


def check(condition: Any, claim: str, detail: str = "") -> None:
    """State a claim of the chapter's prose about a number that differs between machines, and verify it.

    Float results of torch (a loss, a gradient norm, a trained model's R@1) differ in their last digits
    between CPUs (kernels chosen by the instruction set, e.g. AVX-512 against AVX2) and thread counts, so the
    notebook check does not compare their printed digits (those cells carry ``# NBVAL_IGNORE_OUTPUT``). What
    the prose says about them is checked instead, with a tolerance that comes from the quantity (``ours equals
    the package within float32 rounding``, ``trained R@1 is at least ten times chance``), never a copied value.
    The line printed, ``✓ <claim>``, is the same on every machine, so ``pytest --nbval`` compares it too.

    Args:
        condition: true when the claim holds (a bool, or a one-element NumPy or torch boolean).
        claim: the claim in words, as the prose makes it; printed.
        detail: the numbers behind it, shown only when the claim fails.
    Raises:
        AssertionError: naming the claim (and ``detail``) when ``condition`` is false.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"check: the claim must be a non-empty sentence, got {claim!r}")
    if not bool(condition):
        raise AssertionError(f"the chapter's claim does not hold: {claim}" + (f" ({detail})" if detail else ""))
    print(f"\u2713 {claim}")


def record(name: str, value: Any) -> None:
    """Record a key metric of the running notebook for the batch summary.

    The value (a number, string, bool or a small JSON-serialisable list/dict) is kept in :data:`RECORDED`
    and, when the notebook runs under ``python -m vclip.notebooks run``, written to the JSON file named by
    the ``VCLIP_NOTEBOOK_RECORD`` environment variable. Prints nothing, so notebook outputs stay clean.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"record: name must be a non-empty string, got {name!r}")
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"record: {name!r} is {value}, expected a finite number")
    try:
        json.dumps(value)
    except TypeError as exc:
        raise ValueError(f"record: {name!r} = {value!r} is not JSON-serialisable") from exc
    RECORDED[name] = value
    target = os.environ.get(RECORD_ENV)
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False))
    tmp.replace(path)


FINGERPRINT_FILE = "fingerprint.json"
"""What :func:`teaching_run` trained a run from (its settings and a content hash of its data), in the run."""
_PATH_SETTINGS = ("run.data", "run.eval_data", "model.init_from")  # hashed by content, not compared as paths
_MACHINE_SETTINGS = ("run.output", "run.progress", "run.resume", "run.device")  # how and where, not what


def data_fingerprint(path: str | Path) -> dict:
    """A content hash of a data folder or file: what a run read, wherever the folder lies.

    SHA-256 over every file below ``path`` (hidden names skipped), in sorted order of their paths *relative
    to* ``path``, each path followed by the file's bytes; so a copied, moved or cloned folder gives the same
    hash, and any changed, added or removed file a different one. It reads every byte once (about a quarter
    of a second for the 90 MB of the default synthetic world's pre-training folder).

    Returns:
        ``{"sha256": hex, "files": count, "bytes": total}``.
    """
    import hashlib

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"data_fingerprint: {root} does not exist")
    files = [root] if root.is_file() else sorted(
        (p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix())
    digest, total = hashlib.sha256(), 0
    for file in files:
        digest.update((file.name if file == root else file.relative_to(root).as_posix()).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
                total += len(chunk)
    return {"sha256": digest.hexdigest(), "files": len(files), "bytes": total}


def run_fingerprint(config) -> dict:
    """The settings that decide what a pre-training run computes, with its input paths replaced by their
    :func:`data_fingerprint`: equal for a copy of the same data and configuration in another folder."""
    flat = {}
    for section, values in config.to_dict().items():
        for key, value in values.items():
            name = f"{section}.{key}"
            if name in _MACHINE_SETTINGS:
                continue
            flat[name] = data_fingerprint(value) if name in _PATH_SETTINGS and value else value
    return flat


def teaching_run(data_dir: str | Path, work_dir: str | Path, name: str = "teaching", config: str = "teaching",
                 **overrides: Any) -> Path:
    """A small pre-training run shared by the notebooks: reuse it when it was trained from the same things.

    The run directory is ``<work_dir>/runs/<name>``. It is reused when it holds a finished run (its latest
    checkpoint is at the requested step) whose ``fingerprint.json`` equals :func:`run_fingerprint` of the
    requested configuration: the same settings and the same data *by content*, so a copied or moved folder
    is reused and a regenerated world or a changed setting is trained again. Otherwise the run is trained
    from scratch with :func:`vclip.training.pretraining.pretrain` (deterministic for a given seed and thread count),
    saying why and showing its progress bars (in a notebook, as widgets: see :mod:`vclip.progress`). The
    run's lock is taken before anything of it is removed and held until it is trained again, so a run that
    another process owns (a live ``vclip.pretrain``) is refused with :class:`vclip.errors.RunDirError`,
    never removed under it.

    Args:
        data_dir: a synthetic world root or a pre-training folder / feature store.
        work_dir: the notebooks' working folder (``runs/notebooks``).
        name: the run's folder name.
        config: a ready configuration of ``vclip/configs`` (``teaching``) or a JSON file.
        overrides: any :class:`vclip.config.PretrainConfig` setting by short name (``steps``, ``seed``, ``retrieval``...).
    Returns:
        the run directory (``vclip.checkpoint.load_model`` opens its latest checkpoint).
    """
    from vclip.config import load_recipe
    from vclip.progress import progress_note
    from vclip.rundir import RunDir, atomic_write_text
    from vclip.training.pretraining import pretrain

    run = RunDir(Path(work_dir) / "runs" / name)
    data = Path(data_dir)
    if (data / "pretrain" / "raw_caption.json").is_file():
        data = data / "pretrain"
    wanted = load_recipe(config).updated(**{"progress": True, **overrides}, data=str(data.resolve()),
                                         output=str(run.path.resolve()))
    if wanted.steps is None:
        raise ValueError(f"teaching_run needs a number of steps (config {config!r} and overrides give none)")
    fingerprint = run_fingerprint(wanted)
    why = _why_not_reusable(run, wanted.steps, fingerprint)
    if why is None:
        log.info("reusing the finished run %s", run.path)
        return run.path
    with run.lock() as lock:  # refused while a live process owns the run: nothing of it is removed
        why = _why_not_reusable(run, wanted.steps, fingerprint)  # it may have been finished meanwhile
        if why is None:
            return run.path
        progress_note(f"training {name} ({wanted.steps} updates): {why}")
        run.clear(lock)
        pretrain(wanted, lock=lock)
        atomic_write_text(run.path / FINGERPRINT_FILE, json.dumps(fingerprint, indent=1) + "\n")  # last: a run
    return run.path  # stopped half-way has none, so it is never reused


def _why_not_reusable(run, steps: int, fingerprint: dict) -> str | None:
    """Why the run directory ``run`` cannot be reused as a finished run of ``steps`` updates trained from
    ``fingerprint`` (:func:`teaching_run`), or None when it can."""
    from vclip.errors import CheckpointError
    from vclip.rundir import config_differences, read_json_file, step_name

    if not (run.path / FINGERPRINT_FILE).is_file():
        return "the earlier run has no fingerprint" if run.path.exists() else "no earlier run"
    try:
        latest = run.latest()
        changed = config_differences(read_json_file(run.path / FINGERPRINT_FILE), fingerprint, ())
    except CheckpointError as error:  # a damaged run is trained again, never loaded
        return f"the earlier run is damaged ({error})"
    if latest is None or latest.name != step_name(steps):
        return f"the earlier run stopped at {latest.name if latest else 'no checkpoint'}"
    if changed:
        return "changed since the earlier run: " + "; ".join(c.split(":")[0] for c in changed)
    return None


def run_program(args: list[str], keep: str | None = None, threads: int = 1, timeout: float = 600.0,
                launcher: list[str] | None = None) -> str:
    """Run ``python -m <args>`` (or ``<launcher> <args>``) as a subprocess, print its output, return it.

    The programs of the kit are meant for the command line; chapter 05 runs them for real. The child gets
    ``TQDM_DISABLE=1`` (no progress bars in the notebook), ``OMP_NUM_THREADS=threads`` and the offline flags.

    Args:
        args: the program and its arguments, e.g. ``["vclip.evaluate", "--task", "youcook2", ...]``.
        keep: optional regular expression; only matching output lines are printed (all are returned).
        threads: OpenMP/torch threads of each child process.
        timeout: seconds before the child is killed.
        launcher: replaces ``[python, "-m"]``, e.g. ``[python, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m"]``.
    Raises:
        RuntimeError: with the command and the end of its output when it exits non-zero.
    """
    import shlex
    import subprocess

    command = (launcher or [sys.executable, "-m"]) + [str(a) for a in args]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    shown = " ".join(shlex.quote(c) for c in command)
    shown = shown.replace(f"{shlex.quote(sys.executable)} -m torch.distributed.run", "torchrun")
    shown = shown.replace(shlex.quote(sys.executable), "python")
    print(f"$ {shown}")
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{shown} exited with {done.returncode}:\n" + "\n".join(done.stdout.splitlines()[-30:]))
    pattern = re.compile(keep) if keep else None
    for line in done.stdout.splitlines():
        if pattern is None or pattern.search(line):
            print(line)
    return done.stdout


# ----------------------------------------------------------------------------------------------------
# The runner


@dataclass
class NotebookResult:
    """What running one notebook produced."""

    stem: str
    output: Path  # the executed notebook
    seconds: float
    ok: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def discover_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered chapters ``NN_name.ipynb`` of ``folder``, in order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebooks folder {folder} does not exist")
    found = sorted(p for p in folder.iterdir() if NOTEBOOK_NAME.match(p.name))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return found


def load_params(path: Path | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Read a parameters file: returns ``(common, per_notebook)``; see the module docstring for the layout."""
    if path is None:
        return {}, {}
    import yaml

    from vclip.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: expected a YAML mapping, could not read it ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict) or set(data) - {"common", "notebooks"}:
        raise ConfigError(f"{path}: expected a mapping with keys 'common' and/or 'notebooks', "
                         f"got {sorted(data) if isinstance(data, dict) else type(data).__name__}")
    common = data.get("common") or {}
    per_notebook = data.get("notebooks") or {}
    if not isinstance(common, dict):
        raise ConfigError(f"{path}: 'common' must map parameter names to values, got {common!r}")
    if not isinstance(per_notebook, dict) or not all(isinstance(v, dict) for v in per_notebook.values()):
        raise ConfigError(f"{path}: 'notebooks' must map notebook stems to mappings of parameters")
    return dict(common), {str(k): dict(v) for k, v in per_notebook.items()}


def _resolve_paths(params: dict[str, Any], base: Path) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if PATH_PARAMETER.match(key) and isinstance(value, str) and value and not Path(value).is_absolute():
            value = str((base / value).resolve())
        out[key] = value
    return out


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its cell tagged ``parameters`` (name -> papermill info)."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def parameter_type_error(name: str, value: Any, default_source: str) -> str | None:
    """Why ``value`` cannot replace a parameter whose default is the literal ``default_source``, or None.

    The expected type is the default's: a number where the default is an int (a float too where it is a
    float), text where it is a string, true/false where it is a bool, a list or mapping where it is one; a
    default of None, or one that is not a literal, takes anything.
    """
    import ast

    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError, TypeError):
        return None
    if default is None:
        return None
    if isinstance(default, bool):
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(default, int):
        expected, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        expected, ok = "a number", isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        expected, ok = "a string", isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        expected, ok = "a list", isinstance(value, (list, tuple))
    elif isinstance(default, dict):
        expected, ok = "a mapping", isinstance(value, dict)
    else:
        return None
    return None if ok else f"parameter {name} = {value!r}: expected {expected} (its default is {default_source})"


def plan_parameters(notebooks: list[Path], common: dict[str, Any], per_notebook: dict[str, dict[str, Any]],
                    out: Path, base: Path, source: str | Path = "the parameters") -> dict[str, dict[str, Any]]:
    """The parameters injected into each notebook: ``work_dir`` = ``out``, then common, then per-notebook.

    Every name must be declared and every value of the declared default's type
    (:func:`parameter_type_error`); else a :class:`vclip.errors.ConfigError` naming ``source`` (the file).
    """
    from vclip.errors import ConfigError

    stems = {nb.stem for nb in notebooks}
    unknown_stems = sorted(set(per_notebook) - stems)
    if unknown_stems:
        raise ConfigError(f"{source}: parameters given for unknown notebooks {unknown_stems}; notebooks are {sorted(stems)}")
    plan = {}
    declared_by = {nb.stem: notebook_parameters(nb) for nb in notebooks}
    unknown_common = sorted(set(common) - {name for declared in declared_by.values() for name in declared})
    if unknown_common:
        raise ConfigError(f"{source}: common parameters {unknown_common} are declared by no notebook; the notebooks "
                          f"declare {sorted({name for declared in declared_by.values() for name in declared})}")
    for nb in notebooks:
        declared = declared_by[nb.stem]
        own = per_notebook.get(nb.stem, {})
        unknown = sorted(set(own) - set(declared))
        if unknown:
            raise ConfigError(f"{source}: {nb.name} has no parameters {unknown}; it declares {sorted(declared)}")
        given = {k: v for k, v in common.items() if k in declared} | own
        for name, value in given.items():
            wrong = parameter_type_error(name, value, str(declared[name].get("default", "None")))
            if wrong:
                where = "notebooks: " + nb.stem if name in own else "common"
                raise ConfigError(f"{source}: {where}: {wrong} in {nb.name}")
        params: dict[str, Any] = {}
        if "work_dir" in declared:
            params["work_dir"] = str(out.resolve())
        params.update(given)
        plan[nb.stem] = _resolve_paths(params, base)
    return plan


def run_notebooks(out: Path, params_file: Path | None = None, only: list[str] | None = None,
                  notebooks_dir: Path = NOTEBOOKS_DIR, kernel_name: str = "python3",
                  cell_timeout: int | None = None) -> list[NotebookResult]:
    """Execute the numbered notebooks in order with papermill; a failing notebook does not stop the others.

    Args:
        out: folder for the executed notebooks and their ``.metrics.json`` (created).
        params_file: optional YAML parameters file (module docstring).
        only: optional list of stems or two-digit prefixes (``["01", "06_zero_shot_evaluation"]``).
        notebooks_dir: where the chapters are; they execute with this as working directory.
        kernel_name: the Jupyter kernel (the Makefile installs ``python3`` into the venv).
        cell_timeout: seconds a cell may run before papermill fails it (None: no limit).
    Returns:
        one :class:`NotebookResult` per notebook run.
    """
    import papermill

    out = Path(out)
    notebooks = discover_notebooks(notebooks_dir)
    common, per_notebook = load_params(params_file)
    plan = plan_parameters(notebooks, common, per_notebook, out, Path.cwd(),  # checks every name and type first
                           params_file or "the parameters")
    if only:
        wanted = set(only)
        chosen = [nb for nb in notebooks if nb.stem in wanted or nb.stem[:2] in wanted]
        missing = sorted(w for w in wanted if not any(nb.stem == w or nb.stem[:2] == w for nb in notebooks))
        if missing:
            from vclip.errors import ConfigError

            raise ConfigError(f"--only {missing}: no such notebook in {notebooks_dir}; "
                             f"have {[nb.stem for nb in notebooks]}")
        notebooks = chosen
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for nb in notebooks:
        target = out / f"{nb.stem}.ipynb"
        metrics_file = out / f"{nb.stem}.metrics.json"
        metrics_file.unlink(missing_ok=True)
        log.info("running %s with %s", nb.name, plan[nb.stem])
        old = os.environ.get(RECORD_ENV)
        os.environ[RECORD_ENV] = str(metrics_file.resolve())
        start = time.perf_counter()
        error = ""
        try:
            papermill.execute_notebook(str(nb), str(target), parameters=plan[nb.stem], kernel_name=kernel_name,
                                       cwd=str(notebooks_dir), progress_bar=False, log_output=False,
                                       execution_timeout=cell_timeout)
        except Exception as exc:  # papermill raises PapermillExecutionError; report and go on
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            log.error("%s failed: %s", nb.name, error)
        finally:
            if old is None:
                os.environ.pop(RECORD_ENV, None)
            else:
                os.environ[RECORD_ENV] = old
        seconds = time.perf_counter() - start
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        results.append(NotebookResult(nb.stem, target, seconds, not error, metrics, error))
    (out / "summary.json").write_text(json.dumps(
        [{"notebook": r.stem, "ok": r.ok, "seconds": round(r.seconds, 1), "output": str(r.output),
          "metrics": r.metrics, "error": r.error} for r in results], indent=1))
    return results


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def format_summary(results: list[NotebookResult], out: Path) -> str:
    """A short plain-text report: per notebook, status, time, recorded metrics; then where outputs are."""
    lines = ["", "vclip notebooks: summary", "=" * 24]
    for r in results:
        status = "ok" if r.ok else "FAILED"
        lines.append(f"{r.stem:<28} {status:<6} {r.seconds:7.1f} s   {r.output}")
        if r.error:
            lines.append(f"    error: {r.error}")
        for key, value in r.metrics.items():
            lines.append(f"    {key:<40} {_format_value(value)}")
    n_ok = sum(r.ok for r in results)
    lines.append("")
    lines.append(f"{n_ok}/{len(results)} notebooks ran; executed notebooks, metrics (*.metrics.json) and "
                 f"summary.json are in {Path(out).resolve()}")
    lines.append("Open them with: jupyter lab " + str(Path(out)))
    return "\n".join(lines)
