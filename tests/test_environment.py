"""The conda description (environment.yml) and pip metadata (pyproject.toml) must agree."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():  # dev, and the optional features (tensorboard)
        requirements += list(extra)
    return dict(_normalise(r) for r in requirements)


def _environment_yml_requirements() -> tuple[str, dict[str, str]]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    python = next(line.split("=", 1)[1].strip() for line in lines if line.strip().startswith("- python="))
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip_lines = [line.strip()[2:] for line in lines[start + 1 :] if line.strip().startswith("- ")]
    return python, dict(_normalise(r) for r in pip_lines)


def test_environment_yml_matches_pyproject():
    python, conda_pip = _environment_yml_requirements()
    assert python == "3.11"
    assert conda_pip == _pyproject_requirements()


def test_torch_is_pinned():
    # An unpinned torch pulls a multi-GB CUDA build on machines without the local CPU wheel.
    assert _pyproject_requirements()["torch"] == "==2.13.0"


def test_info_command_reports_the_install_one_fact_a_line():
    """``python -m vclip info`` as a user runs it: exit 0, one ``key  value`` line per fact."""
    import os
    import subprocess
    import sys

    from vclip.config import CONFIG_DIR
    from vclip.tasks import TASKS

    result = subprocess.run([sys.executable, "-m", "vclip", "info"], capture_output=True, text=True, timeout=300,
                            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    facts = dict(re.match(r"^(\S+(?: \S+)*)\s{2,}(.*)$", line).groups() for line in result.stdout.splitlines())
    for key in ("vclip", "torch", "torch threads", "cuda available", "devices", "faiss", "transformers", "tokenizer",
                "synthetic data", "recipes", "HF_HUB_OFFLINE"):
        assert key in facts, f"{key!r} missing from:\n{result.stdout}"
    assert facts["HF_HUB_OFFLINE"] == "1" and facts["tokenizer"].startswith("loads offline")
    assert facts["recipes"].split(" (")[0] == ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
    for name in TASKS:
        assert "paper numbers: zero-shot" in facts[f"task {name}"]


def _imported_top_level_modules(folder: Path) -> set[str]:
    import ast

    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_imported_third_party_module_is_declared():
    import sys
    from importlib.metadata import packages_distributions

    declared = set(_pyproject_requirements())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_normalise(r)[0] for r in project["dependencies"]}
    owners = packages_distributions()
    # modules that come with a declared distribution without being its own one
    bundled = {"IPython": "ipykernel", "ipywidgets": "ipywidgets", "safetensors": "safetensors"}
    for folder, allowed in (("vclip", runtime), ("tests", declared), ("benchmarks", declared)):
        for module in sorted(_imported_top_level_modules(ROOT / folder)):
            if module in sys.stdlib_module_names or module in ("vclip", "conftest", "benchmarks", "__future__"):
                continue
            if (ROOT / folder / f"{module}.py").is_file():  # a script importing its sibling (benchmarks/)
                continue
            distributions = {d.lower().replace("_", "-") for d in owners.get(module, [])}
            if module in bundled:
                distributions.add(bundled[module])
            assert distributions & allowed, f"{folder}/ imports {module!r} (from {sorted(distributions) or 'nowhere'}), " \
                                            f"which is not declared in pyproject.toml"
