"""vclip.tokenizer: bert-base-uncased ids offline, the reference's 96-character and 61-token cuts."""

from __future__ import annotations

import pytest
import torch

from vclip import tokenizer as tk


def test_constants_follow_the_reference_lengths():
    assert tk.MAX_VIDEO_LEN == 32
    assert tk.MAX_TEXT_TOKENS == 96 - 32 - 3 == 61
    assert tk.MAX_CAPTION_CHARS == 96 and tk.MAX_CAPTION_TOKENS == 32


def test_load_tokenizer_is_cached_and_uses_bert_base_uncased_ids():
    tokenizer = tk.load_tokenizer()
    assert tk.load_tokenizer() is tokenizer
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id) == (101, 102, 0)
    # Known bert-base-uncased ids: "hello" 7592, "world" 2088; lower-casing and accent stripping.
    assert tk.tokenize_text("Hello WORLD") == [7592, 2088]
    assert tk.tokenize_text("Café") == tk.tokenize_text("cafe")
    assert 100 not in tk.tokenize_text("chop the onions and whisk the eggs")  # no [UNK]


def test_tokenize_caption_cuts_96_characters_before_tokenising():
    text = "onion " * 30  # 180 characters, 30 words
    ids = tk.tokenize_caption(text)
    assert ids == tk.tokenize_text(text[:96])
    assert len(ids) == 16  # 96 characters = 16 whole "onion " words
    assert tk.tokenize_caption(None) == [] and tk.tokenize_caption(3.5) == []
    long_ids = list(range(1000, 1050))
    assert tk.truncate_caption_tokens(long_ids) == long_ids[:32]


def test_build_text_batch_layout_and_61_token_cap():
    short = [2000, 2001]
    long = list(range(2000, 2100))  # 100 tokens
    input_ids, attention_mask = tk.build_text_batch([short, long])
    assert input_ids.dtype == torch.long and attention_mask.dtype == torch.bool
    assert input_ids.shape == (2, 1 + 61 + 1)
    assert input_ids[0, :4].tolist() == [101, 2000, 2001, 102]
    assert input_ids[0, 4:].eq(0).all() and attention_mask[0].tolist() == [True] * 4 + [False] * 59
    assert input_ids[1, 0] == 101 and input_ids[1, -1] == 102
    assert input_ids[1, 1:-1].tolist() == long[:61]
    assert attention_mask[1].all()


def test_build_text_batch_pad_to_and_errors():
    input_ids, attention_mask = tk.build_text_batch([[2000]], pad_to=10)
    assert input_ids.shape == attention_mask.shape == (1, 10)
    assert attention_mask.sum() == 3
    with pytest.raises(ValueError, match="pad_to=2"):
        tk.build_text_batch([[2000, 2001]], pad_to=2)
    with pytest.raises(ValueError, match="at least one text"):
        tk.build_text_batch([])
    with pytest.raises(ValueError, match=r"text 1: .*found \[101\]"):
        tk.build_text_batch([[2000], [101, 2000]])
    with pytest.raises(ValueError, match="found \\[-1\\]"):
        tk.build_text_batch([[2000, -1]])


def test_encode_texts_matches_tokenize_then_build():
    texts = ["Add the chopped onions.", "whisk"]
    input_ids, attention_mask = tk.encode_texts(texts)
    expected = tk.build_text_batch([tk.tokenize_text(text) for text in texts])
    assert torch.equal(input_ids, expected[0]) and torch.equal(attention_mask, expected[1])
    single_ids, _ = tk.encode_texts("whisk")
    assert single_ids.shape[0] == 1
    cut_ids, _ = tk.encode_texts(["onion " * 30], max_chars=tk.MAX_CAPTION_CHARS)
    assert cut_ids.shape[1] == 16 + 2
    with pytest.raises(ValueError, match="text 1: expected a string"):
        tk.encode_texts(["ok", None])


def test_real_evaluation_sentences_fit_the_layout(real_annotations):
    """YouCook2 / MSR-VTT sentences: no [UNK], never cut by the 61-token cap; some exceed 96 characters,
    which is why evaluation texts do not get the pre-training caption cut."""
    import csv

    for name, column, n_rows in [
        ("youcook2_validation.csv", "text", 3350),
        ("msrvtt_jsfusion_test.csv", "sentence", 1000),
    ]:
        with open(real_annotations / name, newline="", encoding="utf-8") as handle:
            sentences = [row[column] for row in csv.DictReader(handle)]
        assert len(sentences) == n_rows
        token_lists = tk.load_tokenizer()(sentences, add_special_tokens=False)["input_ids"]
        assert all(100 not in ids for ids in token_lists), f"{name}: [UNK] in a sentence"
        assert max(len(ids) for ids in token_lists) <= tk.MAX_TEXT_TOKENS
        long_texts = [text for text in sentences if len(text) > tk.MAX_CAPTION_CHARS]
        assert long_texts, f"{name}: expected some sentences longer than 96 characters"
        input_ids, _ = tk.encode_texts(long_texts[:4])
        cut_ids, _ = tk.encode_texts(long_texts[:4], max_chars=tk.MAX_CAPTION_CHARS)
        assert input_ids.shape[1] > cut_ids.shape[1] or not torch.equal(
            input_ids[:, : cut_ids.shape[1]], cut_ids
        )
