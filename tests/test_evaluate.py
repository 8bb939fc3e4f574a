"""The zero-shot tasks end to end on a small synthetic world, baselines, skips, the real annotation
files without features, and the program."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vclip.evaluate import main as evaluate_main
from vclip.localization import average_windows, sliding_windows
from vclip.model import VideoCLIP
from vclip.synthetic import WorldConfig, generate
from vclip.tasks import TASKS, EvalConfig, evaluate_baselines, evaluate_task
from vclip.tasks.coin import CoinSegment, label_threshold, predict_labels, video_targets
from vclip.tasks.common import window_scores
from vclip.tasks.crosstask import StepSegment, read_assignment
from vclip.tasks.didemo import moment_vectors

FAST = EvalConfig(batch_size=64, progress=False, baseline_repeats=3)
SMALL_WORLD = WorldConfig(
    pretrain_train=256, pretrain_val=0, pretrain_seconds=(20, 30), youcook_videos=6, msrvtt_clips=24,
    msrvtt_qa_items=12, crosstask_videos_per_primary=33, crosstask_val_per_primary=1,
    crosstask_videos_per_related=1, crosstask_seconds=(30, 60), coin_testing=12, coin_training=2, didemo_videos=8,
)
# counts of this small world (the compositional world of many tasks: fewer steps per YouCook2-like video,
# 2-3 DiDeMo moments per video drawn from the real length distribution)
EXPECTED_N = {"youcook2": 42, "msrvtt": 24, "msrvtt_qa": 12, "didemo": 18, "crosstask": 10, "coin": 12}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "world"
    generate(root, config=SMALL_WORLD, seed=0)
    return root


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return VideoCLIP.from_preset("tiny").eval()


@pytest.mark.parametrize("task", TASKS)
def test_every_task_end_to_end(task, small_world, tiny_model):
    tiny_model.train()  # evaluation must switch to eval mode and restore the flag
    result = evaluate_task(tiny_model, task, small_world / task, FAST)
    assert tiny_model.training
    tiny_model.eval()
    assert result.ok and result.scorer == "model"
    if task == "youcook2":  # the world's counts, minus nothing: every feature is present
        assert result.n_evaluated == result.n_items
    assert result.n_evaluated == EXPECTED_N[task] and result.n_missing_features == 0
    for metric in TASKS[task].metrics:
        value = result.metrics[metric]
        assert np.isfinite(value)
        if metric not in ("MedR", "MeanR"):
            assert 0.0 <= value <= 100.0
    baselines = evaluate_baselines(task, small_world / task, FAST)
    assert set(baselines) == {"chance", "oracle"}
    headline = TASKS[task].metrics[0]
    assert baselines["oracle"].metrics[headline] > baselines["chance"].metrics[headline]


def test_retrieval_details_and_batch_size_invariance(small_world, tiny_model):
    small = evaluate_task(tiny_model, "msrvtt", small_world / "msrvtt", EvalConfig(batch_size=5, progress=False))
    large = evaluate_task(tiny_model, "msrvtt", small_world / "msrvtt", FAST)
    assert small.metrics == pytest.approx(large.metrics)
    assert set(large.details["video_to_text"]) == {"R@1", "R@5", "R@10", "MedR", "MeanR", "N"}


def test_msrvtt_equals_direct_model_computation(small_world, tiny_model):
    from vclip.data.formats import load_features
    from vclip.metrics import retrieval_metrics
    from vclip.tasks.retrieval import read_msrvtt_csv
    from vclip.tokenizer import encode_texts

    folder = small_world / "msrvtt"
    clips = read_msrvtt_csv(folder / "MSRVTT_JSFUSION_test.csv")
    tiny_model.eval()
    features = [np.asarray(load_features(folder / "features" / f"{c.video_id}.npy"), dtype=np.float32)[:32]
                for c in clips]
    vfeats = torch.zeros(len(clips), 32, 512)
    vmask = torch.zeros(len(clips), 32, dtype=torch.bool)
    for i, f in enumerate(features):
        vfeats[i, : len(f)] = torch.from_numpy(f)
        vmask[i, : len(f)] = True
    with torch.no_grad():
        text = tiny_model.encode_text(*encode_texts([c.sentence for c in clips]))
        video = tiny_model.encode_video(vfeats, vmask)
    expected = retrieval_metrics((text @ video.T).numpy())
    assert evaluate_task(tiny_model, "msrvtt", folder, FAST).metrics == pytest.approx(expected)


def test_each_text_and_video_encoded_once(small_world, tiny_model, monkeypatch):
    counts = {"text": 0, "video": 0}
    encode_text, encode_video = tiny_model.encode_text, tiny_model.encode_video

    def count_text(input_ids, attention_mask):
        counts["text"] += len(input_ids)
        return encode_text(input_ids, attention_mask)

    def count_video(vfeats, vmask=None):
        counts["video"] += len(vfeats)
        return encode_video(vfeats, vmask)

    monkeypatch.setattr(tiny_model, "encode_text", count_text)
    monkeypatch.setattr(tiny_model, "encode_video", count_video)
    result = evaluate_task(tiny_model, "msrvtt_qa", small_world / "msrvtt_qa", FAST)
    from vclip.tasks.qa import read_msrvtt_mc

    items = read_msrvtt_mc(small_world / "msrvtt_qa" / "MSR_MC_test.csv")
    assert counts["text"] == len({t for item in items for t in item.candidates})
    assert counts["video"] == len({item.video_id for item in items}) == result.n_evaluated


def test_missing_features_are_skipped_and_counted(small_world, tiny_model, tmp_path):
    folder = tmp_path / "msrvtt"
    shutil.copytree(small_world / "msrvtt", folder)
    from vclip.tasks.retrieval import read_msrvtt_csv

    evaluated = {clip.video_id for clip in read_msrvtt_csv(folder / "MSRVTT_JSFUSION_test.csv")}
    removed = sorted(folder / "features" / f"{v}.npy" for v in evaluated)[:3]  # not the training videos
    for path in removed:
        path.unlink()
    result = evaluate_task(tiny_model, "msrvtt", folder, FAST)
    assert result.n_items == 24 and result.n_evaluated == 21 and result.n_missing_features == 3
    assert sorted(result.missing_examples) == sorted(p.stem for p in removed)
    assert "3 of 24 items have no feature file" in result.missing_report()


def test_window_scores_equal_a_direct_loop(small_world, tiny_model):
    from vclip.data.formats import load_features

    paths = sorted((small_world / "coin" / "features").glob("*.npy"), key=lambda p: p.stat().st_size)[:2]
    texts = torch.randn(4, tiny_model.config.hidden_size)
    videos = [(p.stem, np.asarray(load_features(p), dtype=np.float32), texts) for p in paths]
    tiny_model.eval()
    streamed = dict(window_scores(tiny_model, iter(videos), EvalConfig(batch_size=3, progress=False)))
    for key, features, _ in videos:
        windows = sliding_windows(len(features))
        with torch.no_grad():
            per_window = [
                (tiny_model.video_token_states(torch.from_numpy(features[s:e])[None], attend_cls=False)[0] @ texts.T).numpy()
                for s, e in windows
            ]
        np.testing.assert_allclose(streamed[key], average_windows(per_window, windows, len(features)), atol=1e-5)


def test_didemo_moment_pooling():
    hidden = torch.arange(32, dtype=torch.float32)[:, None].repeat(1, 2)  # row t holds t
    vmask = torch.arange(32) < 7
    unmasked = moment_vectors(hidden, vmask, "unmasked")
    masked = moment_vectors(hidden, vmask, "masked")
    assert unmasked.shape == (21, 2)
    assert unmasked[1, 0] == pytest.approx(np.mean([5, 6, 7, 8, 9]))  # (1, 1): padded rows count
    assert masked[1, 0] == pytest.approx(np.mean([5, 6]))  # only the real seconds
    assert masked[2, 0] == 0.0  # (2, 2): no real second


def test_coin_threshold_targets_and_prediction():
    labels = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert label_threshold(labels) == pytest.approx(2.0)  # max off-diagonal of labels @ labels.T
    scores = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.0, 2.5]])
    assert predict_labels(scores, 2.0).tolist() == [1, 0, 3]  # strictly above lambda, else background
    targets = video_targets([CoinSegment(2, 1.5, 3.2, "a"), CoinSegment(5, 5.0, 9.0, "b")], 7)
    assert targets.tolist() == [0, 2, 2, 2, 0, 5, 5]


def test_crosstask_assignment_floor_ceil():
    targets = read_assignment([StepSegment(1, 0.5, 2.1), StepSegment(3, 4.0, 4.0), StepSegment(2, 5.2, 9.0)], 7, 3)
    assert targets[:, 0].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert targets[:, 1].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert targets[:, 2].sum() == 0  # [floor(4.0), ceil(4.0)) is empty, as in the reference


@pytest.mark.parametrize("task, file_name, source, rows", [
    ("youcook2", "validation_youcook.csv", "youcook2_validation.csv", 3350),
    ("msrvtt", "MSRVTT_JSFUSION_test.csv", "msrvtt_jsfusion_test.csv", 1000),
])
def test_real_annotations_without_features_report_what_is_missing(
        task, file_name, source, rows, real_annotations, tiny_model, tmp_path, capsys):
    folder = tmp_path / task
    folder.mkdir()
    shutil.copy(real_annotations / source, folder / file_name)
    result = evaluate_task(tiny_model, task, folder, FAST)
    assert result.n_items == rows and result.n_evaluated == 0 and result.n_missing_features == rows
    assert not result.ok and result.metrics == {}
    assert f"{rows} of {rows} items have no feature file" in result.missing_report()
    assert evaluate_main(["--task", task, "--untrained", "tiny", "--data", str(folder), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "not evaluated" in out and "features/<video_id>.npy" in out


def test_program_writes_table_and_json(small_world, tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    code = evaluate_main(["--task", "didemo", "--untrained", "tiny", "--data", str(small_world / "didemo"),
                          "--json", str(out_json), "--no-progress", "--baseline-repeats", "2"])
    assert code == 0
    table = capsys.readouterr().out
    assert "rank@1" in table and "16.6" in table and "oracle" in table
    payload = json.loads(out_json.read_text())
    assert set(payload["results"]["didemo"]) == {"model", "chance", "oracle"}
    assert payload["results"]["didemo"]["model"]["n_evaluated"] == EXPECTED_N["didemo"]


def test_program_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        evaluate_main(["--task", "nope", "--untrained", "tiny", "--data", str(tmp_path)])
    assert evaluate_main(["--task", "coin", "--untrained", "huge", "--data", str(tmp_path)]) == 2
    with pytest.raises(ValueError, match="didemo_pooling"):
        EvalConfig(didemo_pooling="max")
    assert evaluate_main(["--task", "didemo", "--untrained", "tiny", "--data", str(tmp_path),
                          "--didemo-pooling", "max"]) == 2


def test_broken_feature_file_is_skipped_and_counted_as_the_check_says(small_world, tmp_path, capsys, caplog):
    from vclip.tasks.check import check_path

    folder = tmp_path / "didemo"
    shutil.copytree(small_world / "didemo", folder)
    victim = sorted((folder / "features").glob("*.npy"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated copy
    (report,) = check_path(folder)
    assert report.usable and any(victim.stem in note and "leave them out" in note for note in report.notes)
    result = evaluate_task(VideoCLIP.from_preset("tiny"), "didemo", folder, FAST)
    assert result.ok and 0 < result.n_missing_features and result.n_evaluated < EXPECTED_N["didemo"]
    assert victim.stem in result.missing_examples
    assert evaluate_main(["--task", "didemo", "--untrained", "tiny", "--data", str(folder), "--no-progress",
                          "--no-baselines"]) == 0
    assert victim.name in caplog.text and "truncated" in caplog.text


@pytest.mark.slow
def test_program_on_the_default_world(synthetic_world, tmp_path, capsys):
    out_json = tmp_path / "all.json"
    assert evaluate_main(["--task", "all", "--untrained", "tiny", "--data", str(synthetic_world), "--json",
                          str(out_json), "--no-progress"]) == 0
    results = json.loads(out_json.read_text())["results"]
    assert set(results) == set(TASKS)
    for task, by_scorer in results.items():
        headline = TASKS[task].metrics[0]
        assert by_scorer["oracle"]["metrics"][headline] >= by_scorer["chance"]["metrics"][headline]
        assert by_scorer["model"]["n_missing_features"] == 0
    assert "paper (real data)" in capsys.readouterr().out


def test_checkpoint_folder_world_root_and_device(small_world, tiny_model, tmp_path, capsys):
    tiny_model.save_pretrained(tmp_path / "native")
    code = evaluate_main(["--task", "msrvtt_qa", "--checkpoint", str(tmp_path / "native"), "--data", str(small_world),
                          "--no-progress", "--no-baselines"])
    assert code == 0 and "msrvtt_qa" in capsys.readouterr().out
    # a world root resolves to <root>/<task>; the device, when given, must be the model's
    result = evaluate_task(tiny_model, "msrvtt_qa", small_world, FAST, device="cpu")
    assert result.folder == str(small_world / "msrvtt_qa") and result.n_evaluated == EXPECTED_N["msrvtt_qa"]
    with pytest.raises(ValueError, match="move the model"):
        evaluate_task(tiny_model, "msrvtt_qa", small_world, FAST, device="meta")


def test_help_documents_every_flag_and_print_config_resolves(tmp_path, capsys):
    import dataclasses

    from vclip.evaluate import EvaluateCommand

    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    names = [f.name for f in dataclasses.fields(EvaluateCommand) if f.name != "evaluation"]
    names += [f.name for f in dataclasses.fields(EvalConfig)]
    for name in names:
        assert "--" + name.replace("_", "-") in text, name
    assert text.count("(default:") >= len(names) - 2  # --task and --data are required, not defaulted
    code = evaluate_main(["--task", "coin", "--untrained", "tiny", "--data", str(tmp_path), "--batch-size", "7",
                          "--print-config"])
    assert code == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["evaluation"]["batch_size"] == 7 and resolved["untrained"] == "tiny"
    assert evaluate_main(["--task", "coin", "--data", str(tmp_path)]) == 2  # neither --checkpoint nor --untrained
    assert "exactly one of --checkpoint" in capsys.readouterr().err


def test_a_run_is_resolved_once_into_what_its_evaluation_needs(tmp_path):
    """resolve_run: an untrained preset or a pre-trained checkpoint is no fine-tuning run (no head, no init);
    --init is refused for it; exactly one of checkpoint and untrained."""
    from vclip.errors import ConfigError
    from vclip.training.resolve import resolve_run

    run = resolve_run(untrained="tiny", seed=3)
    assert (run.summary, run.head, run.init, run.finetuned_task, run.label) == (None, None, None, None, "untrained tiny")
    run.model.save_pretrained(tmp_path / "model")
    loaded = resolve_run(checkpoint=str(tmp_path / "model"))
    assert loaded.summary is None and loaded.label == "ours" and not loaded.model.training
    with pytest.raises(ConfigError, match="--init is for a fine-tuning run"):
        resolve_run(checkpoint=str(tmp_path / "model"), init=str(tmp_path / "model"))
    with pytest.raises(ConfigError, match="exactly one of"):
        resolve_run()
