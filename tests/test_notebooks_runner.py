"""The papermill runner behind `make demo` (vclip.notebooks) and the shape of the committed notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from vclip import notebooks as runner
from vclip.notebooks.__main__ import main as notebooks_main

REPO = Path(__file__).resolve().parents[1]


def _write_notebook(path: Path, params_source: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(params_source)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("from vclip.notebooks import record"), params,
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture()
def tiny_notebooks(tmp_path) -> Path:
    folder = tmp_path / "nbs"
    folder.mkdir()
    _write_notebook(folder / "01_square.ipynb", 'x = 2\nwork_dir = "unused"',
                    "import os\nrecord('x_squared', x * x)\nrecord('cwd', os.path.basename(os.getcwd()))\n"
                    "record('work_dir_absolute', os.path.isabs(work_dir))")
    _write_notebook(folder / "02_fails.ipynb", "y = 1", "record('before_error', y)\nraise RuntimeError('boom')")
    (folder / "README.md").write_text("not a notebook")
    return folder


def test_run_executes_in_order_records_metrics_and_reports_failures(tiny_notebooks, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("common:\n  y: 5\nnotebooks:\n  01_square:\n    x: 3\n")
    out = tmp_path / "out"
    code = notebooks_main(["run", "--out", str(out), "--params", str(params),
                        "--notebooks-dir", str(tiny_notebooks)])
    assert code == 1  # the second notebook raised
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert [s["notebook"] for s in summary] == ["01_square", "02_fails"]
    first, second = summary
    assert first["ok"] and first["metrics"] == {"x_squared": 9, "cwd": "nbs", "work_dir_absolute": True}
    assert not second["ok"] and "boom" in second["error"]
    assert second["metrics"] == {"before_error": 5}  # common parameter applied where declared
    assert (out / "01_square.ipynb").exists() and (out / "02_fails.ipynb").exists()
    assert "x_squared" in printed and "FAILED" in printed and "1/2 notebooks ran" in printed
    assert str(out.resolve()) in printed


def test_only_selects_by_prefix(tiny_notebooks, tmp_path):
    results = runner.run_notebooks(tmp_path / "out", only=["01"], notebooks_dir=tiny_notebooks)
    assert [r.stem for r in results] == ["01_square"] and results[0].ok
    assert results[0].metrics["x_squared"] == 4
    with pytest.raises(ValueError, match="99"):
        runner.run_notebooks(tmp_path / "out", only=["99"], notebooks_dir=tiny_notebooks)


def test_unknown_parameters_are_errors(tiny_notebooks, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebooks:\n  01_square:\n    z: 1\n")
    with pytest.raises(ValueError, match=r"01_square.ipynb has no parameters \['z'\]"):
        runner.run_notebooks(tmp_path / "out", bad, notebooks_dir=tiny_notebooks)
    bad.write_text("notebooks:\n  07_missing:\n    x: 1\n")
    with pytest.raises(ValueError, match="07_missing"):
        runner.run_notebooks(tmp_path / "out", bad, notebooks_dir=tiny_notebooks)
    bad.write_text("paramz:\n  x: 1\n")
    with pytest.raises(ValueError, match="paramz"):
        runner.load_params(bad)


def test_the_program_refuses_unknown_parameters_in_one_line(tiny_notebooks, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    for text, named in [("common:\n  not_declared_anywhere: 1\n", "not_declared_anywhere"),
                        ("notebooks:\n  01_square:\n    z: 1\n", "'z'")]:
        bad.write_text(text)
        code = notebooks_main(["run", "--out", str(tmp_path / "out"), "--params", str(bad), "--only", "01",
                            "--notebooks-dir", str(tiny_notebooks)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: ") and named in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_teaching_run_refuses_unknown_settings(tmp_path):
    with pytest.raises(ValueError, match=r"unknown setting 'learning_rate'"):
        runner.teaching_run(tmp_path / "data", tmp_path / "work", learning_rate=1.0)


def _small_pretrain_folder(world: Path, out: Path, n_train: int = 16, n_val: int = 8) -> Path:
    """The first videos of the synthetic world's pre-training folder, as a folder of the same layout."""
    import shutil

    source = world / "pretrain"
    train = (source / "train.lst").read_text().split()[:n_train]
    val = (source / "val.lst").read_text().split()[:n_val]
    (out / "features").mkdir(parents=True)
    for video in train + val:
        shutil.copy(source / "features" / f"{video}.npy", out / "features" / f"{video}.npy")
    captions = json.loads((source / "raw_caption.json").read_text())
    (out / "raw_caption.json").write_text(json.dumps({v: captions[v] for v in train + val}))
    (out / "train.lst").write_text("\n".join(train) + "\n")
    (out / "val.lst").write_text("\n".join(val) + "\n")
    return out


def test_teaching_run_is_reused_by_content_not_by_path(synthetic_world, tmp_path, monkeypatch):
    """A moved folder (data and runs together) is reused; a changed setting or a changed world trains again."""
    import shutil

    import vclip.training.pretraining

    trained = []
    real_pretrain = vclip.training.pretraining.pretrain
    monkeypatch.setattr(vclip.training.pretraining, "pretrain", lambda config, *a, **k: (trained.append(config.seed),
                                                                               real_pretrain(config, *a, **k))[1])
    settings = dict(name="t", preset="tiny", steps=2, seed=0, val_max_groups=1)
    data = _small_pretrain_folder(synthetic_world, tmp_path / "first" / "data")
    run = runner.teaching_run(data, tmp_path / "first" / "work", **settings)
    assert trained == [0] and (run / runner.FINGERPRINT_FILE).is_file()
    assert runner.teaching_run(data, tmp_path / "first" / "work", **settings) == run and trained == [0]

    shutil.move(tmp_path / "first", tmp_path / "moved")  # a clone or a moved checkout: no retraining
    moved = tmp_path / "moved"
    assert runner.teaching_run(moved / "data", moved / "work", **settings).is_dir() and trained == [0]

    runner.teaching_run(moved / "data", moved / "work", **{**settings, "seed": 1})  # another setting
    assert trained == [0, 1]
    captions = json.loads((moved / "data" / "raw_caption.json").read_text())
    first = next(iter(captions))
    captions[first]["text"][0] = "a different first sentence"
    (moved / "data" / "raw_caption.json").write_text(json.dumps(captions))  # the world changed
    runner.teaching_run(moved / "data", moved / "work", **{**settings, "seed": 1})
    assert trained == [0, 1, 1]
    (moved / "work" / "runs" / "t" / runner.FINGERPRINT_FILE).unlink()  # a run stopped before it finished
    runner.teaching_run(moved / "data", moved / "work", **{**settings, "seed": 1})
    assert trained == [0, 1, 1, 1]


def test_data_fingerprint_is_relative_and_covers_every_byte(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "features").mkdir(parents=True)
        (tmp_path / name / "features" / "v.npy").write_bytes(b"123")
        (tmp_path / name / "train.lst").write_text("v\n")
    first = runner.data_fingerprint(tmp_path / "a")
    assert first == runner.data_fingerprint(tmp_path / "b") and first["files"] == 2 and first["bytes"] == 5
    (tmp_path / "b" / "features" / "v.npy").write_bytes(b"124")
    assert runner.data_fingerprint(tmp_path / "b") != first
    (tmp_path / "b" / "features" / "v.npy").write_bytes(b"123")
    (tmp_path / "b" / "features" / "v.npy").rename(tmp_path / "b" / "features" / "w.npy")  # same bytes, renamed
    assert runner.data_fingerprint(tmp_path / "b") != first
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runner.data_fingerprint(tmp_path / "missing")


def test_progress_in_a_notebook_is_widgets_only(tmp_path):
    """Under setup_notebook a kit bar and a progress note are widget views, no text: nbval compares none of it."""
    import papermill

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("from vclip.notebooks import setup_notebook\nsetup_notebook()"),
                nbformat.v4.new_code_cell("from vclip.progress import progress_bar, progress_note\n"
                                          "progress_note('training t: no earlier run')\n"
                                          "for _ in progress_bar(range(3), desc='pretrain'):\n    pass\n"
                                          "for _ in progress_bar(range(3), enabled=False):\n    pass")]
    nbformat.write(nb, tmp_path / "bars.ipynb")
    papermill.execute_notebook(str(tmp_path / "bars.ipynb"), str(tmp_path / "ran.ipynb"), kernel_name="python3",
                               cwd=str(tmp_path), progress_bar=False, log_output=False, execution_timeout=120)
    outputs = nbformat.read(tmp_path / "ran.ipynb", as_version=4).cells[1].outputs
    assert [o.output_type for o in outputs] == ["display_data", "display_data"]  # the note and one bar
    assert all(set(o.data) == {"application/vnd.jupyter.widget-view+json"} for o in outputs)


def test_relative_path_parameters_resolve_against_the_callers_directory(tiny_notebooks, tmp_path):
    plan = runner.plan_parameters(
        runner.discover_notebooks(tiny_notebooks), {"work_dir": "ignored"}, {"01_square": {"x": 7}},
        tmp_path / "out", base=tmp_path)
    assert plan["01_square"] == {"work_dir": str((tmp_path / "ignored").resolve()), "x": 7}
    assert plan["02_fails"] == {}


def test_record_validates_and_writes_json(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    monkeypatch.setenv(runner.RECORD_ENV, str(target))
    runner.record("r1", 12.5)
    runner.record("name", "tiny")
    assert json.loads(target.read_text()) == {"r1": 12.5, "name": "tiny"}
    with pytest.raises(ValueError, match="finite"):
        runner.record("bad", float("nan"))
    with pytest.raises(ValueError, match="JSON"):
        runner.record("bad", object())
    with pytest.raises(ValueError, match="non-empty"):
        runner.record("", 1)


def test_discover_requires_numbered_notebooks(tmp_path):
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        runner.discover_notebooks(tmp_path)


# ---------------------------------------------------------------------------------------------------
# The committed chapters follow the kit's notebook conventions (style.md, issue 7).

COMMITTED = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("stem", COMMITTED)
def test_committed_notebook_conventions(stem):
    path = REPO / "notebooks" / f"{stem}.ipynb"
    assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes; keep it under 1 MB"
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "import" in code[0].source and "parameters" not in code[0].metadata.get("tags", [])
    assert "import *" not in "".join(c.source for c in code)
    assert "parameters" in code[1].metadata.get("tags", []), f"{path.name}: 2nd code cell must be tagged"
    for line in code[1].source.splitlines():
        assert line.startswith("#") or not line.strip() or "=" in line, f"{path.name}: non-literal {line!r}"
    for line in code[0].source.splitlines():  # the imports cell holds imports and the set-up call only
        assert not line.strip() or line.startswith(("import ", "from ", "setup_notebook(")), \
            f"{path.name}: the first code cell should only import, found {line!r}"
    assigned = [ln.split("=")[0].strip() for ln in code[1].source.splitlines() if "=" in ln and not ln.startswith("#")]
    assert sorted(runner.notebook_parameters(path)) == sorted(assigned), f"{path.name}: papermill misreads parameters"
    for i, cell in enumerate(code[1:], start=1):
        n_lines = len([ln for ln in cell.source.splitlines() if ln.strip()])
        assert n_lines <= 16, f"{path.name} code cell {i} has {n_lines} lines; move logic into vclip/"
    for i, cell in enumerate(code):
        assert cell.execution_count is not None, f"{path.name} code cell {i} is not executed"
        hidden = {"nbval-ignore-output", "nbval-skip", "nbval-check-output"} & set(cell.metadata.get("tags", []))
        assert not hidden, f"{path.name} code cell {i}: mark with a visible '# NBVAL_IGNORE_OUTPUT' line, not tags {hidden}"
        assert "NBVAL_SKIP" not in cell.source, f"{path.name} code cell {i}: every cell runs under nbval"
        if "NBVAL_IGNORE_OUTPUT" in cell.source:  # its first line, where a reader sees it
            assert cell.source.startswith("# NBVAL_IGNORE_OUTPUT\n"), f"{path.name} code cell {i}: marker not first"
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{path.name} code cell {i} has an error output"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4, f"{path.name}: a chapter needs prose"


@pytest.mark.parametrize("params", sorted((REPO / "notebooks" / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_parameters_files_name_real_parameters(params, tmp_path):
    """Every shipped parameters file plans cleanly against the committed notebooks (no unknown names)."""
    notebooks = runner.discover_notebooks(REPO / "notebooks")
    common, per_notebook = runner.load_params(params)
    plan = runner.plan_parameters(notebooks, common, per_notebook, tmp_path / "out", base=REPO)
    for values in plan.values():
        if "work_dir" in values:  # every notebook that writes runs declares it (03 writes nothing)
            assert values["work_dir"] == str((tmp_path / "out").resolve())
        if "data_dir" in common and "data_dir" in values:
            assert Path(values["data_dir"]).is_absolute()
    assert sum("work_dir" in values for values in plan.values()) >= len(plan) - 1
    assert any(len(values) > 1 for values in plan.values())


def test_setup_notebook_turns_the_kits_bars_off_without_patching_tqdm():
    import subprocess
    import sys

    from vclip.progress import progress_bar

    code = ("from tqdm.auto import tqdm\n"
            "from vclip.notebooks import setup_notebook\n"
            "from vclip.progress import progress_bar\n"
            "setup_notebook()\n"
            "print(progress_bar(range(3)).disable, tqdm(range(3), disable=False).disable)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["True", "False"]  # the kit's bars off; tqdm itself left as it is
    assert not progress_bar(range(3)).disable and progress_bar(range(3), enabled=False).disable


# ---------------------------------------------------------------------------------------------------
# Every committed chapter teaches (issue 17): readable figures, and it ends with what to remember and exercises.

MIN_FIGURE_DPI = 110
OUTPUT_COLUMN_PX = 1000
"""The width an image is shown at, at most: JupyterLab and GitHub scale a wider PNG down to their output column
(about 1,000 px on a laptop screen), which lowers the resolution it is seen at."""


def png_resolution(png: bytes) -> tuple[int, float | None]:
    """(pixel width, dots per inch from the pHYs chunk or None) of a PNG file's bytes."""
    import struct

    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, dpi, position = 0, None, 8
    while position + 8 <= len(png):
        (length,), kind = struct.unpack(">I", png[position:position + 4]), png[position + 4:position + 8]
        body = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
        elif kind == b"pHYs":
            per_unit_x, _, unit = struct.unpack(">IIB", body[:9])
            dpi = per_unit_x * 0.0254 if unit == 1 else None  # unit 1: pixels per metre
        elif kind == b"IDAT":
            break
        position += 12 + length
    return width, dpi


def shown_dpi(png: bytes, metadata: dict) -> float:
    """The resolution a figure is seen at: pixels on screen per inch of the drawn figure.

    A figure drawn at ``d`` dots per inch (matplotlib writes ``d`` into the PNG's pHYs chunk) and ``w`` pixels
    wide is ``w / d`` inches of figure; shown ``s`` pixels wide (the output's ``width`` metadata, else its pixel
    width, at most :data:`OUTPUT_COLUMN_PX`) it is seen at ``s / (w / d)`` dots per inch. At 110 a 9-point label
    is about 14 screen pixels tall; at matplotlib's 72 it is 9.
    """
    width, dpi = png_resolution(png)
    assert dpi is not None, "the PNG has no pHYs chunk (matplotlib writes one): its resolution is unknown"
    shown = min(float(metadata.get("width") or width), OUTPUT_COLUMN_PX)
    return shown / (width / dpi)


def test_shown_dpi_reads_the_png_resolution():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # (drawn at, inches wide, seen at as drawn, seen at when shown at half its pixel width); 1,600 px is scaled
    for figure_dpi, inches, expected, halved in ((72, 5, 72, 36), (120, 5, 120, 60), (200, 8, 1000 / 8, 100)):
        fig = plt.figure(figsize=(inches, 2), dpi=figure_dpi)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=figure_dpi)
        plt.close(fig)
        assert shown_dpi(buffer.getvalue(), {}) == pytest.approx(expected, rel=0.01)
        assert shown_dpi(buffer.getvalue(), {"width": figure_dpi * inches / 2}) == pytest.approx(halved, rel=0.01)


@pytest.mark.parametrize("stem", COMMITTED)
def test_committed_notebook_figures_are_readable(stem):
    import base64

    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    figures = 0
    for index, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for out in cell.get("outputs", []):
            if "image/png" not in out.get("data", {}):
                continue
            figures += 1
            dpi = shown_dpi(base64.b64decode(out.data["image/png"]), out.get("metadata", {}).get("image/png", {}))
            assert dpi >= MIN_FIGURE_DPI, (f"{stem}: figure {figures} (code cell {index}) is seen at {dpi:.0f} dpi, "
                                           f"below {MIN_FIGURE_DPI}: draw it at vclip.notebooks.FIGURE_DPI")


@pytest.mark.parametrize("stem", COMMITTED)
def test_committed_notebook_ends_with_what_to_remember_and_exercises(stem):
    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    headings = [line.lstrip("#").strip().lower() for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")]
    for section in ("what to remember", "exercises"):
        assert any(h.startswith(section) for h in headings), f"{stem}: no '{section}' section (a '## ...' heading)"
    assert headings.index(next(h for h in headings if h.startswith("what to remember"))) < \
        headings.index(next(h for h in headings if h.startswith("exercises"))), f"{stem}: exercises come last"
