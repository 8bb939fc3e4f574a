"""The papermill runner behind `make demo` (vclip.notebooks) and the shape of the committed notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from vclip import notebooks as runner

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
    params.write_text("common:\n  y: 5\n  not_declared_anywhere: 1\nnotebooks:\n  01_square:\n    x: 3\n")
    out = tmp_path / "out"
    code = runner.main(["run", "--out", str(out), "--params", str(params),
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
        assert values["work_dir"] == str((tmp_path / "out").resolve())
        if "data_dir" in common and "data_dir" in values:
            assert Path(values["data_dir"]).is_absolute()
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
