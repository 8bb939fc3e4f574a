"""The VideoCLIP model: a video transformer and a text transformer, compared by a raw dot product.

Paper: VideoCLIP (Xu et al., EMNLP 2021, arXiv 2109.14084), section 3.1 "Video and Text Encoding":
S3D features (one 512-d vector per second) pass through a trainable MLP into a 6-layer BERT video
tower initialised from BERT's first 6 layers; text goes through a 12-layer BERT; each side is
average-pooled into one vector.

Reference (fairseq ``examples/MMPT``), reproduced exactly here:

* ``mmpt/models/mmfusion.py`` ``MMFusionSeparate`` (``forward_video``, ``forward_text``) and the
  action-localisation variant (``[CLS]`` masked out of attention);
* ``mmpt/models/transformermodel.py`` ``MMBertForEncoder`` (``videomlp`` + ``bert``; its ``from_pretrained``
  is :func:`vclip.bert.init_from_bert`);
* ``mmpt/modules/mm.py`` ``VideoTokenMLP`` (Linear -> GELU -> LayerNorm(eps 1e-5) -> Linear) and
  ``MMBertEmbeddings`` (``[CLS] MLP(v_1..v_32) [SEP]``, positions 0..33, token types 0).

Layout of the video tower (always 34 positions, as the reference: shorter videos are zero-padded to
32 seconds, so the video ``[SEP]`` sits at index 33 *after* the padding)::

    index     0      1 .. 32                 33
    input     [CLS]  MLP(v_1) .. MLP(v_32)   [SEP]
    attended  1*     vmask                   1        (* 0 when attend_cls=False)
    pooled    no     vmask                   yes      -> mean = pooled_video (B, H)

The text tower is a plain BERT on ``[CLS] text [SEP] [PAD]...`` (see ``vclip.tokenizer``), pooled
over the text tokens and the final ``[SEP]`` (not ``[CLS]``). There is no projection head, no
normalisation and no temperature: similarity is ``pooled_video @ pooled_text.T``.

Both towers are Hugging Face ``transformers`` ``BertModel`` s (pooler included: it is in the
reference checkpoint but its output is never used), so parameter names match the reference's and a
reference checkpoint maps by prefix (``vclip.checkpoint``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from transformers import BertModel
from transformers.activations import ACT2FN

from vclip.model_config import CONFIG_NAME, PRESETS, WEIGHTS_NAME, VideoCLIPConfig
from vclip.model_inputs import padded_video, text_attention

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

VideoCLIP (Xu et al., EMNLP 2021): a video tower over per-second S3D features and a BERT text tower,
trained with a symmetric InfoNCE loss on overlapped video-text clips with retrieval-augmented negatives.
This folder was written by vclip, a teaching and reproduction kit of the paper (reference
implementation: [fairseq `examples/MMPT`]({{ repo_url }}); paper: {{ paper_url }}).

{{ description }}

## Architecture

{{ architecture }}

## Evaluation

{{ evaluation }}

## How to use

```python
from vclip.model import VideoCLIP

model = VideoCLIP.from_pretrained("{{ model_id }}")  # a local folder or a Hugging Face Hub name
```

Every evaluation of the kit takes the folder: `python -m vclip.evaluate --task all --data DATA --checkpoint {{ model_id }}`.
The video tower reads S3D `video_embedding` features (512 per second, `python -m vclip.extract`).

## Citation

```bibtex
{{ citation }}
```

## Licence

{{ licence }}
"""


@dataclass
class VideoCLIPOutput:
    """What :meth:`VideoCLIP.forward` returns.

    Attributes:
        pooled_video: (B, H) mean of the video tower's last layer over valid seconds and [SEP].
        pooled_text: (B, H) mean of the text tower's last layer over text tokens and the final [SEP].
    """

    pooled_video: torch.Tensor
    pooled_text: torch.Tensor

    def logits_per_video(self) -> torch.Tensor:
        """(B, B) raw dot products: row i is video i against every text (no temperature)."""
        return self.pooled_video @ self.pooled_text.T

    def logits_per_text(self) -> torch.Tensor:
        """(B, B) raw dot products: row i is text i against every video."""
        return self.pooled_text @ self.pooled_video.T


class VideoTokenMLP(nn.Module):
    """Per-second projection of S3D features into the video tower (reference ``mm.py`` VideoTokenMLP).

    Linear(512 -> H) -> GELU -> LayerNorm(H, eps 1e-5) -> Linear(H -> H); no dropout.
    """

    def __init__(self, config: VideoCLIPConfig):
        super().__init__()
        self.linear1 = nn.Linear(config.video_feature_dim, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.video_mlp_layer_norm_eps)
        self.linear2 = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, vfeats: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, T, H)
        return self.linear2(self.LayerNorm(self.activation(self.linear1(vfeats))))


class VideoEncoder(nn.Module):
    """The video tower (reference ``MMBertForEncoder``): ``videomlp`` + a BERT with its first layers."""

    def __init__(self, config: VideoCLIPConfig):
        super().__init__()
        self.config = config
        self.videomlp = VideoTokenMLP(config)
        self.bert = BertModel(config.bert_config(config.num_video_layers), add_pooling_layer=True)

    def forward(self, vfeats: torch.Tensor, vmask: torch.Tensor, attend_cls: bool = True) -> torch.Tensor:
        """Last-layer states of ``[CLS] MLP(v_1..v_32) [SEP]``: (B, 32, F) padded features, (B, 32) bool
        mask -> (B, 34, H) (reference ``MMBertEmbeddings``: [CLS] and [SEP] from the word embeddings,
        positions 0..33, token type 0; ``attend_cls=False`` masks [CLS] out of attention)."""
        batch = vfeats.shape[0]
        video_tokens = self.videomlp(vfeats)  # (B, 32, H)
        special = self.bert.embeddings.word_embeddings(
            torch.tensor([self.config.cls_token_id, self.config.sep_token_id], device=vfeats.device)
        )  # (2, H)
        inputs_embeds = torch.cat(
            [special[0].expand(batch, 1, -1), video_tokens, special[1].expand(batch, 1, -1)], dim=1
        )  # (B, 34, H)
        ones = torch.ones(batch, 1, dtype=torch.bool, device=vfeats.device)
        attention_mask = torch.cat([ones if attend_cls else ~ones, vmask, ones], dim=1)  # (B, 34)
        length = inputs_embeds.shape[1]
        return self.bert(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask.long(),
            token_type_ids=torch.zeros(batch, length, dtype=torch.long, device=vfeats.device),
            position_ids=torch.arange(length, device=vfeats.device).unsqueeze(0),  # 0..33
        ).last_hidden_state


def _init_like_bert(module: nn.Module, std: float) -> None:
    """BERT's _init_weights: Linear/Embedding N(0, std), biases 0, LayerNorm weight 1 and bias 0."""
    for child in module.modules():
        if isinstance(child, nn.Linear):
            nn.init.normal_(child.weight, mean=0.0, std=std)
            if child.bias is not None:
                nn.init.zeros_(child.bias)
        elif isinstance(child, nn.LayerNorm):
            nn.init.ones_(child.weight)
            nn.init.zeros_(child.bias)


class VideoCLIP(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="vclip",
    license="mit",
    paper_url="https://arxiv.org/abs/2109.14084",
    repo_url="https://github.com/facebookresearch/fairseq/tree/main/examples/MMPT",  # the reference implementation
    tags=["video-text-retrieval", "videoclip", "contrastive-learning"],
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """VideoCLIP's two towers (reference ``MMFusionSeparate``). Batch size >= 1 everywhere.

    ``VideoCLIP(config)`` and :meth:`from_preset` give a model in train mode (dropout on);
    :meth:`from_pretrained` and the loaders of ``vclip.checkpoint`` give it in eval mode.

    A Hugging Face Hub model through ``huggingface_hub.PyTorchModelHubMixin``: :meth:`save_pretrained`
    writes the folder (``config.json``, ``model.safetensors``, a ``README.md`` model card),
    :meth:`from_pretrained` reads a local folder or a Hub name, ``push_to_hub("org/name")`` uploads
    (``docs/model.md``). The kit's checkpoints are these folders.
    """

    def __init__(self, config: VideoCLIPConfig):
        super().__init__()
        self.config = config
        # Value checks of the inputs (finite features, token ids, [CLS] first) read tensors back to the
        # host; the trainer checks its batches on the host before they move and turns these off.
        self.check_input_values = True
        self.video_encoder = VideoEncoder(config)
        self.text_encoder = BertModel(config.bert_config(config.num_text_layers), add_pooling_layer=True)
        _init_like_bert(self.video_encoder.videomlp, config.initializer_range)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, name: str, **overrides) -> VideoCLIP:
        """A new model from a named preset (``paper``, ``minilm``, ``tiny``) plus config overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        values = {**PRESETS[name], **overrides}
        if values.get("init_from"):
            source = values.pop("init_from")
            return cls.from_bert(source, video_layers=values.pop("num_video_layers", 6), **values)
        return cls(VideoCLIPConfig.from_dict(values, source=f"preset {name!r}"))

    @classmethod
    def from_bert(cls, name_or_path: str | os.PathLike, video_layers: int = 6, **overrides) -> VideoCLIP:
        """A new model (train mode) whose towers start from a pre-trained BERT, as the paper's.

        The shapes come from the checkpoint's config.json; the text tower gets every BERT weight (all
        layers, unless ``num_text_layers`` overrides it with fewer), the video tower the embeddings,
        the first ``video_layers`` layers and the pooler; the video MLP is initialised as BERT
        initialises a Linear (N(0, 0.02), bias 0, LayerNorm 1 and 0). Reference:
        ``mmpt/models/transformermodel.py`` (``MMBertForEncoder.from_pretrained``).

        Args:
            name_or_path: a checkpoint folder (config.json, model.safetensors, vocab.txt) or a hub
                name such as ``bert-base-uncased`` (fetched where the hub is reachable).
            video_layers: BERT layers copied into the video tower (the paper: 6).
            overrides: other VideoCLIPConfig fields (dropout, ``attn_implementation``...).
        Raises:
            vclip.bert.BertCheckpointError: unreachable name, not a BERT encoder (the missing weight
                names), fewer layers than asked, or a vocabulary that is not the kit's tokenizer's.
        """
        from vclip.bert import init_from_bert

        return init_from_bert(cls, name_or_path, video_layers, **overrides)

    # ------------------------------------------------------------------ inputs
    def check_inputs(self, vfeats, vmask, input_ids, attention_mask) -> None:
        """Every check :meth:`forward` makes of its inputs, without running the towers (:mod:`vclip.model_inputs`)."""
        self._video_inputs(vfeats, vmask)
        text_attention(self.config, input_ids, attention_mask, self.check_input_values)

    def _video_inputs(self, vfeats, vmask) -> tuple[torch.Tensor, torch.Tensor, int]:
        weight = self.video_encoder.videomlp.linear1.weight  # the video tower's dtype and device
        return padded_video(self.config, vfeats, vmask, self.check_input_values, weight.dtype, weight.device)

    # ------------------------------------------------------------------ towers
    def video_sequence_states(
        self, vfeats: torch.Tensor, vmask: torch.Tensor | None = None, attend_cls: bool = True
    ) -> torch.Tensor:
        """Last-layer states of the whole video sequence ``[CLS] v_1..v_32 [SEP]``: (B, 34, H).

        The reference's ``forward_video(..., output_hidden_states=True)`` (DiDeMo uses rows 1..32,
        padded rows included). Input as :meth:`encode_video`.
        """
        return self._video_states(vfeats, vmask, attend_cls)[0]

    def _video_states(
        self, vfeats: torch.Tensor, vmask: torch.Tensor | None, attend_cls: bool
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        vfeats, vmask, seconds = self._video_inputs(vfeats, vmask)
        return self.video_encoder(vfeats, vmask, attend_cls), vmask, seconds

    def video_token_states(
        self, vfeats: torch.Tensor, vmask: torch.Tensor | None = None, attend_cls: bool = True
    ) -> torch.Tensor:
        """Per-second last-layer states (positions 1..T): (B, T, H), T = min(input seconds, 32).

        ``attend_cls=False`` masks ``[CLS]`` out of attention, as the reference's CrossTask and COIN
        models do (dummy caps ``[CLS, SEP, PAD, SEP]`` with masks ``[0, 1, 0, 1]``).
        """
        states, _, seconds = self._video_states(vfeats, vmask, attend_cls)
        return states[:, 1 : 1 + seconds]

    def encode_video(self, vfeats: torch.Tensor, vmask: torch.Tensor | None = None) -> torch.Tensor:
        """One embedding per video: (B, H).

        Args:
            vfeats: (B, T, 512) float S3D ``video_embedding`` features, one row per second. Only the
                first 32 seconds are used when T > 32, as the reference; T < 32 is zero-padded to 32
                (the video [SEP] always sits at position 33). Must be finite.
            vmask: (B, T) bool, True on real seconds (default: all True). A video with no valid
                second is pooled over its [SEP] alone, as the reference.

        Returns:
            (B, H): mean of the last layer over valid seconds plus [SEP] (not [CLS]).
        """
        states, vmask, _ = self._video_states(vfeats, vmask, attend_cls=True)
        batch = states.shape[0]
        ones = torch.ones(batch, 1, dtype=states.dtype, device=states.device)
        weights = torch.cat([torch.zeros_like(ones), vmask.to(states.dtype), ones], dim=1)  # (B, 34)
        return _weighted_mean(states, weights)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One embedding per text: (B, H).

        Args:
            input_ids: (B, L) long, laid out ``[CLS] text [SEP] [PAD]...`` (``vclip.tokenizer``).
            attention_mask: (B, L) bool, True on [CLS], text and [SEP].

        Returns:
            (B, H): mean of the last layer over the text tokens and the final [SEP] (not [CLS]).
        """
        attention_mask = text_attention(self.config, input_ids, attention_mask, self.check_input_values)
        input_ids = input_ids.to(self.text_encoder.embeddings.word_embeddings.weight.device)
        attention_mask = attention_mask.to(input_ids.device)
        states = self.text_encoder(
            input_ids=input_ids.long(),
            attention_mask=attention_mask.long(),
            token_type_ids=torch.zeros_like(input_ids, dtype=torch.long),
        ).last_hidden_state  # (B, L, H)
        weights = attention_mask.to(states.dtype)
        weights[:, 0] = 0  # no [CLS]
        return _weighted_mean(states, weights)

    def forward(
        self,
        vfeats: torch.Tensor,
        vmask: torch.Tensor | None,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> VideoCLIPOutput:
        """Both towers on B (video, text) pairs -> VideoCLIPOutput((B, H), (B, H))."""
        return VideoCLIPOutput(
            pooled_video=self.encode_video(vfeats, vmask),
            pooled_text=self.encode_text(input_ids, attention_mask),
        )

    # ------------------------------------------------------------------ the Hub model folder
    def _save_pretrained(self, save_directory) -> None:
        """The mixin's hook: ``model.safetensors`` (weights as they are) and ``config.json`` (the
        :class:`VideoCLIPConfig`); the mixin adds ``README.md`` (:mod:`vclip.huggingface` fills it in)."""
        from safetensors.torch import save_file

        state = {key: value.detach().contiguous().cpu() for key, value in self.state_dict().items()}
        save_file(
            state, os.path.join(save_directory, WEIGHTS_NAME), metadata={"format": "pt", "vclip": "VideoCLIP"}
        )
        with open(os.path.join(save_directory, CONFIG_NAME), "w", encoding="utf-8") as handle:
            json.dump(dataclasses.asdict(self.config), handle, indent=2, sort_keys=True)
            handle.write("\n")

    def save_pretrained(self, save_directory: str | os.PathLike, *, model_card_kwargs: dict | None = None,
                        **kwargs):
        """Write the Hub model folder (``config.json``, ``model.safetensors``, ``README.md``) into
        ``save_directory``; ``model_card_kwargs`` fill the card (:func:`vclip.huggingface.model_card_fields`),
        ``push_to_hub=True, repo_id="org/name"`` also uploads it (the mixin's ``save_pretrained``)."""
        from vclip.huggingface import model_card_fields

        fields = {**model_card_fields(config=self.config), **(model_card_kwargs or {})}
        return super().save_pretrained(save_directory, model_card_kwargs=fields, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *,
                        map_location: str | torch.device = "cpu", **kwargs) -> VideoCLIP:
        """Load a Hub model folder (strict: every weight must match, safetensors only). Eval mode.

        ``pretrained_model_name_or_path`` is a local folder written by :meth:`save_pretrained` or a Hub
        name (``org/name``, fetched through the mixin; with ``HF_HUB_OFFLINE=1`` only from the local
        cache, else a one-line :class:`vclip.errors.CheckpointError` saying how to pass a folder).
        """
        from vclip.huggingface import hub_download_errors, is_hub_name
        from vclip.rundir import read_json_file

        path = str(pretrained_model_name_or_path)
        if os.path.isdir(path):
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                if not os.path.isfile(os.path.join(path, name)):
                    raise FileNotFoundError(f"{path} is not a vclip checkpoint folder: {name} is missing")
            read_json_file(os.path.join(path, CONFIG_NAME))  # binary or broken JSON: one line naming the file
            return super().from_pretrained(path, map_location=str(map_location), **kwargs)
        if not is_hub_name(path):
            raise FileNotFoundError(f"{path} is not a vclip checkpoint folder: config.json is missing")
        with hub_download_errors(path):
            return super().from_pretrained(path, map_location=str(map_location), **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         config=None, map_location: str = "cpu", strict: bool = True, **unused) -> VideoCLIP:
        """The mixin's hook: the weights file of a local folder or a Hub repository, loaded strictly."""
        from huggingface_hub import hf_hub_download

        from vclip.errors import CheckpointError
        from vclip.weights import load_weights_file

        if not strict:
            raise ValueError("vclip loads checkpoints strictly (every weight must match); strict=False is refused")
        if unused:
            raise TypeError(f"VideoCLIP.from_pretrained got unexpected arguments {sorted(unused)}")
        if os.path.isdir(model_id):
            weights = os.path.join(model_id, WEIGHTS_NAME)
        else:
            weights = hf_hub_download(repo_id=model_id, filename=WEIGHTS_NAME, revision=revision, cache_dir=cache_dir,
                                      force_download=force_download, token=token, local_files_only=local_files_only)
        if config is None:
            raise CheckpointError(f"{model_id}: no {CONFIG_NAME} (a vclip model folder holds the VideoCLIPConfig)")
        if not isinstance(config, VideoCLIPConfig):
            if not isinstance(config, dict):
                raise CheckpointError(f"{model_id}/{CONFIG_NAME}: expected a JSON object, found {type(config).__name__}")
            config = VideoCLIPConfig.from_dict(config, source=f"{model_id}/{CONFIG_NAME}")
        model = cls(config)
        state = load_weights_file(weights)
        model.load_weights(state, source=weights)
        return model.to(map_location).eval()

    def load_weights(self, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Strictly load ``state``: missing, unexpected or mis-shaped weights raise, listing them."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        mismatched = sorted(
            f"{key}: file {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
            for key in set(own) & set(state)
            if tuple(own[key].shape) != tuple(state[key].shape)
        )
        if missing or unexpected or mismatched:
            raise ValueError(
                f"{source}: weights do not match the model. missing: {missing or 'none'}; "
                f"unexpected: {unexpected or 'none'}; wrong shapes: {mismatched or 'none'}"
            )
        with torch.no_grad():
            for key, value in own.items():
                value.copy_(state[key].to(dtype=value.dtype, device=value.device))

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())


def _weighted_mean(states: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, L, H), (B, L) non-negative weights -> (B, H) weighted mean along L (reference pooling)."""
    weights = weights / weights.sum(dim=1, keepdim=True)
    return torch.bmm(weights.unsqueeze(1), states).squeeze(1)


def count_matmul_flops(
    config: VideoCLIPConfig, video_batch: int = 0, text_batch: int = 0, text_len: int = 0
) -> int:
    """Multiply-add FLOPs (2 per MAC) of the towers' matrix products for one forward pass.

    Counts Q/K/V/output projections, the attention scores and weighted sums, the FFN, and the video
    MLP (video tower: 34 positions); ignores the unused pooler, LayerNorm, softmax and GELU.
    """
    hidden, ffn = config.hidden_size, config.intermediate_size

    def tower(batch: int, length: int, layers: int) -> int:
        per_layer = (
            2 * batch * length * (4 * hidden * hidden + 2 * hidden * ffn)
            + 2 * 2 * batch * length * length * hidden
        )
        return layers * per_layer

    video_len = config.max_video_len + 2
    flops = tower(video_batch, video_len, config.num_video_layers)
    flops += 2 * video_batch * config.max_video_len * (config.video_feature_dim * hidden + hidden * hidden)
    flops += tower(text_batch, text_len, config.num_text_layers)
    return int(flops)


__all__ = [
    "VideoCLIP",
    "VideoCLIPOutput",
    "VideoTokenMLP",
    "count_matmul_flops",
]
