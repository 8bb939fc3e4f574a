"""The pre-training configuration: five typed sections, JSON recipes, and the command line.

Paper: VideoCLIP sections 3.3-3.4 and 4.1 (the pre-training recipe). Reference (fairseq
``examples/MMPT``): ``projects/retri/videoclip/how2.yaml`` (sampling, retrieval and optimiser
settings), ``mmpt/tasks/retritask.py`` (the retrieval pass), fairseq's ``adam``,
``polynomial_decay`` and checkpointing. Every default below is the reference's value unless its
comment says otherwise; the reference's protocol details that cost time on a laptop (IVF-512 index,
validation at every save, no top-up of short groups) are switched on by ``configs/paper.json``.

Sections (each field is ``--section.field`` on the command line; ``python -m vclip.pretrain --help``
lists them with their defaults and choices, taken from the comments here)::

    model         what the towers are and where their weights start (a preset or a BERT checkpoint)
    sampling      groups of V videos x C overlapped clips (paper section 3.3)
    retrieval     how groups of similar videos are formed before each epoch (section 3.4)
    optimisation  loss, Adam, learning-rate schedule, precision (section 4.1)
    run           data, output, length, seed, logging, checkpoints, validation

A recipe is a JSON file holding only what differs from these defaults, nested by section
(``vclip/configs/teaching.json``, ``paper.json``); an unknown key is refused with the key and the file.
The command line always wins over the file: ``--config paper --steps 2`` trains 2 updates although
paper.json sets 25 epochs. The resolved configuration is printed at start and saved as
``<run>/config.json``.

Short names read through to their section (``config.lr`` is ``config.optimisation.lr``), and
:meth:`PretrainConfig.updated` takes short or dotted names, so Python code stays short::

    config = load_recipe("teaching").updated(data="DIR", output="runs/x", steps=200, retrieval=False)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from vclip.errors import ConfigError
from vclip.sampling import SamplingConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_RECIPE = "teaching"  # what a bare `python -m vclip.pretrain --data D --output O` runs


_DEFER_CHECKS = False




@contextlib.contextmanager
def deferred_checks():
    """While tyro builds a configuration from the command line, the ``__post_init__`` checks wait.

    tyro would turn a check's error into a boxed message; the kit checks the resolved values once
    afterwards and reports a bad value as a one-line :class:`ConfigError` (``vclip.pretrain``,
    ``vclip.finetune``).
    """
    global _DEFER_CHECKS
    _DEFER_CHECKS = True
    try:
        yield
    finally:
        _DEFER_CHECKS = False


def checks_deferred() -> bool:
    """True inside :func:`deferred_checks` (a ``__post_init__`` then skips its checks)."""
    return _DEFER_CHECKS


def early_options(argv: list[str], **defaults: str) -> dict[str, str]:
    """The values of the options that choose the defaults (``--config``, ``--task``), read before tyro
    parses the whole command line; the rest of ``argv`` is left to tyro."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name, default in defaults.items():
        early.add_argument("--" + name.replace("_", "-"), dest=name, default=default)
    return vars(early.parse_known_args(argv)[0])


def _short(*names: str):
    """Extra command-line names for an everyday field (``--steps`` beside ``--run.steps``)."""
    return tyro.conf.arg(aliases=tuple(f"--{n}" for n in names))


@dataclass
class ModelSection:
    """The two towers (paper section 3.1; reference ``mmpt/models/mmfusion.py``)."""

    preset: Literal["tiny", "minilm", "paper"] = "tiny"  # architecture when init_from is empty (vclip.model_config.PRESETS; tiny is the kit's CPU size)
    init_from: Annotated[str, _short("init-from")] = ""  # a BERT checkpoint folder or hub name (the paper: bert-base-uncased): shapes and weights come from it, the video tower gets its first num_video_layers layers
    num_video_layers: int | None = None  # video tower layers (None: the preset's; 6 with init_from, the paper's)
    num_text_layers: int | None = None  # text tower layers (None: the preset's, or all of init_from's)
    hidden_size: int | None = None  # tower width (None: the preset's; not with init_from)
    num_attention_heads: int | None = None  # attention heads per layer (None: the preset's; not with init_from)
    intermediate_size: int | None = None  # FFN width (None: the preset's; not with init_from)
    hidden_dropout_prob: float = 0.1  # BERT's dropout, as the reference
    attention_probs_dropout_prob: float = 0.1  # BERT's dropout on attention weights, as the reference
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"  # same numbers; sdpa is fused and faster

    def __post_init__(self) -> None:
        if _DEFER_CHECKS:  # parse_command_line checks the resolved values once, in one line
            return
        shapes = [n for n in ("hidden_size", "num_attention_heads", "intermediate_size") if getattr(self, n) is not None]
        if self.init_from and shapes:
            raise ConfigError(f"model.{shapes[0]} cannot be set with model.init_from (the checkpoint's config.json gives the shapes)")
        for name in ("num_video_layers", "num_text_layers", *shapes):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")

    def overrides(self) -> dict:
        """The VideoCLIPConfig fields this section sets."""
        names = ("num_video_layers", "num_text_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                 "hidden_dropout_prob", "attention_probs_dropout_prob", "attn_implementation")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def build(self):
        """A new VideoCLIP in train mode: from the BERT checkpoint ``init_from``, else from ``preset``."""
        from vclip.model import VideoCLIP

        values = self.overrides()
        if self.init_from:
            return VideoCLIP.from_bert(self.init_from, video_layers=values.pop("num_video_layers", 6), **values)
        return VideoCLIP.from_preset(self.preset, **values)


@dataclass
class GroupSampling(SamplingConfig):
    """One batch per rank = V videos x C overlapped clips (paper section 3.3; ``how2.yaml``).

    The clip fields are :class:`vclip.sampling.SamplingConfig`'s (``mmpt/processors/how2processor.py``).
    """

    alignment: Annotated[Literal["overlap", "exact"], _short("alignment")] = "overlap"  # overlap: the paper; exact: its ablation (video span = text span)
    videos_per_group: int = 32  # V: videos per batch, retrieved together
    clips_per_video: int = 16  # C: clip pairs sampled per video (V*C = 512 pairs per GPU)

    def __post_init__(self) -> None:
        if _DEFER_CHECKS:  # parse_command_line checks the resolved values once, in one line
            return
        try:
            super().__post_init__()
        except ValueError as error:
            raise ConfigError(f"sampling: {error}") from None
        for name in ("videos_per_group", "clips_per_video"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sampling.{name} must be >= 1, got {getattr(self, name)}")
        if self.videos_per_group * self.clips_per_video < 2:
            raise ConfigError("a group needs at least 2 pairs to contrast (sampling.videos_per_group x clips_per_video >= 2)")


@dataclass
class RetrievalSection:
    """Groups of similar videos, re-formed before every epoch (paper section 3.4; ``mmpt/tasks/retritask.py``)."""

    enabled: Annotated[bool, _short("retrieval")] = True  # False (--no-retrieval): random groups, the paper's ablation
    num_candidates: int = 64  # neighbours searched per query video (num_cands)
    scope: Literal["rank", "global"] = "rank"  # rank: one index per rank over its share (reference); global: one index over all videos
    shares: Literal["fixed", "per_epoch"] = "fixed"  # how videos are split among ranks: fixed once (reference: its DistributedSampler's epoch is never set) or redrawn per epoch
    index: Literal["auto", "flat", "ivf", "ivf512"] = "auto"  # faiss index: ivf512 = the reference (IVF, 512 lists); auto = exact up to exact_max_videos, else the measured IVF of vclip.retrieval.auto_ivf; ivf = faiss defaults, 4 sqrt(N) lists
    exact_max_videos: int = 50_000  # the largest share "auto" searches exactly
    nprobe: int = 1  # IVF lists visited per query (reference: faiss's default 1)
    top_up: bool = True  # complete a group with fewer than V candidates with random videos (the reference trains the smaller group)
    embed_videos_per_batch: int = 32  # videos per forward pass of the embedding pass (reference: 512)
    embed_clips_per_video: int | None = None  # clips averaged per video vector (None: sampling.clips_per_video, the reference's 16)

    def __post_init__(self) -> None:
        if _DEFER_CHECKS:  # parse_command_line checks the resolved values once, in one line
            return
        for name in ("num_candidates", "exact_max_videos", "nprobe", "embed_videos_per_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"retrieval.{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_clips_per_video is not None and self.embed_clips_per_video < 1:
            raise ConfigError(f"retrieval.embed_clips_per_video must be >= 1, got {self.embed_clips_per_video}")


@dataclass
class OptimisationSection:
    """Loss, optimiser and schedule (paper section 4.1; ``how2.yaml``, ``mmpt/losses/nce.py``)."""

    lr: Annotated[float, _short("lr")] = 5e-5  # peak learning rate
    warmup_updates: int = 1000  # linear warm-up from lr/warmup_updates to lr
    total_num_update: int | None = None  # the linear decay reaches 0 here (reference: 1,000,000, never reached); None: this run's last update
    betas: tuple[float, float] = (0.9, 0.98)  # Adam betas
    adam_eps: float = 1e-8  # Adam epsilon (fairseq's default)
    weight_decay: float = 0.0  # Adam weight decay (none in the reference)
    clip_norm: float = 2.0  # gradient norm clip
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: fp16 autocast + loss scaling on GPU (reference --fp16), fp32 on CPU
    global_negatives: bool = False  # contrast against every rank's pairs (reference: each GPU's 512 only)
    temperature: float | None = None  # divide similarities by tau (None: the reference's tau = 1)
    normalize: bool = False  # L2-normalise both embeddings first (cosine, as CLIP; reference: raw dot products)

    def __post_init__(self) -> None:
        if _DEFER_CHECKS:  # parse_command_line checks the resolved values once, in one line
            return
        self.betas = tuple(float(b) for b in self.betas)
        if not self.lr > 0:
            raise ConfigError(f"optimisation.lr must be > 0, got {self.lr}")
        if self.warmup_updates < 0:
            raise ConfigError(f"optimisation.warmup_updates must be >= 0, got {self.warmup_updates}")
        if self.temperature is not None and not self.temperature > 0:
            raise ConfigError(f"optimisation.temperature must be > 0, got {self.temperature}")


@dataclass
class RunSection:
    """Data, output, length and bookkeeping of one run (fairseq's trainer and checkpointing)."""

    data: Annotated[str, _short("data")] = ""  # a pre-training folder (features/, raw_caption.json, train and val lists) or a feature store
    output: Annotated[str, _short("output")] = ""  # the run directory
    steps: Annotated[int | None, _short("steps")] = None  # train this many updates (epochs are cycled) ...
    epochs: Annotated[int | None, _short("epochs")] = None  # ... or this many epochs (the paper: 25); neither: 1 epoch
    seed: Annotated[int, _short("seed")] = 0  # every random draw derives from it (resume replays them)
    device: str | None = None  # cpu, cuda, cuda:N (None: cuda when available; torchrun gives each rank its GPU)
    resume: Annotated[bool, _short("resume")] = False  # continue the run in output from checkpoints/LATEST
    progress: Annotated[bool, _short("progress")] = True  # progress bars (--no-progress)
    log_every: int = 10  # updates between training-loss records in metrics.jsonl
    save_every: Annotated[int, _short("save-every")] = 1024  # updates between checkpoints (reference save_interval_updates)
    keep_last: int = 2  # interval checkpoints kept (the best by validation loss is kept too)
    val_every: int = 0  # also validate every N updates (0: never on a count)
    val_at_epoch_end: bool = True  # validate at each epoch end (the reference does)
    val_at_save: bool = False  # validate at every interval checkpoint (the reference does; paper.json sets it)
    val_max_groups: int = 64  # cap on validation groups (a val list may be large)
    eval_every: int = 0  # zero-shot evaluation every N updates (0: never)
    eval_data: str = ""  # a synthetic-world root or an evaluation folder
    eval_task: str = "youcook2"  # the zero-shot task of eval_every
    tensorboard: bool = False  # also write metrics.jsonl's records as TensorBoard scalars to <run>/tensorboard (pip install -e '.[tensorboard]')

    def __post_init__(self) -> None:
        if _DEFER_CHECKS:  # parse_command_line checks the resolved values once, in one line
            return
        if self.steps is not None and self.epochs is not None:
            raise ConfigError(f"give run.steps or run.epochs, not both (got steps={self.steps}, epochs={self.epochs})")
        for name in ("steps", "epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"run.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_every", "save_every", "val_max_groups", "keep_last"):
            if getattr(self, name) < 1:
                raise ConfigError(f"run.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("val_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"run.{name} must be >= 0, got {getattr(self, name)}")
        if self.device is not None:
            _check_device(self.device)
        if self.tensorboard:
            from vclip.tensorboard_log import require_tensorboard

            require_tensorboard("run.tensorboard")
        if self.eval_every and not self.eval_data:
            raise ConfigError("run.eval_every needs run.eval_data (a synthetic-world root or an evaluation folder)")


def _check_device(name: str) -> None:
    """Refuse a device torch cannot use here (``--device bogus``, cuda on a machine without it)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"run.device must be cpu, cuda or cuda:N, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"run.device must be cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device {name!r}: no CUDA device is available here (use cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"run.device {name!r}: this machine has {torch.cuda.device_count()} CUDA devices")


SECTIONS = {"model": ModelSection, "sampling": GroupSampling, "retrieval": RetrievalSection,
            "optimisation": OptimisationSection, "run": RunSection}


@dataclass(init=False)
class PretrainConfig:
    """Every setting of a pre-training run, in five sections (see the module docstring).

    ``PretrainConfig(run=RunSection(steps=3))`` and ``PretrainConfig(steps=3)`` are the same: short
    names (any field name, ``retrieval`` for ``retrieval.enabled``) go to their section.
    """

    model: ModelSection = field(default_factory=ModelSection)
    sampling: GroupSampling = field(default_factory=GroupSampling)
    retrieval: RetrievalSection = field(default_factory=RetrievalSection)
    optimisation: OptimisationSection = field(default_factory=OptimisationSection)
    run: RunSection = field(default_factory=RunSection)

    def __init__(self, model: ModelSection | None = None, sampling: GroupSampling | None = None,
                 retrieval: RetrievalSection | bool | None = None, optimisation: OptimisationSection | None = None,
                 run: RunSection | None = None, **short) -> None:
        if isinstance(retrieval, bool):
            short["retrieval"], retrieval = retrieval, None
        given = {"model": model, "sampling": sampling, "retrieval": retrieval, "optimisation": optimisation, "run": run}
        changes: dict[str, dict] = {name: {} for name in SECTIONS}
        for key, value in short.items():
            section, name = _locate_setting(key)
            changes[section][name] = value
        for name, cls in SECTIONS.items():
            section = given[name] if given[name] is not None else cls()
            if not isinstance(section, cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(section).__name__}")
            setattr(self, name, dataclasses.replace(section, **changes[name]) if changes[name] else section)

    def __getattr__(self, name: str):
        """Short names read through to the one section that has them (``config.lr``)."""
        if name.startswith("_"):
            raise AttributeError(name)
        section, name = _locate(name)
        return getattr(self.__dict__[section], name)

    def updated(self, **values) -> PretrainConfig:
        """A copy with fields changed, by short name (``steps=3``) or dotted name (``**{"run.steps": 3}``).

        ``steps`` replaces a configured ``epochs`` and the other way round.
        """
        nested = self.to_dict()
        for key, value in values.items():
            section, name = _locate_setting(key)
            nested[section][name] = value
        for a, b in (("steps", "epochs"), ("epochs", "steps")):
            if a in values and values[a] is not None and b not in values:
                nested["run"][b] = None
        return PretrainConfig.from_dict(nested)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples become lists, as in JSON

    @classmethod
    def from_dict(cls, values: dict, source: str = "configuration") -> PretrainConfig:
        """Build from nested {section: {field: value}} (missing fields keep their defaults)."""
        sections = {}
        for section, fields in values.items():
            if section not in SECTIONS:
                raise ConfigError(f"{source}: unknown section {section!r}; sections: {list(SECTIONS)}")
            if not isinstance(fields, dict):
                raise ConfigError(f"{source}: {section!r} must be an object of settings, got {fields!r}")
            known = _field_names(SECTIONS[section])
            unknown = sorted(set(fields) - set(known))
            if unknown:
                raise ConfigError(f"{source}: unknown setting {section}.{unknown[0]}; {section} has {list(known)}")
            try:
                sections[section] = SECTIONS[section](**fields)
            except TypeError as error:
                raise ConfigError(f"{source}: {section}: {error}") from None
        return cls(**sections)

    def differences(self) -> dict:
        """Only what differs from the defaults, nested by section: the content of a recipe file."""
        mine, default = self.to_dict(), PretrainConfig().to_dict()
        out = {}
        for section, fields in mine.items():
            changed = {k: v for k, v in fields.items() if default[section][k] != v}
            if changed:
                out[section] = changed
        return out


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# Short names that differ from the field name, and the fields of PretrainConfig before it had sections.
SHORT_NAMES = {"retrieval": ("retrieval", "enabled"), "retrieval_scope": ("retrieval", "scope")}


def _locate(name: str) -> tuple[str, str]:
    """(section, field) of a short or dotted name: ``steps`` and ``run.steps`` -> ("run", "steps")."""
    if "." in name:
        section, field_name = name.split(".", 1)
        if section in SECTIONS and field_name in _field_names(SECTIONS[section]):
            return section, field_name
        raise AttributeError(f"PretrainConfig has no setting {name!r}")
    if name in SHORT_NAMES:
        return SHORT_NAMES[name]
    for section, cls in SECTIONS.items():
        if name in _field_names(cls):
            return section, name
    raise AttributeError(f"PretrainConfig has no setting {name!r}")


def _locate_setting(name: str) -> tuple[str, str]:
    """:func:`_locate` for a setting a caller passed: an unknown name is a ConfigError naming it."""
    try:
        return _locate(name)
    except AttributeError:
        raise ConfigError(f"unknown setting {name!r}") from None


# ---------------------------------------------------------------------------------------- recipes
def recipe_path(name_or_path: str | os.PathLike, directory: Path = CONFIG_DIR) -> Path:
    """A recipe file: a path to a .json file, or a name in ``directory`` (vclip/configs: ``teaching``,
    ``paper``; vclip/configs/finetune for fine-tuning)."""
    path = Path(name_or_path)
    if not path.exists() and (directory / f"{name_or_path}.json").exists():
        path = directory / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.json"))
        raise ConfigError(f"configuration {str(name_or_path)!r} not found (a .json file, or one of {known})")
    return path


def read_recipe_file(path: Path) -> dict:
    """A recipe file's object, ``_comment`` keys (at the top and one level down) removed; not JSON, or not
    an object, is a :class:`ConfigError` naming the file."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected an object of sections, got {type(values).__name__}")
    values = {k: v for k, v in values.items() if not k.startswith("_")}
    for section in values.values():
        if isinstance(section, dict):
            for key in [k for k in section if k.startswith("_")]:
                section.pop(key)
    return values


def load_recipe(name_or_path: str | os.PathLike = DEFAULT_RECIPE) -> PretrainConfig:
    """The defaults updated by a recipe file; ``_comment`` keys are ignored, unknown keys refused."""
    path = recipe_path(name_or_path)
    return PretrainConfig.from_dict(read_recipe_file(path), source=str(path))


# ---------------------------------------------------------------------------------------- command line
@dataclass
class PretrainCommand:
    """VideoCLIP pre-training: overlapped clips, retrieval-augmented groups (torchrun for several GPUs).

    Values come from the defaults, then the --config recipe, then the command line; the defaults shown
    here are the chosen recipe's (try --config paper --help).
    """

    config: str = DEFAULT_RECIPE  # a recipe: teaching (CPU minutes), paper (the paper's, 8 GPUs), or a .json file
    print_config: bool = False  # print the resolved configuration as JSON and exit
    verbose: bool = False  # also show the libraries' log lines (faiss, transformers, ...)
    settings: Annotated[PretrainConfig, tyro.conf.arg(name="")] = field(default_factory=PretrainConfig)


def parse_typed_command(command_class, argv: list[str] | None, prog: str, default=None, description=None):
    """The kit's one way from a dataclass to a command line: ``tyro`` on ``command_class``.

    Every field is a flag (``--section.field`` for nested sections, ``--field`` for sections named
    ``""``), its help the field's comment, its default shown; the class docstring is the description.
    A field's value check (``__post_init__``) raises :class:`ConfigError` (one line, said by the
    program) instead of tyro's boxed message, and so is a usage error tyro finds (an unknown flag, with
    tyro's "did you mean" suggestion; a value that does not parse; a bad choice):
    :func:`vclip.logs.one_line_usage_error`.
    """
    import io
    import sys

    from vclip.logs import one_line_usage_error

    boxed = io.StringIO()
    try:
        with deferred_checks(), contextlib.redirect_stderr(boxed):  # the checks run once, by the caller
            command = tyro.cli(command_class, args=argv, prog=prog, default=default,
                               description=description or command_class.__doc__)
    except ConfigError:
        raise
    except ValueError as error:  # a plain dataclass's own check of a value (e.g. EvalConfig)
        raise ConfigError(str(error)) from None
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help (on stdout): not an error
            sys.stderr.write(boxed.getvalue())
            raise
        # tyro's boxed usage error (unknown option, unparsable value, bad choice): one line, its suggestion kept
        raise ConfigError(one_line_usage_error(boxed.getvalue())) from None
    sys.stderr.write(boxed.getvalue())  # what tyro said on a successful parse (a warning) is not lost
    return command


def parse_command_line(argv: list[str] | None = None, prog: str = "python -m vclip.pretrain") -> PretrainCommand:
    """Resolve defaults < recipe < command line. ``--steps`` beats a recipe's epochs (and vice versa)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    recipe = early_options(argv, config=DEFAULT_RECIPE)["config"]
    try:
        base = load_recipe(recipe)
    except ConfigError:
        if not any(a in ("-h", "--help") for a in argv):
            raise
        base = PretrainConfig()  # still show the help
    given = {a.split("=")[0] for a in argv}
    if given & {"--steps", "--run.steps"}:  # the command line's length replaces the recipe's
        base.run.epochs = None
    if given & {"--epochs", "--run.epochs"}:
        base.run.steps = None
    command = parse_typed_command(PretrainCommand, argv, prog, default=PretrainCommand(config=recipe, settings=base))
    command.settings = PretrainConfig.from_dict(command.settings.to_dict(), source="the command line")
    if command.settings.run.resume:
        output_given = bool(given & {"--output", "--run.output"})
        command.settings.run.output = resumed_run_directory(recipe, base.run.output, command.settings.run.output,
                                                            output_given)
    return command


def resumed_run_directory(recipe: str, file_output: str, output: str, output_given: bool) -> str:
    """The run directory ``--resume`` continues: the one the command names, never one named inside a file.

    ``--config RUN/config.json --resume`` (a run's own settings, the form the kit's refusals suggest)
    continues the run in the folder holding that file, wherever it was first written (a copied or
    moved run continues in its new place); ``--output RUN --resume`` continues RUN. A command that names
    two different run directories (``--config A/config.json --output B``, or a recipe file whose
    ``run.output`` is not ``--output``) is a :class:`ConfigError`, and so is a ``--resume`` that names
    none (the ``run.output`` inside a file is where the run was, not where the user points).

    Args:
        recipe: the ``--config`` value (a recipe name or a .json file).
        file_output: ``run.output`` as the recipe file gives it.
        output: ``run.output`` after the command line.
        output_given: whether the command line gave ``--output``.
    """
    from vclip.rundir import CONFIG_FILE

    def same(a: str | Path, b: str | Path) -> bool:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()

    path = Path(recipe)
    run_config = path if path.is_file() and path.name == CONFIG_FILE else None
    if run_config is not None:
        folder = run_config.parent
        if output_given and not same(folder, output):
            raise ConfigError(
                f"--config {run_config} holds the settings of the run in {folder}, but --output names {output}; "
                f"--resume continues one run: pass --config {output}/{CONFIG_FILE} --resume (or --output {folder})"
            )
        return str(folder)
    if not output_given:
        raise ConfigError(
            f"--resume needs the run to continue: --output RUN or --config RUN/{CONFIG_FILE}"
            + (f" (the recipe {recipe} names run.output {file_output}, where a run was, not where it is)"
               if file_output else "")
        )
    if file_output and not same(file_output, output):
        raise ConfigError(
            f"--config {recipe} names run.output {file_output}, but --output names {output}; --resume continues "
            f"one run: pass --config {output}/{CONFIG_FILE} --resume"
        )
    return output
