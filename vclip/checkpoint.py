"""Weights on disk: the reference release's ``checkpoint_best.pt`` layout and vclip's native format (a Hub model folder).

Paper: VideoCLIP (Xu et al., EMNLP 2021); the released pre-trained model is fairseq ``examples/MMPT``
``runs/retri/videoclip/checkpoint_best.pt``.

Reference (fairseq ``examples/MMPT``):

* ``mmpt/models/fairseqmmmodel.py``: the model is kept as ``self.mmmodel``, so every weight key
  starts with ``mmmodel.``; the names below it are transformers 3.4 BERT names, identical to
  ``vclip.model.VideoCLIP``'s (``video_encoder.videomlp.*``, ``video_encoder.bert.*``,
  ``text_encoder.*``).
* ``mmpt/tasks/task.py`` ``load_checkpoint``: weights under ``"model"``, stored float16 (``--fp16``),
  cast back to float, loaded with ``strict=False`` (so mismatches pass silently there).

Here loading is **strict**: every missing, unexpected or mis-shaped weight raises an error listing
them. Deliberately ignored keys: the two ``embeddings.position_ids`` buffers (and ``token_type_ids``
buffers if present), which transformers 3.4 saved but which are constants (``arange`` / zeros) that
newer transformers no longer store. The unused BERT pooler weights are kept (the towers have a
pooler, as the reference's), so nothing else is dropped.

Reading a file safely (the release's pickle, the trainer state, safetensors) is :mod:`vclip.weights`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

import torch

from vclip.errors import CheckpointError
from vclip.model import VideoCLIP
from vclip.model_config import CONFIG_NAME, WEIGHTS_NAME, VideoCLIPConfig
from vclip.rundir import RunDir, one_line, read_json_file
from vclip.weights import InertObject, safe_torch_load, unreadable_error

logger = logging.getLogger(__name__)

PREFIX = "mmmodel."
IGNORED_BUFFERS = (
    "video_encoder.bert.embeddings.position_ids",
    "video_encoder.bert.embeddings.token_type_ids",
    "text_encoder.embeddings.position_ids",
    "text_encoder.embeddings.token_type_ids",
)
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.")


# ------------------------------------------------------------------ the reference layout
def _find_value(obj, key: str, depth: int = 0):
    """First value stored under ``key`` anywhere in dicts / lists / placeholders (bookkeeping search)."""
    if depth > 12:
        return None
    if isinstance(obj, InertObject):
        children = [obj.vclip_state, obj.vclip_items, list(obj.vclip_args)]
    elif isinstance(obj, dict):
        if key in obj and isinstance(obj[key], int):
            return obj[key]
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    else:
        return None
    for child in children:
        found = _find_value(child, key, depth + 1)
        if found is not None:
            return found
    return None


def _layer_count(keys, prefix: str) -> int:
    indices = {
        int(m.group(1)) for k in keys if k.startswith(prefix) and (m := _LAYER.match(k[len(prefix) :]))
    }
    if indices != set(range(len(indices))):
        raise CheckpointError(f"{prefix}encoder.layer.* indices are not contiguous from 0: {sorted(indices)}")
    return len(indices)


def infer_config(state: dict[str, torch.Tensor], source: str = "checkpoint", **overrides) -> VideoCLIPConfig:
    """Architecture from tensor shapes of a (prefix-stripped) VideoCLIP state dict.

    Attention heads are ``hidden / 64`` (BERT's head size) unless ``overrides`` say otherwise.
    """
    required = [
        "text_encoder.embeddings.word_embeddings.weight",
        "text_encoder.embeddings.position_embeddings.weight",
        "text_encoder.embeddings.token_type_embeddings.weight",
        "text_encoder.encoder.layer.0.intermediate.dense.weight",
        "video_encoder.videomlp.linear1.weight",
    ]
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{source}: cannot infer the architecture, missing weights {missing}")
    vocab, hidden = state[required[0]].shape
    values = {
        "vocab_size": int(vocab),
        "hidden_size": int(hidden),
        "max_position_embeddings": int(state[required[1]].shape[0]),
        "type_vocab_size": int(state[required[2]].shape[0]),
        "intermediate_size": int(state[required[3]].shape[0]),
        "video_feature_dim": int(state[required[4]].shape[1]),
        "num_text_layers": _layer_count(state, "text_encoder."),
        "num_video_layers": _layer_count(state, "video_encoder.bert."),
    }
    if "num_attention_heads" not in overrides:
        if hidden % 64:
            raise CheckpointError(
                f"{source}: hidden size {hidden} is not a multiple of 64, so the number of attention heads "
                "cannot be inferred; pass num_attention_heads="
            )
        values["num_attention_heads"] = int(hidden // 64)
    values.update(overrides)
    return VideoCLIPConfig.from_dict(values, source=source)


def mmpt_state_to_vclip(model_state: dict, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Strip ``mmmodel.``, drop the constant position/token-type buffers, cast to float32."""
    unprefixed = sorted(key for key in model_state if not str(key).startswith(PREFIX))
    if unprefixed:
        raise CheckpointError(f"{source}: weights without the reference's '{PREFIX}' prefix: {unprefixed[:10]}")
    state = {}
    for key, value in model_state.items():
        name = key[len(PREFIX) :]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: '{key}' is a {type(value).__name__}, expected a tensor")
        if name in IGNORED_BUFFERS:
            continue
        state[name] = value.float() if value.is_floating_point() else value
    return state


def load_mmpt_checkpoint(path: str | os.PathLike, **config_overrides) -> VideoCLIP:
    """Load the reference's ``checkpoint_best.pt`` layout into a :class:`VideoCLIP` (float32, eval mode).

    The architecture is inferred from tensor shapes (smaller checkpoints of the same layout load
    too); attention heads are hidden/64 unless the file's bookkeeping config has
    ``num_attention_heads`` or ``config_overrides`` give it. Strict: missing, unexpected or
    mis-shaped weights raise a :class:`CheckpointError` (a ``ValueError``) listing them.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path}")
    checkpoint = safe_torch_load(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: expected a fairseq checkpoint dict, got {type(checkpoint).__name__}")
    if "model" in checkpoint:
        model_state = checkpoint["model"]
    elif checkpoint and all(str(key).startswith(PREFIX) for key in checkpoint):
        model_state = checkpoint  # a bare state dict of the same layout
    else:
        raise CheckpointError(
            f"{path}: no 'model' entry (keys: {sorted(map(str, checkpoint))[:10]}); expected the fairseq layout "
            "of checkpoint_best.pt"
        )
    if not isinstance(model_state, dict):
        raise CheckpointError(f"{path}: 'model' is a {type(model_state).__name__}, expected a dict of tensors")
    state = mmpt_state_to_vclip(model_state, source=path)
    overrides = dict(config_overrides)
    if "num_attention_heads" not in overrides:
        bookkeeping = {key: value for key, value in checkpoint.items() if key != "model"}
        heads = _find_value(bookkeeping, "num_attention_heads")
        if heads is not None:
            overrides["num_attention_heads"] = heads
    config = infer_config(state, source=path, **overrides)
    model = VideoCLIP(config)
    try:
        model.load_weights(state, source=path)
    except ValueError as error:  # missing, unexpected or mis-shaped weights, listed
        raise CheckpointError(one_line(error, 2000)) from None
    logger.info(
        "loaded %s: H=%d, text %d layers, video %d layers, %d heads",
        path,
        config.hidden_size,
        config.num_text_layers,
        config.num_video_layers,
        config.num_attention_heads,
    )
    return model.eval()


def save_mmpt_checkpoint(
    model: VideoCLIP, path: str | os.PathLike, dtype: torch.dtype = torch.float16
) -> None:
    """Write ``model`` in the reference's layout (loadable by MMPT's ``Task.load_checkpoint``).

    ``{"model": {"mmmodel.<name>": tensor}, "cfg": {...}, ...}`` with float weights in ``dtype``
    (float16 as the release), the two ``position_ids`` buffers (int64, (1, max_positions)) and the
    pooler weights. Bookkeeping is plain dicts, so ``torch.load(weights_only=True)`` reads the file.
    """
    config = model.config
    weights: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        weights[PREFIX + name] = value.to(dtype) if value.is_floating_point() else value.clone()
    position_ids = torch.arange(config.max_position_embeddings, dtype=torch.long).unsqueeze(0)
    weights[PREFIX + "video_encoder.bert.embeddings.position_ids"] = position_ids.clone()
    weights[PREFIX + "text_encoder.embeddings.position_ids"] = position_ids.clone()
    checkpoint = {
        "args": None,
        "cfg": {"model": {"model_cls": "MMFusionSeparate", "vclip_config": dataclasses.asdict(config)}},
        "model": weights,
        "optimizer_history": [],
        "extra_state": {},
        "last_optimizer_state": None,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)


# ------------------------------------------------------------------ any checkpoint
def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The file or native folder that ``path`` names (a run directory follows ``checkpoints/LATEST``)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
        return path
    run = RunDir(path)
    if run.latest_path.is_file():
        return run.latest(required=(WEIGHTS_NAME, CONFIG_NAME))
    if run.checkpoints.is_dir():
        raise FileNotFoundError(
            f"{path} is a run directory without checkpoints/LATEST (no complete checkpoint yet?)"
        )
    raise FileNotFoundError(
        f"{path} is neither a native checkpoint folder ({CONFIG_NAME} + {WEIGHTS_NAME}), a run directory "
        "(checkpoints/LATEST) nor a reference .pt file"
    )


def _load_native(folder: Path) -> VideoCLIP:
    from safetensors import safe_open

    read_json_file(folder / CONFIG_NAME)  # binary or broken JSON: one line naming the file
    weights = folder / WEIGHTS_NAME
    try:
        with safe_open(weights, framework="pt"):  # reads and checks the header only
            pass
    except Exception as error:
        raise unreadable_error(weights, error, "a safetensors file of weights") from None
    try:
        return VideoCLIP.from_pretrained(folder)
    except CheckpointError:
        raise
    except Exception as error:  # a truncated safetensors file, weights of another architecture
        raise CheckpointError(f"{folder}: not a loadable vclip checkpoint ({one_line(error, 240)})") from None


def load_model(path: str | os.PathLike, **config_overrides) -> VideoCLIP:
    """Load any checkpoint (eval mode): a Hub model folder (the kit's checkpoint folders are), a run
    directory, a reference ``.pt`` file, or a Hugging Face Hub name ``org/name`` (:mod:`vclip.huggingface`).

    A path that holds no checkpoint raises ``FileNotFoundError``; a file that is not a usable
    checkpoint, or a Hub name that cannot be fetched (offline: how to pass a folder instead), raises
    :class:`CheckpointError`; both with a one-line message naming the path.
    """
    from vclip.huggingface import is_hub_name

    if not os.path.exists(path) and is_hub_name(path):
        if config_overrides:
            raise ValueError(f"config overrides {sorted(config_overrides)} apply to reference .pt files only")
        return VideoCLIP.from_pretrained(str(path))
    resolved = resolve_checkpoint(path)
    if resolved.is_dir():
        if config_overrides:
            raise ValueError(f"config overrides {sorted(config_overrides)} apply to reference .pt files only")
        try:
            return _load_native(resolved)
        except CheckpointError as error:
            if Path(path).resolve() == resolved.resolve():
                raise
            # A run directory whose LATEST is damaged: refuse (evaluating an older checkpoint instead would
            # report another model than the one asked for), and name the older ones the user may pick.
            older = [folder for folder in RunDir(path).resume_candidates()[1:] if (folder / WEIGHTS_NAME).is_file()]
            hint = f"; to use an older checkpoint, pass its folder, e.g. {older[0]}" if older else ""
            raise CheckpointError(f"{error} (the checkpoint {RunDir(path).latest_path} names){hint}") from None
    if resolved.name == WEIGHTS_NAME:
        return _load_native(resolved.parent)
    return load_mmpt_checkpoint(resolved, **config_overrides)


__all__ = [
    "infer_config",
    "load_mmpt_checkpoint",
    "load_model",
    "resolve_checkpoint",
    "save_mmpt_checkpoint",
]
