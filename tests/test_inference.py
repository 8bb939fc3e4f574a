"""vclip.inference: own videos (files, frames, features) x texts -> scores, batching, long videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vclip.features import extract_features
from vclip.inference import InferenceConfig, VideoCLIPPipeline
from vclip.model import VideoCLIP
from vclip.s3d import S3D
from vclip.tokenizer import encode_texts
from vclip.video import decode_video, sample_video_path, write_video

SIZE = 32  # small frames keep S3D fast; the 224 recipe runs in the slow test on a real sample video
TEXTS = ["a person slices an onion", "people ride bikes down a street", "a rabbit in a meadow"]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return VideoCLIP.from_preset("tiny").eval(), S3D().eval()


def _pipe(models, **config) -> VideoCLIPPipeline:
    return VideoCLIPPipeline(models[0], models[1], InferenceConfig(size=SIZE, **config), device="cpu")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(1, 6, 8, 3), dtype=np.uint8).repeat(8, 1).repeat(8, 2).repeat(50, 0)
    frames = frames + np.arange(50, dtype=np.uint8)[:, None, None, None] * 4
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mkv", frames, fps=25, codec="ffv1")  # 2 s


def _reference_scores(model, features: torch.Tensor, texts):
    """By hand: one (S <= 32, 512) feature matrix through the towers."""
    ids, mask = encode_texts(texts)
    with torch.no_grad():
        text = model.encode_text(ids, mask)
        pooled = model.encode_video(features[None])
        per_second = model.video_token_states(features[None])[0] @ text.T
    return (pooled @ text.T)[0], per_second


def test_file_frames_and_features_give_the_same_scores(models, clip_path):
    pipe = _pipe(models)
    frames = decode_video(clip_path, size=SIZE)  # (60, 32, 32, 3)
    features = extract_features(models[1], clip_path, size=SIZE)  # (2, 512), L2-normalised
    scores = pipe.score([clip_path, frames, features, frames.reshape(1, 2, 30, SIZE, SIZE, 3)], TEXTS)
    assert scores.video_text.shape == (4, 3)
    assert scores.seconds == [2, 2, 2, 2] and all(s.shape == (2, 3) for s in scores.per_second)
    for row in range(1, 4):
        torch.testing.assert_close(scores.video_text[row], scores.video_text[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(scores.per_second[row], scores.per_second[0], rtol=1e-4, atol=1e-4)
    video_text, per_second = _reference_scores(models[0], torch.from_numpy(features), TEXTS)
    torch.testing.assert_close(scores.video_text[2], video_text, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(scores.per_second[2], per_second, rtol=1e-4, atol=1e-4)
    assert scores.best_text()[0] in TEXTS and scores.best_second().shape == (4, 3)


def test_s3d_output_is_l2_normalised_unless_asked_not_to(models, clip_path):
    frames = decode_video(clip_path, size=SIZE)
    normalised = _pipe(models).video_features(frames)
    raw = _pipe(models, l2_normalize=False).video_features(frames)
    torch.testing.assert_close(normalised.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(F.normalize(raw, dim=1), normalised)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(2), atol=1e-2)  # MMPTModel's unnormalised input


def test_batch_size_does_not_change_scores(models):
    gen = torch.Generator().manual_seed(1)
    videos = [F.normalize(torch.randn(n, 512, generator=gen), dim=1) for n in (3, 17, 32, 1, 9)]
    one = _pipe(models, batch_size=1).score(videos, TEXTS)
    many = _pipe(models, batch_size=4).score(videos, TEXTS)
    torch.testing.assert_close(many.video_text, one.video_text, rtol=1e-4, atol=1e-4)
    for a, b in zip(many.per_second, one.per_second):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_long_videos_windows_and_first(models):
    model = models[0]
    features = F.normalize(torch.randn(70, 512, generator=torch.Generator().manual_seed(2)), dim=1)
    windows = _pipe(models).score([features], TEXTS)
    assert windows.seconds == [70] and windows.per_second[0].shape == (70, 3)
    # Window 2 (seconds 32..63) is encoded on its own; the video score is the seconds-weighted mean.
    parts = [_reference_scores(model, features[a:b], TEXTS) for a, b in ((0, 32), (32, 64), (64, 70))]
    torch.testing.assert_close(windows.per_second[0][32:64], parts[1][1], rtol=1e-4, atol=1e-4)
    weighted = (32 * parts[0][0] + 32 * parts[1][0] + 6 * parts[2][0]) / 70
    torch.testing.assert_close(windows.video_text[0], weighted, rtol=1e-4, atol=1e-4)

    first = _pipe(models, long_videos="first").score([features], TEXTS)
    assert first.seconds == [32]
    torch.testing.assert_close(first.video_text[0], parts[0][0], rtol=1e-4, atol=1e-4)


def test_bad_inputs_raise_clear_errors(models, tmp_path):
    pipe = _pipe(models)
    with pytest.raises(ValueError, match=r"features must be \(S >= 1, 512\).*\(4, 1024\)"):
        pipe.score([torch.zeros(4, 1024)], TEXTS)
    with pytest.raises(ValueError, match="non-empty list"):
        pipe.score(torch.zeros(4, 512), TEXTS)
    with pytest.raises(ValueError, match=r"got shape \(4, 4, 3\)"):
        pipe.score([np.zeros((4, 4, 3), np.uint8)], TEXTS)
    no_s3d = VideoCLIPPipeline(models[0], None, InferenceConfig(size=SIZE), device="cpu")
    with pytest.raises(ValueError, match="s3d_howto100m.pth"):
        no_s3d.score([tmp_path / "mine.mp4"], TEXTS)
    with pytest.raises(ValueError, match="either s3d_weights"):
        VideoCLIPPipeline.from_pretrained(models[0], s3d_weights="x.pth", random_init_s3d=True)
    with pytest.raises(ValueError, match="long_videos"):
        InferenceConfig(long_videos="middle")


def test_from_pretrained_reads_a_native_checkpoint(models, tmp_path):
    models[0].save_pretrained(tmp_path / "ckpt")
    torch.save(models[1].state_dict(), tmp_path / "s3d_howto100m.pth")
    pipe = VideoCLIPPipeline.from_pretrained(tmp_path / "ckpt", s3d_weights=tmp_path / "s3d_howto100m.pth",
                                             device="cpu", size=SIZE)
    features = F.normalize(torch.randn(5, 512, generator=torch.Generator().manual_seed(3)), dim=1)
    torch.testing.assert_close(pipe.score([features], TEXTS).video_text, _pipe(models).score([features], TEXTS).video_text)


@pytest.mark.slow
def test_real_sample_video_at_full_recipe(models):
    """bigbuckbunny.mp4 (5.28 s, 1280x720) through the 224 px recipe: 6 seconds of features and scores."""
    pipe = VideoCLIPPipeline(models[0], models[1], InferenceConfig(), device="cpu")
    scores = pipe.score([sample_video_path("bigbuckbunny")], TEXTS)
    assert scores.seconds == [6] and scores.video_text.shape == (1, 3)
    assert torch.isfinite(scores.video_text).all()
