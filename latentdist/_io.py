"""Atomic file writes, digest-checked checkpoints and the toolkit's cache directory.

Atomic writes
    A long run that is interrupted must never leave a half-written result file, so every result and
    checkpoint goes through a temporary file in the same directory followed by ``os.replace`` (atomic
    on POSIX and Windows). The temporary file is created with mode ``0o666`` so the kernel applies the
    process umask: a written file has the mode ``0o666 & ~umask`` of a plain ``open(path, 'w')``.

Stale temporary files
    A writer killed between creating its temporary file and the rename leaves
    ``.NAME.<host>-<pid>.<random>.tmp`` beside ``NAME``. The next write to ``NAME`` removes such a
    file when its writer is provably gone (same host and that pid no longer exists) or when the file
    has not been modified for :data:`STALE_AFTER_SECONDS`. A live concurrent writer on this host is
    never disturbed by the first rule; the age rule is what covers temporary files of another host
    (a shared file system) and the older ``.NAME.xxxxxxxx.tmp`` names, which carry no pid. A writer
    stalled for longer than that age on a shared file system could lose its temporary file; its
    ``os.replace`` then fails loudly, nothing is silently corrupted.

Checkpoints
    :func:`save_checkpoint` writes ``MAGIC | sha256(payload) | len(payload) | payload`` where the
    payload is a ``torch.save`` serialisation, all in one atomically written file (so digest and
    payload can never disagree after a crash). :func:`load_checkpoint` verifies magic, length and
    digest *before* anything is unpickled, then loads with ``torch.load(weights_only=True)``. Every
    failure (missing, unreadable, truncated, corrupted, foreign or old-format file) raises
    :class:`CheckpointError`, which names the file and says what to do. The digest detects
    accidental corruption (torn writes, flipped bits, a stray file); it is not a signature against
    deliberate tampering. :func:`write_verified_bytes`/:func:`read_verified_bytes` apply the same
    framing to any byte payload (the experiment result cache uses them for its pickles).
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import pickle
import re
import secrets
import socket
import struct
import time
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "STALE_AFTER_SECONDS",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "save_checkpoint",
    "load_checkpoint",
    "write_verified_bytes",
    "read_verified_bytes",
    "cache_root",
    "cache_dir",
    "unwritable_reason",
]

#: Seconds without modification after which a temporary file of an unknown or foreign writer is stale.
STALE_AFTER_SECONDS = 600.0

# 8-byte magic, then the 32-byte SHA-256 digest and the 8-byte little-endian payload length.
_MAGIC = b"LDCKPT\x00\x01"
_HEADER = struct.Struct(f"<{len(_MAGIC)}s32sQ")


class CheckpointError(ValueError):
    """A checkpoint or cache file that cannot be trusted: missing, unreadable, truncated, corrupted,
    of an old format or not written by latentdist. The message names the file and the remedy."""


# --------------------------------------------------------------------------- atomic writes


def _host_tag() -> str:
    # A short, file-name-safe tag of this host, so a pid is only ever interpreted on its own machine.
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C there; leave it to the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def _is_stale(tmp: Path, pattern: re.Pattern, now: float) -> bool:
    m = pattern.match(tmp.name)
    if m is None:
        return False
    if m["pid"] is not None and m["host"] == _host_tag():
        pid = int(m["pid"])
        if pid != os.getpid() and not _pid_alive(pid):
            return True
    try:
        return now - tmp.stat().st_mtime > STALE_AFTER_SECONDS
    except OSError:  # another writer cleaned it up first
        return False


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files that killed writers left beside ``path`` (see the module docstring)."""
    now = time.time()
    # Our names are .NAME.<host>-<pid>.<random>.tmp; older versions wrote .NAME.<random>.tmp.
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.(?:(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)\.)?[^.]+\.tmp$"
    )
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return
    for tmp in candidates:
        if _is_stale(tmp, pattern, now):
            try:
                tmp.unlink()
            except OSError:  # gone already, or another user's file in a shared folder: best effort only
                pass


def _create_temp(path: Path) -> tuple[int, Path]:
    # os.open with 0o666 (unlike mkstemp's 0o600) lets the kernel apply the umask to the final file.
    prefix = f".{path.name}.{_host_tag()}-{os.getpid()}."
    while True:
        tmp = path.parent / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename).

    The file gets mode ``0o666 & ~umask``; stale temporary files of killed earlier writes to the
    same path are removed first (see the module docstring for the rule).
    """
    return _atomic_write_chunks(path, (data,))


def _atomic_write_chunks(path: str | os.PathLike, chunks: tuple[bytes | memoryview, ...]) -> Path:
    # Chunks spare a copy of a large payload behind its small header.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# --------------------------------------------------------------------------- digest-framed files


def write_verified_bytes(path: str | os.PathLike, payload: bytes | memoryview) -> Path:
    """Write ``payload`` atomically behind a header holding its SHA-256 digest and length.

    Read it back with :func:`read_verified_bytes`.
    """
    payload = memoryview(payload).cast("B")
    header = _HEADER.pack(_MAGIC, hashlib.sha256(payload).digest(), payload.nbytes)
    return _atomic_write_chunks(path, (header, payload))


def read_verified_bytes(
    path: str | os.PathLike, *, what: str = "checkpoint", remedy: str = "delete it"
) -> memoryview:
    """The payload of a file written by :func:`write_verified_bytes`, after checking its digest.

    Parameters
    ----------
    path : path
    what : str
        What the file is, for the message (``'checkpoint'``, ``'cached classifier'``, ...).
    remedy : str
        What the user should do, appended to the message.

    Returns
    -------
    memoryview
        The payload, a view into the file's bytes (``bytes(...)`` copies it).

    Raises
    ------
    CheckpointError
        When the file is missing, unreadable, shorter or longer than its header says, carries another
        magic (a foreign or old-format file), or its payload does not hash to the stored digest.
    """
    path = Path(path)

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"{what} {path} {problem}; {remedy}")

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or exc})") from exc
    if len(raw) < _HEADER.size or not raw.startswith(_MAGIC):
        raise fail("is not a latentdist checkpoint (no digest header: an old format, a foreign file or "
                   "garbage)")
    _, digest, length = _HEADER.unpack_from(raw)
    payload = memoryview(raw)[_HEADER.size:]
    if len(payload) != length:
        raise fail(f"is truncated or padded ({len(payload)} payload bytes, header says {length})")
    if hashlib.sha256(payload).digest() != digest:
        raise fail("is corrupted (its SHA-256 digest does not match its contents)")
    return payload


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically, framed with a SHA-256 digest.

    Parameters
    ----------
    obj : object
        Anything ``torch.load(weights_only=True)`` can read back: tensors, dicts, lists, numbers,
        strings.
    path : path

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, torch
    >>> p = save_checkpoint({"w": torch.ones(2)}, tempfile.mkdtemp() + "/ck.pt")
    >>> load_checkpoint(p)["w"]
    tensor([1., 1.])
    """
    buf = io.BytesIO()
    torch.save(obj, buf)  # fails before anything is written when obj does not serialise
    return write_verified_bytes(path, buf.getbuffer())


#: Backwards-compatible name: every checkpoint of the package carries a digest.
atomic_torch_save = save_checkpoint


def load_checkpoint(
    path: str | os.PathLike,
    *,
    what: str = "checkpoint",
    remedy: str = "delete it, or pass resume=False",
) -> Any:
    """Load a file written by :func:`save_checkpoint`, verifying its digest before unpickling.

    The payload is loaded on the CPU with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : path
    what, remedy : str
        Used in the message of the error, see :func:`read_verified_bytes`.

    Raises
    ------
    CheckpointError
        For any file that is not an intact checkpoint, including a payload that passes the digest but
        does not load (written by an incompatible torch, or holding objects ``weights_only`` refuses).
    """
    payload = read_verified_bytes(path, what=what, remedy=remedy)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False, i.e. running arbitrary code: never relay it.
        raise CheckpointError(
            f"{what} {Path(path)} passed its digest check but holds objects other than tensors and plain "
            f"containers, which are never unpickled; {remedy}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any loader failure is the same "cannot trust it" condition
        detail = (str(exc).splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{what} {Path(path)} passed its digest check but could not be loaded "
            f"({type(exc).__name__}: {detail}); {remedy}"
        ) from exc


# --------------------------------------------------------------------------- the cache directory


def cache_root(*parts: str) -> Path:
    """The toolkit's cache path, without creating it: ``$LATENTDIST_CACHE``, else
    ``$XDG_CACHE_HOME/latentdist``, else ``~/.cache/latentdist``; ``parts`` name a sub-directory."""
    root = os.environ.get("LATENTDIST_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "latentdist")
    return Path(root, *parts)


def cache_dir(*parts: str) -> Path:
    """:func:`cache_root`, created on demand (raises ``OSError`` when that is impossible)."""
    path = cache_root(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def unwritable_reason(directory: str | os.PathLike) -> str | None:
    """``None`` when files can be created in ``directory`` (created if missing), else why not.

    The check creates and deletes a probe file rather than trusting permission bits, so it is right
    for root (who ignores mode bits), read-only mounts, full disks and paths under a regular file.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(directory / ".write-probe")
        fd, probe = _create_temp(directory / ".write-probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            return f"{directory} is not a directory (a file is in the way)"
        return f"{directory} is not writable ({exc.strerror or exc})"
    return None
