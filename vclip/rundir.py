"""The run directory of a pre-training or fine-tuning run: its layout, its lock, its checkpoints and its metrics.

Paper: VideoCLIP section 4.1 (pre-training for 25 epochs on 8 GPUs, keeping the best checkpoint).
Reference: fairseq's ``checkpoint_utils.py`` (``checkpoint_best.pt`` / ``checkpoint_last.pt`` written
through a temporary file) as used by ``examples/MMPT`` ``projects/retri/videoclip/how2.yaml``
(``save_interval_updates: 1024``). vclip keeps one folder per checkpoint instead::

    <run>/config.json                     the run's configuration (what it was started with)
    <run>/metrics.jsonl                   one JSON object per line: epoch plans, train, val, eval records
    <run>/tensorboard/                    the same records as TensorBoard scalars (optional: vclip.tensorboard_log)
    <run>/.lock                           held while a process owns the run (pid and host inside)
    <run>/checkpoints/step_XXXXXX/        model.safetensors, config.json, trainer_state.pt
    <run>/checkpoints/LATEST              the name of the newest complete checkpoint
    <run>/checkpoints/BEST                the name of the checkpoint with the lowest validation loss

A fine-tuning run (:mod:`vclip.training.finetuning`) has the same layout (a checkpoint per epoch end;
the last one and the selected one are kept; older runs' ``epoch_XXX/`` folders are still read) and
its ``finetune.json`` summary. This module is the only
place that knows that layout; the training loop (:mod:`vclip.training.loop`), the
checkpoint loader (:mod:`vclip.checkpoint`) and the notebooks (:mod:`vclip.notebooks`) call it.
What it guarantees (``docs/reliability.md``):

* **Nothing in a run directory runs code.** Run files are read as JSON, plain text or through the
  weights-only loaders of :mod:`vclip.checkpoint`; ``LATEST`` / ``BEST`` may only hold the kit's own
  names (``step_`` and six or more digits) and resolve inside ``checkpoints/``.
* **One owner.** :meth:`RunDir.lock` creates ``.lock`` atomically (``O_CREAT | O_EXCL``) before anything
  else is written, and holds an advisory ``flock`` on it so that a lock left by a killed process is
  recognised as stale; the lock is removed when the owner finishes (and at interpreter exit).
* **Atomic writes.** A checkpoint is written to ``checkpoints/.tmp_step_XXXXXX``, fsynced and renamed,
  and only then named in ``LATEST``; a failed write (a full disk) removes the temporary folder and
  raises one line naming it. ``metrics.jsonl`` is rewritten through a temporary file and a rename; a
  torn last line (a kill during an append) is dropped when read.
"""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from vclip.errors import CheckpointError, RunDirError

try:  # POSIX advisory locks tell a live owner from a stale lock file
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: fall back to the pid check
    fcntl = None

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".lock"
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "LATEST"
BEST_FILE = "BEST"
STATE_FILE = "trainer_state.pt"  # optimiser, scheduler, scaler, data position, RNG (weights-only torch.save)
WEIGHTS_FILE = "model.safetensors"
MODEL_CONFIG_FILE = "config.json"
CHECKPOINT_FILES = (WEIGHTS_FILE, MODEL_CONFIG_FILE, STATE_FILE)
STEP_NAME = re.compile(r"step_\d{6,}|epoch_\d{3,}")  # pre-training updates; fine-tuning epochs






def step_name(step: int) -> str:
    """The folder name of the checkpoint after ``step`` updates: ``step_000100``."""
    return f"step_{int(step):06d}"


def one_line(text: object, limit: int = 300) -> str:
    """``text`` as one line of at most ``limit`` characters (for error messages quoting other errors)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ----------------------------------------------------------------------------------- small files
def read_text_file(path: Path, limit: int = 1 << 20) -> str:
    """The UTF-8 text of a small run file; a binary or oversized file is a :class:`CheckpointError`."""
    path = Path(path)
    try:
        data = path.read_bytes() if path.stat().st_size <= limit else None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read it ({one_line(error.strerror or error)})") from None
    if data is None:
        raise CheckpointError(f"{path}: expected a small text file, found {path.stat().st_size} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: expected UTF-8 text, found binary data") from None


def read_json_file(path: Path) -> dict:
    """A JSON object from ``path`` (``config.json``), or a :class:`CheckpointError` naming the file."""
    text = read_text_file(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: expected a JSON object, found invalid JSON ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found a {type(value).__name__}")
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``<path>.tmp``, fsync and rename (readers see old or new)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise RunDirError(f"{path}: could not write it ({one_line(error.strerror or error)})") from None
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------- the lock
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class RunLock:
    """Exclusive ownership of a run directory (see the module docstring); use as a context manager."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                holder = self._holder()
                if self._remove_if_stale(holder):
                    log.warning("%s: removed a stale lock (%s)", self.path, holder or "unreadable")
                    continue
                who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
                raise RunDirError(
                    f"{self.path.parent} is in use by {who} (lock {self.path}); wait for that run to finish "
                    "or choose another --output (remove the lock only if no run is active)"
                ) from None
            if not self._flock(fd, wait=0.5) or not self._same_file(fd):
                os.close(fd)  # another process removed or took the file between our create and our flock
                continue
            payload = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            os.write(fd, (json.dumps(payload) + "\n").encode())
            os.fsync(fd)
            self._fd = fd
            atexit.register(self.release)
            return self
        raise RunDirError(f"{self.path}: could not take the lock (it keeps changing hands)")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
            atexit.unregister(self.release)

    def __enter__(self) -> RunLock:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc) -> None:
        self.release()

    # ---------------------------------------------------------------- helpers
    def _holder(self) -> dict:
        try:
            value = json.loads(self.path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return value if isinstance(value, dict) else {}

    @staticmethod
    def _flock(fd: int, wait: float = 0.0) -> bool:
        """Take the advisory lock of ``fd`` without blocking (retrying for ``wait`` seconds)."""
        if fcntl is None:
            return True
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return True  # no lock support on this file system: rely on O_EXCL and the pid
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _remove_if_stale(self, holder: dict) -> bool:
        """Remove the lock file if nobody holds it; True if it is gone, False if a live run owns it.

        With flock: free means its owner died (a kill -9 drops the flock); a file without content that
        is younger than 2 s may be a run between its create and its flock, and counts as held. Without
        flock: stale when its pid is gone on this host.
        """
        if fcntl is None:
            pid, host = holder.get("pid"), holder.get("host")
            if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
                self.path.unlink(missing_ok=True)
                return True
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            if not self._flock(fd):
                return False  # a live process holds it
            if not holder and time.time() - os.fstat(fd).st_mtime < 2.0:
                return False
            if self._same_file(fd):  # still the file we judged (not a newer owner's)
                self.path.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------------- the directory
class RunDir:
    """One run directory (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / CONFIG_FILE
        self.metrics_path = self.path / METRICS_FILE
        self.lock_path = self.path / LOCK_FILE
        self.checkpoints = self.path / CHECKPOINTS_DIR
        self.latest_path = self.checkpoints / LATEST_FILE
        self.best_path = self.checkpoints / BEST_FILE
        # Where else each appended metrics record goes (vclip.tensorboard_log.TensorBoardSink): .write(record), .close()
        self.sinks: list = []

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---------------------------------------------------------------- ownership
    def lock(self) -> RunLock:
        """Create the folder and take its lock (before anything else is written); release when done."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunDirError(f"{self.path}: cannot create the run directory ({one_line(error)})") from None
        return RunLock(self.lock_path).acquire()

    def holds_run(self) -> bool:
        """Whether a run was started here (metrics or a checkpoint exist)."""
        return self.metrics_path.exists() or self.latest_path.exists()

    # ---------------------------------------------------------------- configuration
    def read_config(self) -> dict:
        return read_json_file(self.config_path)

    def write_config(self, values: dict) -> None:
        atomic_write_text(self.config_path, json.dumps(values, indent=2) + "\n")

    # ---------------------------------------------------------------- checkpoints
    def _named(self, pointer: Path) -> Path:
        """The checkpoint folder a LATEST/BEST file names: only the kit's names, inside checkpoints/."""
        name = read_text_file(pointer, limit=4096).strip()
        if not STEP_NAME.fullmatch(name):
            raise CheckpointError(
                f"{pointer}: expected the name of a checkpoint folder (step_ and six or more digits, or epoch_ and three or more), "
                f"found {one_line(repr(name), 80)}"
            )
        folder = self.checkpoints / name
        root = self.checkpoints.resolve()
        if folder.is_symlink() or folder.resolve().parent != root:
            raise CheckpointError(f"{pointer}: {name} does not resolve inside {self.checkpoints}")
        return folder

    def latest(self, required: tuple[str, ...] = CHECKPOINT_FILES) -> Path | None:
        """The newest complete checkpoint folder (what LATEST names), or None before the first save.

        Raises :class:`CheckpointError` when LATEST is malformed or names an incomplete folder.
        """
        if not self.latest_path.exists():
            return None
        folder = self._named(self.latest_path)
        missing = [name for name in required if not (folder / name).is_file()]
        if missing:
            raise CheckpointError(f"{self.latest_path} names '{folder.name}', but {folder} has no {', '.join(missing)}")
        return folder

    def best(self) -> Path | None:
        """The checkpoint folder BEST names (lowest validation loss), or None."""
        return self._named(self.best_path) if self.best_path.exists() else None

    def resume_candidates(self) -> list[Path]:
        """The checkpoints a resume may start from, newest first: LATEST's, then the older ones of its kind.

        Empty when there is no ``LATEST`` (nothing was saved). A malformed ``LATEST`` is a
        :class:`CheckpointError`; the folder it names may still be damaged (a truncated file): the trainer
        tries them in order and says which it skipped and why.
        """
        if not self.latest_path.exists():
            return []
        newest = self._named(self.latest_path)
        kind = newest.name.split("_")[0]
        older = [n for n in self.checkpoint_names() if n.split("_")[0] == kind and n < newest.name]
        return [newest, *(self.checkpoints / n for n in reversed(older))]

    def clear(self, lock: RunLock) -> None:
        """Remove everything in the run directory but its lock, which the caller must hold (nothing of a
        run another process owns is ever removed)."""
        if not (lock.held and lock.path == self.lock_path):
            raise RunDirError(f"{self.path}: clearing a run directory needs its lock ({self.lock_path}) held")
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def remove(self) -> None:
        """Remove the whole run directory, taking its lock first (refused while a live process holds it)."""
        if not self.path.exists():
            return
        lock = self.lock()
        try:
            self.clear(lock)
        finally:
            lock.release()
        self.path.rmdir()

    def checkpoint_names(self) -> list[str]:
        """The complete-looking checkpoint folders, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(p.name for p in self.checkpoints.iterdir() if p.is_dir() and STEP_NAME.fullmatch(p.name))

    def save_checkpoint(self, step: int, write: Callable[[Path], None], best_step: int | None = None) -> Path:
        """Write ``checkpoints/step_XXXXXX`` atomically with ``write(folder)``, then LATEST (and BEST).

        ``write`` fills a temporary folder; its files are fsynced and the folder renamed into place.
        Any ``OSError`` (a full disk) removes the temporary folder and raises one line naming it; the
        previous checkpoint and LATEST are untouched.
        """
        best = step_name(best_step) if best_step is not None and best_step >= 0 else None
        return self.save_named(step_name(step), write, best, what=f"the checkpoint of step {step}")

    def save_named(self, name: str, write: Callable[[Path], None], best: str | None = None,
                   what: str | None = None) -> Path:
        """:meth:`save_checkpoint` for a folder named ``name`` (``epoch_003``); BEST names ``best`` when given."""
        if not STEP_NAME.fullmatch(name) or (best is not None and not STEP_NAME.fullmatch(best)):
            raise ValueError(f"checkpoint names are step_XXXXXX or epoch_XXX, got {name!r} / {best!r}")
        what = what or f"checkpoint {name}"
        tmp = self.checkpoints / f".tmp_{name}"
        final = self.checkpoints / name
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            write(tmp)
            for file in tmp.iterdir():
                fsync_file(file)
            fsync_dir(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_dir(self.checkpoints)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RunDirError(
                f"{tmp}: could not write {what} ({one_line(error.strerror or error)}); "
                f"removed it, the previous checkpoint is unchanged"
            ) from None
        atomic_write_text(self.latest_path, name + "\n")
        if best is not None:
            atomic_write_text(self.best_path, best + "\n")
        return final

    def prune(self, keep_last: int, keep: set[str] = frozenset()) -> None:
        """Remove checkpoint folders except the newest ``keep_last`` and those named in ``keep``."""
        names = self.checkpoint_names()
        kept = set(keep) | set(names[-keep_last:] if keep_last > 0 else [])
        for name in names:
            if name not in kept:
                shutil.rmtree(self.checkpoints / name, ignore_errors=True)

    # ---------------------------------------------------------------- metrics
    def read_metrics(self) -> list[dict]:
        """The records of ``metrics.jsonl``; a torn last line (no trailing newline) is dropped.

        Any other line that is not a JSON object is a :class:`CheckpointError` naming the line.
        """
        if not self.metrics_path.exists():
            return []
        try:
            data = self.metrics_path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"{self.metrics_path}: cannot read it ({one_line(error)})") from None
        lines = data.split(b"\n")
        torn = lines.pop()  # b"" when the file ends with a newline
        if torn.strip():
            log.warning("%s: dropping a torn last line (%d bytes)", self.metrics_path, len(torn))
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise CheckpointError(
                    f"{self.metrics_path}: line {number}: expected a JSON object, found {one_line(line[:60])}"
                ) from None
            if not isinstance(record, dict):
                raise CheckpointError(f"{self.metrics_path}: line {number}: expected a JSON object")
            records.append(record)
        return records

    def append_metrics(self, record: dict) -> None:
        """Append one record as one line (a crash mid-append leaves a torn line that reading drops), then
        hand it to the run's :attr:`sinks` (TensorBoard): the one place both training loops log through."""
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        for sink in self.sinks:
            sink.write(record)

    def open_tensorboard(self, purge_step: int | None = None) -> None:
        """Also write every record appended from now on as TensorBoard scalars (``<run>/tensorboard``)."""
        from vclip.tensorboard_log import TensorBoardSink

        self.sinks.append(TensorBoardSink(self.path, purge_step))

    def close_sinks(self) -> None:
        while self.sinks:
            self.sinks.pop().close()

    def rewrite_metrics(self, records: list[dict]) -> None:
        """Replace ``metrics.jsonl`` atomically with ``records``."""
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in records))

    def metrics_until(self, step: int) -> list[dict]:
        """Keep the records logged up to the checkpoint of ``step`` (the rest will be logged again).

        At a checkpoint's own step only the next epoch's plan comes after the save, so it is dropped.
        The file is rewritten atomically; the kept records are returned.
        """
        kept = []
        for record in self.read_metrics():
            at = record.get("step", 0)
            if at < step or (at == step and record.get("kind") != "epoch_plan"):
                kept.append(record)
        self.rewrite_metrics(kept)
        return kept


# ----------------------------------------------------------------------------------- resume rules
RESUMABLE_CHANGES = (
    "steps", "epochs", "total_num_update",  # train longer (or shorter); the decay horizon follows
    "resume", "progress", "device",  # how this process runs, not what it computes
    "log_every", "save_every", "keep_last", "val_every", "eval_every", "eval_data", "eval_task", "tensorboard",  # bookkeeping
    "output",  # the run directory itself (it may have been moved)
)
"""Settings a resumed run may change; every other difference from the saved configuration is refused."""


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _same_path(a, b) -> bool:
    if not isinstance(a, str) or not isinstance(b, str) or not a or not b:
        return a == b
    return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def config_differences(saved: dict, requested: dict, allowed=RESUMABLE_CHANGES) -> list[str]:
    """Settings whose requested value differs from the saved one, as ``name: saved -> requested``.

    Both are JSON-shaped dicts (nested sections are compared by dotted name); a setting listed in
    ``allowed`` (by its last name) may differ. Paths compare by where they point.
    """
    saved, requested = _flatten(json.loads(json.dumps(saved))), _flatten(json.loads(json.dumps(requested)))
    changed = []
    for key in sorted(set(saved) | set(requested)):
        if key.rsplit(".", 1)[-1] in allowed:
            continue
        a, b = saved.get(key, "<absent>"), requested.get(key, "<absent>")
        if not (_same_path(a, b) if key.rsplit(".", 1)[-1] == "data" else a == b):
            changed.append(f"{key}: {a!r} -> {b!r}")
    return changed


__all__ = [
    "CHECKPOINT_FILES",
    "RESUMABLE_CHANGES",
    "RunDir",
    "RunLock",
    "config_differences",
    "step_name",
]
