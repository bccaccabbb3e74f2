"""The shared-memory form of a prepared model: what the worker writes, what serving maps.

A :class:`~serving.state.LoadedModel` is pickled (protocol 5) with its numpy arrays *out of
band*: the trees' node tables, thresholds, leaf values, encoders' statistics and the
explainer's tree arrays are written once, 64-byte aligned, into one file under a
shared-memory directory (``/dev/shm``: tmpfs, nothing touches a disk); the rest (a few hundred
KB: the encoders' category tables, small Python objects) is the in-band pickle at the start of
the same file. :class:`Manifest` says where each piece is.

The serving process maps the file (:func:`map_prepared`), removes its name at once (the mapping
keeps the memory; nothing is left in ``/dev/shm`` whatever happens next), and unpickles the
in-band part with the arrays as zero-copy, read-only views of the mapping. The mapping lives
exactly as long as the model's arrays: when the last one is dropped (the version is replaced
and its last request finished), the memory is unmapped.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import pickle
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FILE_PREFIX", "Manifest", "map_prepared", "new_path", "shared_dir", "write_prepared"]

#: Every prepared file's name starts with this (tests and operators look for leftovers by it).
FILE_PREFIX = "realtor-prepared-"
ALIGN = 64


@dataclass(frozen=True)
class Manifest:
    """Where the pieces of one prepared model are in its file (byte offsets and lengths)."""

    inband: tuple[int, int]
    buffers: tuple[tuple[int, int], ...]
    size: int

    @property
    def shared_bytes(self) -> int:
        return sum(length for _, length in self.buffers)


def shared_dir(configured: str | None) -> Path:
    """Where prepared files go: the setting, else ``/dev/shm`` (tmpfs), else the temp dir."""
    if configured:
        return Path(configured)
    shm = Path("/dev/shm")  # noqa: S108 - names are random, created O_EXCL, mode 0600
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    import tempfile

    return Path(tempfile.gettempdir())


def new_path(directory: Path, version: str) -> Path:
    """A name no other process or test uses: prefix, pid, version, random."""
    return directory / f"{FILE_PREFIX}{os.getpid()}-v{version}-{uuid.uuid4().hex}.bin"


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


def write_prepared(obj: Any, path: Path) -> Manifest:
    """Pickle ``obj`` with its arrays out of band into ``path`` (created, never overwritten)."""
    buffers: list[pickle.PickleBuffer] = []
    inband = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    placed: list[tuple[int, int]] = []
    offset = _aligned(len(inband))
    for view in views:
        placed.append((offset, view.nbytes))
        offset = _aligned(offset + view.nbytes)
    size = max(offset, 1)
    # O_EXCL: a name clash is an error, never a silent overwrite; 0600: only this user reads it
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(inband)
        for (start, _), view in zip(placed, views, strict=True):
            handle.seek(start)
            handle.write(view)
        handle.truncate(size)
    return Manifest(inband=(0, len(inband)), buffers=tuple(placed), size=size)


def map_prepared(path: Path, manifest: Manifest) -> Any:
    """The object, its arrays viewing a read-only mapping of ``path``; ``path`` is removed.

    The file's name is removed as soon as it is mapped, also when unpickling fails.
    """
    try:
        with open(path, "rb") as handle:
            found = os.fstat(handle.fileno())
            if found.st_uid != os.getuid() or found.st_mode & 0o077:
                raise PermissionError(f"{path} is not this user's private file: not unpickled")
            if found.st_size != manifest.size:
                raise ValueError(
                    f"{path} holds {found.st_size} bytes, the manifest says {manifest.size}"
                )
            mapping = mmap.mmap(handle.fileno(), manifest.size, access=mmap.ACCESS_READ)
    finally:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
    view = memoryview(mapping)
    start, length = manifest.inband
    pieces = [view[start : start + length], [view[o : o + n] for o, n in manifest.buffers]]
    del view, mapping
    box: list[Any] = []
    # In a thread of its own: unpickling may import a module for the first time, and a library
    # that keeps an import error it caught (shap does) keeps its traceback, so every frame
    # below it and their locals: on this thread, the model's loader, preparer and watcher frames,
    # which would hold the first model (and its mapping) forever. A throwaway thread's frames
    # hold nothing once it ends (the pieces are taken out of ``pieces`` and deleted).
    thread = threading.Thread(target=_unpickle_into, args=(box, pieces), name="map-prepared")
    thread.start()
    thread.join()
    if not box:
        raise RuntimeError(f"unpickling the prepared model of {path.name} failed (see the log)")
    found = box.pop()
    if isinstance(found, BaseException):
        raise found
    return found


def _unpickle_into(box: list[Any], pieces: list[Any]) -> None:
    """``box.append(pickle.loads(...))`` of the pieces, holding no reference when it returns."""
    buffers = pieces.pop()
    inband = pieces.pop()
    # No collection while unpickling: its allocations would trigger some, and a full one scans
    # every object of the process (0.2-0.4 s) for nothing: what is built here is all alive.
    enabled = gc.isenabled()
    gc.disable()
    try:
        # our own worker wrote it, to a new private file of this user (checked above)
        box.append(pickle.loads(inband, buffers=buffers))  # noqa: S301
    except Exception as exc:
        box.append(exc)
    finally:
        if enabled:
            gc.enable()
        del buffers, inband
