"""Reading weight files without running code from them: safetensors, ``torch.load(weights_only=True)``,
and a restricted unpickler for the reference release's ``checkpoint_best.pt``.

Paper: VideoCLIP (Xu et al., EMNLP 2021); the released pre-trained model is fairseq ``examples/MMPT``
``runs/retri/videoclip/checkpoint_best.pt`` (its layout: :mod:`vclip.checkpoint`).

Safety: a ``.pt`` file is a pickle. It is first read with ``torch.load(weights_only=True)``; if that
refuses (the release carries bookkeeping objects such as an omegaconf ``DictConfig`` and an argparse
``Namespace``), a restricted unpickler is used that never imports or calls anything outside a small
allowlist of tensor/container constructors: other classes become inert placeholders (state kept,
no code run), and a pickle that would *call* anything else (``os.system``, ``eval``, ...) is refused
with :class:`UnsafeCheckpointError`.

That fallback is for the release file only. Every other file the kit reads goes through a loader
that never unpickles anything but tensors and plain containers: :func:`load_state_file`
(``torch.load(weights_only=True)``, the trainer state of a run), :func:`load_weights_file`
(safetensors) and :func:`vclip.rundir.read_json_file`. A file they cannot read is a
:class:`CheckpointError` whose one-line message names the file (``docs/reliability.md``).
"""

from __future__ import annotations

import _compat_pickle
import collections
import logging
import os
import pickle

import torch

from vclip.errors import CheckpointError
from vclip.rundir import one_line

logger = logging.getLogger(__name__)

# Modules whose classes may be *constructed* as inert placeholders when a pickle calls them (enums,
# config nodes): the real classes are never imported, so no code from them runs.
BOOKKEEPING_MODULES = ("omegaconf", "argparse", "fairseq", "mmpt", "hydra", "typing", "enum", "pathlib")


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The checkpoint's pickle tries to call a function that is not on the allowlist."""


# ------------------------------------------------------------------ restricted unpickling
class InertObject:
    """Stands in for an object of a class the checkpoint names but vclip does not import.

    ``vclip_global`` is the class's ``module.name``; ``vclip_args`` the constructor arguments in the
    pickle; ``vclip_state`` what ``__setstate__`` received; ``vclip_items`` / ``vclip_list`` what
    dict- or list-like pickles added. Nothing of the original class runs.
    """

    vclip_global = "?"
    vclip_callable_ok = False

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__.update(vclip_args=args, vclip_state=None, vclip_items={}, vclip_list=[])
        return obj

    def __init__(self, *args, **kwargs):
        # Reached only when the pickle *calls* the class (REDUCE), not for NEWOBJ reconstruction.
        if not self.vclip_callable_ok:
            shown = ", ".join(repr(arg)[:80] for arg in args)
            raise UnsafeCheckpointError(
                f"refusing to load: the pickle would call {self.vclip_global}({shown}); "
                "vclip never runs code from a checkpoint file"
            )

    def __setstate__(self, state):
        self.__dict__["vclip_state"] = state

    def __setitem__(self, key, value):
        self.__dict__["vclip_items"][key] = value

    def append(self, value):
        self.__dict__["vclip_list"].append(value)

    def extend(self, values):
        self.__dict__["vclip_list"].extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.vclip_global}>"


_PLACEHOLDERS: dict[tuple[str, str], type] = {}


def _placeholder(module: str, name: str) -> type:
    key = (module, name)
    if key not in _PLACEHOLDERS:
        bookkeeping = module.split(".")[0] in BOOKKEEPING_MODULES
        _PLACEHOLDERS[key] = type(
            f"Inert_{name}",
            (InertObject,),
            {"vclip_global": f"{module}.{name}", "vclip_callable_ok": bookkeeping},
        )
    return _PLACEHOLDERS[key]


def _safe_reconstructor(cls, base, state=None):
    """``copyreg._reconstructor`` restricted to placeholders (protocol 0/1 objects)."""
    if not (isinstance(cls, type) and issubclass(cls, InertObject)) or base is not object:
        raise UnsafeCheckpointError(
            f"refusing to load: copyreg._reconstructor({cls!r}, {base!r}) is not allowed"
        )
    return cls.__new__(cls)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it to store bytes; only the latin-1 codec."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(
            f"refusing to load: _codecs.encode({text!r:.40}, {encoding!r}) is not allowed"
        )
    return text.encode("latin1")


def _safe_globals() -> dict[tuple[str, str], object]:
    import numpy

    allowed: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("copyreg", "_reconstructor"): _safe_reconstructor,
        ("_codecs", "encode"): _latin1_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("numpy", "dtype"): numpy.dtype,
        ("numpy", "ndarray"): numpy.ndarray,
    }
    for name in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
    ):
        allowed[("torch._utils", name)] = getattr(torch._utils, name)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    multiarray = getattr(numpy, "_core", getattr(numpy, "core", None)).multiarray
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed: dict | None = None

    def find_class(self, module: str, name: str):
        # Protocol-2 pickles name Python 2 modules (__builtin__, copy_reg); map them as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _safe_globals()
        found = _RestrictedUnpickler._allowed.get((module, name))
        return found if found is not None else _placeholder(module, name)


class _RestrictedPickleModule:
    """What ``torch.load(pickle_module=...)`` needs: an ``Unpickler`` class and ``load``."""

    __name__ = "vclip.checkpoint.restricted_pickle"
    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file, **kwargs):
        return _RestrictedUnpickler(file, **kwargs).load()


def unreadable_error(path, error: BaseException, expected: str) -> CheckpointError:
    return CheckpointError(f"{path}: expected {expected}, could not read it ({one_line(error, 200)})")


def safe_torch_load(path: str | os.PathLike):
    """Read the release's ``torch.save`` file without executing code from it (see the module docstring)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        logger.debug("%s: weights_only load refused (%s); using the restricted unpickler", path, one_line(error, 200))
    except Exception as error:  # truncated zip, a text file, ...: not a checkpoint at all
        raise unreadable_error(path, error, "a torch.save checkpoint") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: {error}") from None
    except Exception as error:
        raise unreadable_error(path, error, "a torch.save checkpoint") from None


def load_state_file(path: str | os.PathLike) -> dict:
    """A dict of tensors and plain containers saved with ``torch.save`` (the trainer state of a run).

    Read with ``torch.load(weights_only=True)`` only: a pickle that names anything else (a class, a
    function) is refused, never run. Any failure is a one-line :class:`CheckpointError`.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused, it holds more than tensors and plain containers ({one_line(error, 160)})"
        ) from None
    except Exception as error:
        raise unreadable_error(path, error, "a torch.save file of tensors and plain containers") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict, found a {type(state).__name__}")
    return state


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file (a format that holds tensors only), or a CheckpointError."""
    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        return load_file(path)
    except Exception as error:  # safetensors raises its own SafetensorError on a bad header
        raise unreadable_error(path, error, "a safetensors file of weights") from None


__all__ = ["InertObject", "UnsafeCheckpointError", "load_state_file", "load_weights_file", "safe_torch_load", "unreadable_error"]
