"""vclip.checkpoint: the reference checkpoint layout, strict loading, safety, native and run folders."""

from __future__ import annotations

import argparse
import enum
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vclip.checkpoint import load_mmpt_checkpoint, load_model, save_mmpt_checkpoint
from vclip.errors import CheckpointError
from vclip.model import VideoCLIP
from vclip.tokenizer import encode_texts
from vclip.weights import InertObject, UnsafeCheckpointError, safe_torch_load


def _tiny() -> VideoCLIP:
    torch.manual_seed(0)
    return VideoCLIP.from_preset("tiny").eval()


def _inputs():
    generator = torch.Generator().manual_seed(3)
    vfeats = torch.randn(2, 9, 512, generator=generator)
    vmask = torch.tensor([[True] * 9, [True] * 4 + [False] * 5])
    return vfeats, vmask, *encode_texts(["slice the bread", "whisk two eggs in a bowl"])


def _outputs(model):
    with torch.no_grad():
        out = model(*_inputs())
    return out.pooled_video, out.pooled_text


def _fp16_rounded(model: VideoCLIP) -> VideoCLIP:
    rounded = VideoCLIP(model.config).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return rounded


def test_reference_layout_keys_dtypes_and_buffers(tmp_path):
    model = _tiny()
    save_mmpt_checkpoint(model, tmp_path / "checkpoint_best.pt")
    checkpoint = torch.load(tmp_path / "checkpoint_best.pt", weights_only=True)
    weights = checkpoint["model"]
    assert all(key.startswith("mmmodel.") for key in weights)
    assert weights["mmmodel.video_encoder.videomlp.linear1.weight"].shape == (128, 512)
    assert weights["mmmodel.video_encoder.videomlp.LayerNorm.weight"].dtype == torch.float16
    assert weights["mmmodel.text_encoder.pooler.dense.weight"].shape == (128, 128)
    assert weights["mmmodel.video_encoder.bert.pooler.dense.bias"].shape == (128,)
    position_ids = weights["mmmodel.video_encoder.bert.embeddings.position_ids"]
    assert position_ids.dtype == torch.long and position_ids.shape == (1, 512)
    assert torch.equal(weights["mmmodel.text_encoder.embeddings.position_ids"][0], torch.arange(512))
    assert len(weights) == len(model.state_dict()) + 2


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _tiny()
    save_mmpt_checkpoint(model, tmp_path / "a.pt")
    loaded = load_mmpt_checkpoint(tmp_path / "a.pt")
    assert not loaded.training and loaded.config.hidden_size == 128
    assert loaded.config.num_text_layers == 2 and loaded.config.num_video_layers == 2
    assert loaded.config.num_attention_heads == 2
    for ours, theirs in zip(_outputs(_fp16_rounded(model)), _outputs(loaded)):
        assert torch.equal(ours, theirs)  # fp16 storage is the only change
    save_mmpt_checkpoint(model, tmp_path / "b.pt", dtype=torch.float32)
    for ours, theirs in zip(_outputs(model), _outputs(load_model(tmp_path / "b.pt"))):
        assert torch.equal(ours, theirs)


def test_architecture_is_inferred_from_shapes_and_heads_default_to_hidden_over_64(tmp_path):
    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny", hidden_size=192, num_attention_heads=4, num_text_layers=3).eval()
    state = {"mmmodel." + k: v.half() for k, v in model.state_dict().items()}
    torch.save({"model": state}, tmp_path / "bare.pt")  # no bookkeeping: heads = 192 / 64 = 3
    loaded = load_mmpt_checkpoint(tmp_path / "bare.pt")
    assert (loaded.config.hidden_size, loaded.config.num_text_layers, loaded.config.num_attention_heads) == (
        192,
        3,
        3,
    )
    assert load_mmpt_checkpoint(tmp_path / "bare.pt", num_attention_heads=4).config.num_attention_heads == 4
    save_mmpt_checkpoint(model, tmp_path / "with_cfg.pt")  # the file's own config names 4 heads
    assert load_mmpt_checkpoint(tmp_path / "with_cfg.pt").config.num_attention_heads == 4


def test_missing_and_unexpected_weights_fail_listing_them(tmp_path):
    save_mmpt_checkpoint(_tiny(), tmp_path / "ok.pt")
    checkpoint = torch.load(tmp_path / "ok.pt", weights_only=True)
    del checkpoint["model"]["mmmodel.text_encoder.encoder.layer.1.output.LayerNorm.bias"]
    checkpoint["model"]["mmmodel.video_encoder.logit_scale"] = torch.zeros(())
    torch.save(checkpoint, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as raised:
        load_mmpt_checkpoint(tmp_path / "bad.pt")
    message = str(raised.value)
    assert "text_encoder.encoder.layer.1.output.LayerNorm.bias" in message
    assert "video_encoder.logit_scale" in message
    checkpoint = torch.load(tmp_path / "ok.pt", weights_only=True)
    checkpoint["model"]["text_encoder.stray"] = torch.zeros(1)
    torch.save(checkpoint, tmp_path / "prefix.pt")
    with pytest.raises(
        ValueError, match=r"without the reference's 'mmmodel.' prefix: \['text_encoder.stray'\]"
    ):
        load_mmpt_checkpoint(tmp_path / "prefix.pt")
    torch.save({"state": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no 'model' entry"):
        load_mmpt_checkpoint(tmp_path / "other.pt")


class Colour(enum.Enum):
    RED = "red"


def _fake_module(name: str, **members) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in members.items():
        value.__module__ = name
        value.__qualname__ = key
        setattr(module, key, value)
    return module


def write_release_stand_in(path, model: VideoCLIP, monkeypatch) -> None:
    """A synthetic stand-in of the release's checkpoint_best.pt: the reference layout with the bookkeeping
    objects of packages this machine does not have (an omegaconf DictConfig holding a fairseq enum, an
    argparse Namespace, numpy values), pickled while fake modules stood in for omegaconf and fairseq."""

    class DictConfig:  # what an omegaconf DictConfig carries: state set via __setstate__
        def __init__(self, content):
            self._content = content

        def __getstate__(self):
            return {"_content": self._content, "_metadata": None}

        def __setstate__(self, state):
            self.__dict__.update(state)

    class ChoiceEnum(enum.Enum):
        NO_C10D = "no_c10d"

    fake_omegaconf = _fake_module("omegaconf.dictconfig", DictConfig=DictConfig)
    fake_fairseq = _fake_module("fairseq.dataclass.constants", ChoiceEnum=ChoiceEnum)
    for name in ("omegaconf", "fairseq", "fairseq.dataclass"):  # parents of the fake modules
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "omegaconf.dictconfig", fake_omegaconf)
    monkeypatch.setitem(sys.modules, "fairseq.dataclass.constants", fake_fairseq)
    plain = Path(path).with_name("plain.pt")
    save_mmpt_checkpoint(model, plain)
    checkpoint = torch.load(plain, weights_only=True)
    checkpoint["cfg"] = DictConfig({"task": "retri", "ddp": ChoiceEnum.NO_C10D, "num_attention_heads": 2})
    checkpoint["args"] = argparse.Namespace(arch="mmarch", fp16=True)
    checkpoint["extra_state"] = {
        "best": np.float64(0.5),
        "colours": {1, 2},
        "hist": np.arange(3),
        "blob": b"\x00ab",
    }
    torch.save(checkpoint, path)
    for name in (
        "omegaconf",
        "fairseq",
        "fairseq.dataclass",
        "omegaconf.dictconfig",
        "fairseq.dataclass.constants",
    ):
        monkeypatch.delitem(sys.modules, name)  # as on a machine without omegaconf and fairseq


def test_bookkeeping_objects_of_uninstalled_packages_load_as_inert_placeholders(tmp_path, monkeypatch):
    model = _tiny()
    write_release_stand_in(tmp_path / "release_like.pt", model, monkeypatch)

    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "release_like.pt", weights_only=True)
    loaded = safe_torch_load(tmp_path / "release_like.pt")
    assert (
        isinstance(loaded["cfg"], InertObject)
        and loaded["cfg"].vclip_global == "omegaconf.dictconfig.DictConfig"
    )
    assert loaded["cfg"].vclip_state["_content"]["task"] == "retri"
    assert isinstance(loaded["args"], InertObject) and loaded["args"].vclip_state == {
        "arch": "mmarch",
        "fp16": True,
    }
    extra = loaded["extra_state"]
    assert extra["best"] == 0.5 and extra["colours"] == {1, 2} and extra["blob"] == b"\x00ab"
    assert extra["hist"].tolist() == [0, 1, 2]
    model_loaded = load_mmpt_checkpoint(tmp_path / "release_like.pt")
    for ours, theirs in zip(_outputs(_fp16_rounded(model)), _outputs(model_loaded)):
        assert torch.equal(ours, theirs)


def test_one_command_converts_the_release_into_a_hub_folder(tmp_path, monkeypatch):
    import subprocess

    model = _tiny()
    release = tmp_path / "checkpoint_best.pt"
    write_release_stand_in(release, model, monkeypatch)
    out = tmp_path / "videoclip-release"
    done = subprocess.run([sys.executable, "-m", "vclip.hub", str(release), "--out", str(out)], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "converted" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    converted, direct = load_model(out), load_mmpt_checkpoint(release)
    assert converted.config == direct.config
    ours, theirs = converted.state_dict(), direct.state_dict()
    assert sorted(ours) == sorted(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)  # bit for bit
    for a, b in zip(_outputs(_fp16_rounded(model)), _outputs(converted)):
        assert torch.equal(a, b)
    card = (out / "README.md").read_text()
    assert "checkpoint_best.pt" in card and "@inproceedings{xu-etal-2021-videoclip" in card and "MIT" in card


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvilEval:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (eval, (f"__import__('os').system({self.command!r})",))


@pytest.mark.parametrize("payload", [_Evil, _EvilEval])
@pytest.mark.parametrize("container", ["torch", "raw_pickle"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, payload, container):
    marker = tmp_path / "pwned"
    evil = payload(f"touch {marker}")
    checkpoint = {"model": {}, "extra_state": evil}
    path = tmp_path / "evil.pt"
    if container == "torch":
        torch.save(checkpoint, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(checkpoint, handle, protocol=2)
    called = os.system.__module__ + ".system" if payload is _Evil else "builtins.eval"
    with pytest.raises(UnsafeCheckpointError, match=rf"would call {called}\("):
        load_mmpt_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError):
        load_model(path)
    assert not marker.exists()


def test_load_model_accepts_native_folders_and_run_directories(tmp_path):
    model = _tiny()
    run = tmp_path / "run"
    model.save_pretrained(run / "checkpoints" / "step_000010")
    (run / "checkpoints" / "LATEST").write_text("step_000010\n")
    expected = _outputs(model)
    for path in (
        run,
        run / "checkpoints" / "step_000010",
        run / "checkpoints" / "step_000010" / "model.safetensors",
    ):
        for ours, theirs in zip(expected, _outputs(load_model(path))):
            assert torch.equal(ours, theirs)
    (run / "checkpoints" / "LATEST").write_text("step_999999\n")
    with pytest.raises(CheckpointError, match="names 'step_999999'"):
        load_model(run)
    (run / "checkpoints" / "LATEST").unlink()
    with pytest.raises(FileNotFoundError, match="without checkpoints/LATEST"):
        load_model(run)
    with pytest.raises(FileNotFoundError, match="neither a native checkpoint folder"):
        load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_model(tmp_path / "missing")


@pytest.mark.slow
def test_paper_shaped_reference_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VideoCLIP.from_preset("paper").eval()
    state = {"mmmodel." + k: v.half() for k, v in model.state_dict().items()}
    for tower in ("video_encoder.bert", "text_encoder"):
        state[f"mmmodel.{tower}.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    torch.save({"model": state, "optimizer_history": [], "extra_state": {"epoch": 25}}, tmp_path / "best.pt")
    loaded = load_mmpt_checkpoint(tmp_path / "best.pt")
    config = loaded.config
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size) == (768, 12, 3072)
    assert (config.num_text_layers, config.num_video_layers, config.vocab_size) == (12, 6, 30522)
    for ours, theirs in zip(_outputs(_fp16_rounded(model)), _outputs(loaded)):
        assert torch.equal(ours, theirs)
