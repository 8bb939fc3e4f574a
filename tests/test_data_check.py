"""``python -m vclip.data check``: layout detection, reports, exit codes, clear messages."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vclip.data.__main__ import main as data_main
from vclip.tasks.check import check_path, detect_layout


def test_world_root_checks_every_folder(synthetic_world, capsys):
    assert data_main(["check", str(synthetic_world), "--no-values"]) == 0
    output = capsys.readouterr().out
    for layout in ("pretrain", "youcook2", "msrvtt", "msrvtt_qa", "crosstask", "coin", "didemo"):
        assert f"[{layout}]  usable" in output
    assert "captions after de-duplication" in output and "clips with features: 435" in output  # the default world's YouCook2-like clips
    assert "test videos (reference split: 30 train per primary task): 60" in output


@pytest.mark.parametrize("name,layout", [("pretrain", "pretrain"), ("youcook2", "youcook2"), ("msrvtt", "msrvtt"),
                                         ("msrvtt_qa", "msrvtt_qa"), ("crosstask", "crosstask"), ("coin", "coin"),
                                         ("didemo", "didemo")])
def test_detect_layout(synthetic_world, name, layout):
    assert detect_layout(synthetic_world / name) == layout


def test_detect_annotation_files(synthetic_world, real_annotations):
    assert detect_layout(real_annotations / "youcook2_validation.csv") == "youcook2"
    assert detect_layout(real_annotations / "msrvtt_jsfusion_test.csv") == "msrvtt"
    assert detect_layout(synthetic_world / "msrvtt_qa" / "MSR_MC_test.csv") == "msrvtt_qa"
    assert detect_layout(synthetic_world / "didemo" / "test_data.json") == "didemo"


def test_real_annotations_without_features_report_missing_ids(real_annotations, capsys):
    assert data_main(["check", str(real_annotations / "youcook2_validation.csv")]) == 1
    output = capsys.readouterr()
    assert "clips: 3350" in output.out and "missing features (436 videos): xHr8X2Wpmno" in output.out
    assert "features: expected <video_id>.npy for the listed videos, found none of 436" in output.out
    assert "NOT USABLE" in output.err
    (report,) = check_path(real_annotations / "msrvtt_jsfusion_test.csv")
    assert report.counts["clips"] == 1000 and len(report.missing_features) == 1000 and not report.usable


def test_some_missing_features_keep_a_folder_usable(synthetic_world, tmp_path, capsys):
    folder = tmp_path / "youcook2"
    shutil.copytree(synthetic_world / "youcook2", folder)
    gone = sorted(p.stem for p in (folder / "features").glob("*.npy"))[:2]
    for video_id in gone:
        (folder / "features" / f"{video_id}.npy").unlink()
    np.save(folder / "features" / f"{sorted(p.stem for p in (folder / 'features').glob('*.npy'))[0]}.npy",
            np.ones((5, 1024), np.float16))
    assert data_main(["check", str(folder), "--list-missing"]) == 0
    output = capsys.readouterr().out
    line = next(x for x in output.splitlines() if "missing features (2 videos): " in x)
    assert sorted(line.split(": ", 1)[1].split(", ")) == gone
    assert "shape: expected (seconds, 512), found (5, 1024)" in output
    assert data_main(["check", str(folder), "--strict"]) == 1


def test_missing_column_is_named(tmp_path, capsys):
    folder = tmp_path / "msrvtt"
    (folder / "features").mkdir(parents=True)
    (folder / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id\nret0,msr1,video1\n")
    assert data_main(["check", str(folder)]) == 1
    output = capsys.readouterr().out
    assert "MSRVTT_JSFUSION_test.csv: header: expected columns key, vid_key, video_id, sentence" in output
    assert "missing sentence" in output


def test_duplicated_ids_make_pretrain_unusable(synthetic_world, tmp_path, capsys):
    folder = tmp_path / "pretrain"
    folder.mkdir()
    (folder / "features").symlink_to(synthetic_world / "pretrain" / "features")
    shutil.copy(synthetic_world / "pretrain" / "raw_caption.json", folder)
    ids = (synthetic_world / "pretrain" / "train.lst").read_text().split()
    (folder / "train.lst").write_text("\n".join(ids[:3] + ids[:1]) + "\n")
    assert data_main(["check", str(folder)]) == 1
    assert "train.lst: line 4: expected unique video ids" in capsys.readouterr().out


def test_unknown_folder_exits_2(tmp_path, capsys):
    assert data_main(["check", str(tmp_path)]) == 2
    assert "layout: expected a folder holding one of" in capsys.readouterr().err


def test_store_check(synthetic_world, tmp_path, capsys):
    from vclip.data.store import build_store

    folder = tmp_path / "pretrain"
    (folder / "features").mkdir(parents=True)
    ids = (synthetic_world / "pretrain" / "train.lst").read_text().split()[:4]
    for video_id in ids:
        shutil.copy(synthetic_world / "pretrain" / "features" / f"{video_id}.npy", folder / "features")
    shutil.copy(synthetic_world / "pretrain" / "raw_caption.json", folder)
    (folder / "train.lst").write_text("\n".join(ids) + "\n")
    build_store(folder, tmp_path / "store", shard_size=3, progress=False)
    assert data_main(["check", str(tmp_path / "store")]) == 0
    assert "train videos: 4" in capsys.readouterr().out
    np.save(tmp_path / "store" / "train_1_starts.npy", np.array([0, 5, 9], np.int64))  # corrupt offsets
    assert data_main(["check", str(tmp_path / "store")]) == 1
    assert "train_1_starts.npy: offsets: expected 2 offsets" in capsys.readouterr().out


def test_data_check_does_not_import_torch(synthetic_world):
    """``python -m vclip.data check`` reads annotations and feature headers: the registry of tasks loads
    without torch (it is imported only where a model is scored), so a check starts in well under a second."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "from vclip.data.__main__ import main\n"
        f"code = main(['check', {str(synthetic_world)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'faiss') if m in sys.modules)\n"
        "print('HEAVY', heavy, code)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY [] 0" in out.stdout, out.stdout[-2000:]
