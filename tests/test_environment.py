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
    requirements = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
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


def test_info_command_reports_versions(capsys):
    from vclip.__main__ import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("vclip", "torch", "transformers", "faiss", "gpu", "offline text model", "torch threads"):
        assert re.search(rf"^{re.escape(key)}\s", out, re.MULTILINE), f"{key!r} missing from:\n{out}"
