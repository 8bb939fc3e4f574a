"""Hugging Face Hub names and model cards: what a vclip model folder says about itself, and how a Hub
name is told from a path and fetched (offline-aware).

Paper: VideoCLIP (Xu et al., EMNLP 2021). Reference: fairseq ``examples/MMPT``, whose released
pre-trained model is ``runs/retri/videoclip/checkpoint_best.pt`` (:mod:`vclip.checkpoint`).

A vclip checkpoint folder *is* a Hub model folder (``huggingface_hub.PyTorchModelHubMixin`` on
:class:`vclip.model.VideoCLIP`): ``config.json``, ``model.safetensors`` and ``README.md``, the model card
filled in from :func:`model_card_fields` (the paper's citation, the licence, the architecture, an
evaluation section). A run's own card (its evaluation table) and the export of a run into such a folder
are :mod:`vclip.training.export`; the command is ``python -m vclip.hub``.

With ``HF_HUB_OFFLINE=1`` (the kit's tests, a machine without network) a Hub name that is not in the
local cache is one line saying how to pass a local folder instead (:func:`hub_download_errors`).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from vclip.errors import CheckpointError
from vclip.rundir import atomic_write_text, one_line

CITATION = """@inproceedings{xu-etal-2021-videoclip,
  title     = {{VideoCLIP}: Contrastive Pre-training for Zero-shot Video-Text Understanding},
  author    = {Xu, Hu and Ghosh, Gargi and Huang, Po-Yao and Okhonko, Dmytro and Aghajanyan, Armen and
               Metze, Florian and Zettlemoyer, Luke and Feichtenhofer, Christoph},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing},
  pages     = {6787--6800},
  year      = {2021}
}"""
LICENCE = ("MIT, as the vclip kit and the reference implementation (fairseq `examples/MMPT`). Weights trained on "
           "third-party data (HowTo100M, YouCook2, MSR-VTT, COIN, CrossTask) are subject to those datasets' terms.")
NO_EVALUATION = ("No evaluation was recorded with this model. Measure it with "
                 "`python -m vclip.evaluate --task all --data DATA --checkpoint FOLDER`.")
CARD_FILE = "README.md"
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*")



# ------------------------------------------------------------------------------------------ Hub names
def is_hub_name(name: str | os.PathLike) -> bool:
    """Whether ``name`` reads as a Hub repository id (``org/name``) rather than a local path."""
    text = str(name)
    return bool(_HUB_NAME.fullmatch(text)) and not text.startswith((".", "~")) and ".." not in text


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def offline_message(name: str) -> str:
    """The one line a Hub name gets when it cannot be fetched without network."""
    return (f"{name}: no such local folder, and HF_HUB_OFFLINE=1 forbids fetching it from the Hugging Face Hub "
            f"(nor is it in the local cache); pass a local folder instead: download it where the Hub is reachable "
            f"(hf download {name} --local-dir DIR) and give DIR")


@contextlib.contextmanager
def hub_download_errors(name: str):
    """Turn the Hub client's errors for ``name`` into one-line :class:`CheckpointError` messages."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    try:
        yield
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as error:
        if offline():
            raise CheckpointError(offline_message(name)) from None
        raise CheckpointError(f"{name}: cannot reach the Hugging Face Hub ({one_line(error, 160)}); "
                              "pass a local folder instead") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{name}: no such local folder, and no such model on the Hugging Face Hub") from None
    except EntryNotFoundError as error:
        raise CheckpointError(f"{name}: not a vclip model on the Hub ({one_line(error, 160)})") from None
    except HfHubHTTPError as error:
        raise CheckpointError(f"{name}: the Hugging Face Hub refused ({one_line(error, 200)})") from None


# ------------------------------------------------------------------------------------------ the model card
def model_card_fields(title: str = "VideoCLIP (vclip)", description: str = "", evaluation: str = NO_EVALUATION,
                      model_id: str = "FOLDER_OR_HUB_NAME", config=None) -> dict:
    """The values :data:`vclip.model.MODEL_CARD_TEMPLATE` is filled with."""
    architecture = "A VideoCLIPConfig (config.json)."
    if config is not None:
        architecture = (f"Hidden size {config.hidden_size}, {config.num_text_layers} text layers, "
                        f"{config.num_video_layers} video layers, {config.num_attention_heads} attention heads, "
                        f"video features of {config.video_feature_dim} per second (config.json).")
    return {"title": title, "description": description, "evaluation": evaluation, "model_id": model_id,
            "architecture": architecture, "citation": CITATION, "licence": LICENCE}


def write_model_card(folder: str | os.PathLike, model, fields: dict) -> None:
    """(Re)write ``folder/README.md`` from ``fields`` with the model's card template (the mixin's)."""
    card = model.generate_model_card(**fields)
    atomic_write_text(Path(folder) / CARD_FILE, str(card))


__all__ = ["CARD_FILE", "CITATION", "LICENCE", "NO_EVALUATION", "hub_download_errors", "is_hub_name", "model_card_fields",
           "offline", "offline_message", "write_model_card"]
