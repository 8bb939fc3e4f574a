"""Starting both towers from a pre-trained BERT (vclip.bert, VideoCLIP.from_bert, --init-from)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel

from vclip.bert import BertCheckpointError, open_bert
from vclip.model import VideoCLIP
from vclip.pretrain import main
from vclip.tokenizer import vocab_path

LAYERS, HIDDEN = 8, 32


def save_small_bert(folder: Path, prefix: str = "") -> Path:
    """A random 8-layer, 32-wide BERT saved as the hub stores one, with bert-base-uncased's vocabulary."""
    torch.manual_seed(1)
    config = BertConfig(vocab_size=30522, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    bert = BertModel(config, add_pooling_layer=True)
    bert.save_pretrained(folder)
    if prefix:  # BertForPreTraining's layout: the encoder under bert., a head under cls.
        state = {prefix + k: v for k, v in load_file(folder / "model.safetensors").items()}
        state["cls.predictions.bias"] = torch.zeros(30522)
        save_file(state, folder / "model.safetensors")
    shutil.copy(vocab_path(), folder / "vocab.txt")
    return folder


@pytest.fixture(scope="module")
def small_bert(tmp_path_factory) -> Path:
    return save_small_bert(tmp_path_factory.mktemp("bert") / "small-bert")


@pytest.mark.parametrize("prefix", ["", "bert."])
def test_towers_get_the_checkpoint_weights_layer_by_layer(tmp_path, prefix):
    folder = save_small_bert(tmp_path / "bert", prefix)
    source = {k.removeprefix("bert."): v for k, v in load_file(folder / "model.safetensors").items()
              if not k.startswith("cls.")}
    model = VideoCLIP.from_bert(folder, video_layers=3)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_text_layers, cfg.num_video_layers, cfg.max_position_embeddings) == (HIDDEN, 8, 3, 64)
    assert cfg.init_from == str(folder) and model.training
    text = model.text_encoder.state_dict()
    assert set(text) == set(source)
    for key, value in source.items():  # the text tower: every weight
        assert torch.equal(text[key], value), key
    video = model.video_encoder.bert.state_dict()
    for key, value in video.items():  # the video tower: embeddings, layers 0-2, pooler
        assert torch.equal(value, source[key]), key
    assert sum(k.startswith("encoder.layer.") and k.endswith("output.dense.weight") for k in video) == 6
    assert any(k.startswith("embeddings.") for k in video) and "pooler.dense.weight" in video
    mlp = model.video_encoder.videomlp  # new, initialised as BERT initialises a Linear
    assert torch.equal(mlp.linear1.bias, torch.zeros(HIDDEN)) and torch.equal(mlp.LayerNorm.weight, torch.ones(HIDDEN))
    assert abs(float(mlp.linear1.weight.detach().std()) - 0.02) < 0.002
    model.save_pretrained(tmp_path / "native")
    assert VideoCLIP.from_pretrained(tmp_path / "native").config == cfg  # reloads without the BERT folder


def test_non_bert_checkpoints_are_refused_by_key(tmp_path, small_bert):
    with pytest.raises(BertCheckpointError, match=r"num_video_layers=9 but the checkpoint has 8 layers"):
        VideoCLIP.from_bert(small_bert, video_layers=9)
    broken = shutil.copytree(small_bert, tmp_path / "broken")
    state = load_file(broken / "model.safetensors")
    del state["encoder.layer.5.attention.self.query.weight"]
    save_file(state, broken / "model.safetensors")
    with pytest.raises(BertCheckpointError, match=r"missing 1 weights.*encoder\.layer\.5\.attention\.self\.query\.weight"):
        open_bert(broken)
    other = shutil.copytree(small_bert, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(BertCheckpointError, match="model_type is 'roberta'"):
        open_bert(other)
    short = shutil.copytree(small_bert, tmp_path / "short-vocab")
    lines = (short / "vocab.txt").read_text().splitlines()
    (short / "vocab.txt").write_text("\n".join(lines[:-10]) + "\n")
    with pytest.raises(BertCheckpointError, match="vocab.txt has 30512 entries, config.json vocab_size is 30522"):
        open_bert(short)
    swapped = shutil.copytree(small_bert, tmp_path / "swapped-vocab")
    lines[2000], lines[2001] = lines[2001], lines[2000]
    (swapped / "vocab.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(BertCheckpointError, match="not bert-base-uncased's WordPiece vocabulary.*line 2001"):
        open_bert(swapped)


def test_an_unreachable_hub_name_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BertCheckpointError) as caught:
        VideoCLIP.from_bert("an-org/not-downloaded-bert")
    message = str(caught.value)
    assert "\n" not in message and "--init-from DIR" in message and "an-org/not-downloaded-bert" in message


def test_the_minilm_preset_is_a_bert_folder():
    model = VideoCLIP.from_preset("minilm")
    assert model.config.init_from == "sentence-transformers/all-MiniLM-L6-v2"
    assert (model.config.num_text_layers, model.config.num_video_layers, model.config.hidden_size) == (6, 3, 384)


def test_paper_recipe_refuses_an_unreachable_bert_before_reading_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["--config", "paper", "--data", str(tmp_path / "no-data-here"), "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bert-base-uncased" in err[0] and "--init-from DIR" in err[0]


@pytest.mark.slow
def test_the_paper_recipe_trains_from_a_local_bert_on_the_cpu(tmp_path, small_bert, synthetic_world):
    """``--config paper --steps 2 --init-from <small local bert>`` (CPU-sized groups and index)."""
    run = tmp_path / "run"
    argv = ["--config", "paper", "--steps", "2", "--init-from", str(small_bert), "--data",
            str(synthetic_world / "pretrain"), "--output", str(run), "--no-progress", "--run.device", "cpu",
            "--sampling.videos-per-group", "4", "--sampling.clips-per-video", "2",
            "--retrieval.embed-videos-per-batch", "64"]
    assert main(argv) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["init_from"] == str(small_bert) and saved["retrieval"]["index"] == "ivf512"
    assert saved["run"]["steps"] == 2 and saved["run"]["epochs"] is None
    trained = VideoCLIP.from_pretrained(run / "checkpoints" / "step_000002")
    assert trained.config.hidden_size == HIDDEN and trained.config.num_video_layers == 6
