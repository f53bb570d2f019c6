"""Files that appear whole or not at all: every output of vadx goes through here; and the
JSON files vadx reads back, read strictly (:func:`read_json`)."""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vadx.errors import OutputError, VadxError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], document: Any, indent: int = 1) -> Path:
    """Write ``document`` as JSON to ``path`` atomically; returns ``path``. NaN and infinite
    numbers, which JSON does not have, are written as ``null``."""
    text = json.dumps(finite_json(document), indent=indent, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def finite_json(document: Any) -> Any:
    """``document`` with every NaN or infinite float (numpy's too) replaced by None.

    >>> finite_json({"a": [1.0, float("nan")], "b": float("inf")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {key: finite_json(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [finite_json(value) for value in document]
    if hasattr(document, "dtype") and getattr(document, "ndim", None) == 0:  # numpy scalars
        return finite_json(document.item())
    return document


def parse_json(text: str | bytes, where: str, error: type[Exception] = VadxError) -> Any:
    """The JSON document in ``text`` (UTF-8 when bytes), as strict as the JSON standard: no
    NaN or Infinity, no number that overflows a float (``1e400``), and no nesting deeper than
    Python can walk. Anything else raises ``error`` naming ``where``."""

    def refuse(constant: str) -> None:
        raise error(f"{where} holds {constant}, which JSON does not have: a number must be finite")

    def finite(literal: str) -> float:
        number = float(literal)
        if not math.isfinite(number):
            raise error(f"{where} holds the number {literal[:40]}, too large for a float")
        return number

    try:
        return json.loads(text, parse_constant=refuse, parse_float=finite)
    except RecursionError:
        raise error(f"{where} is nested too deeply to be a vadx file") from None
    except UnicodeDecodeError as err:
        raise error(f"{where} is not UTF-8 text: {err}") from err
    except json.JSONDecodeError as err:
        raise error(f"{where} is not valid JSON: {err}") from err


def read_json(path: str | os.PathLike[str], error: type[Exception] = VadxError) -> Any:
    """The JSON document in the file at ``path``, read as :func:`parse_json` does; a file
    that cannot be read raises ``error`` too."""
    try:
        text = Path(path).read_bytes()
    except OSError as err:
        raise error(f"cannot read {path}: {err.strerror or err}") from err
    return parse_json(text, str(path), error)


def write_safetensors(
    path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Write torch ``tensors`` as safetensors to ``path`` atomically, in canonical form: the
    header's keys sorted. safetensors itself writes the metadata in hash-map order, which
    changes from one save to the next, and with it the file's sha256 (a model's id): so the
    same tensors and metadata always give the same bytes."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    size = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + size]), sort_keys=True, separators=(",", ":"))
    text = header.encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data that follows stays 8-byte aligned
    with atomic_path(path) as tmp:
        tmp.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])
    return Path(path)


def writable_path(path: str | os.PathLike[str], option: str, folder: bool = True) -> Path:
    """``path`` if vadx can write it — a folder (``folder``) or a file — else an
    :class:`~vadx.errors.OutputError` naming ``option`` and what to do. Checked before any
    work starts, without creating anything: the path is not a file (or, for a file, not a
    folder), the nearest existing folder above it is a folder, and a file can be made there.
    """
    given = Path(path)
    if str(path) == "":
        raise OutputError(f"{option} is empty: give a path")
    path = followed(given)
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {given} is a file, not a folder: choose another path")
    if not folder and path.is_dir():
        raise OutputError(f"{option} {given} is a folder, not a file: choose another path")
    if not folder and path.exists() and not path.is_file():
        raise OutputError(
            f"{option} {given} is not a regular file (a device, a pipe, …): choose a file path"
        )
    existing = path if folder and path.is_dir() else _nearest_folder(path.parent)
    if not existing.is_dir():
        raise OutputError(
            f"{option} {path} cannot be created: {existing} is a file, not a folder; choose "
            "another path"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".vadx-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(
            f"{option} {given} cannot be written ({err.strerror or err} in {existing}): choose "
            "another path or make it writable"
        ) from err
    claim(path, option)
    return given


def followed(path: Path) -> Path:
    """``path``, or where it points when it is a symbolic link (even one whose target does
    not exist yet: the output is written there)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def hidden_name(target: Path, suffix: str) -> str:
    """``.<target's name><suffix>``, the target's name shortened so that the whole fits in
    the 255 bytes a file name may have (staging folders, locks)."""
    name = os.fsencode(target.name)[: 255 - len(STAGING_PREFIX) - len(suffix) - 8]
    return f"{STAGING_PREFIX}{os.fsdecode(name)}{suffix}"


#: the outputs this process has claimed: their lock files, open (a lock lives as long as it)
_CLAIMS: dict[Path, int] = {}


def claim(target: Path, option: str) -> None:
    """Take this process's claim on the output ``target`` for as long as it runs (or until
    :func:`release_claims`): a lock on ``.<name>.lock`` beside it. Another process that
    holds it makes this an :class:`~vadx.errors.OutputError` naming it; a claim taken, the
    staging folders a killed run left beside ``target`` are removed (nobody else is writing
    it). Under torchrun only rank 0 claims: the ranks write one run together."""
    import fcntl

    target = Path(os.path.abspath(target))
    if target in _CLAIMS or os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 claims for the whole run
    lock = _nearest_folder(target.parent) / hidden_name(target, ".lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputError(
                f"{option} {target} is being written by another vadx process (pid {holder}): "
                "wait for it to finish or choose another path"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:  # its holder removed it as we opened it: take a new one
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _CLAIMS[target] = fd
    remove_leftovers(target)


def release_claims() -> None:
    """Give up every claim of this process (removing its lock files)."""
    for target, fd in list(_CLAIMS.items()):
        lock = _nearest_folder(target.parent) / hidden_name(target, ".lock")
        with contextlib.suppress(OSError):
            os.unlink(lock)  # before unlocking: a waiter then locks a new file
        os.close(fd)
        del _CLAIMS[target]


@contextlib.contextmanager
def staged_folder(
    target: str | os.PathLike[str], last: str | None = None, replace: bool = False
) -> Iterator[Path]:
    """A hidden folder beside ``target`` (in its nearest existing parent: nothing is created
    before the end) that a command writes its outputs into.

    When the block succeeds the outputs move into ``target`` (created if absent), ``last``
    — the completion marker a reader waits for — after every other file; when it fails or a
    signal stops it, the staging folder is removed and ``target`` is left as it was. So a
    command's outputs appear together or not at all. With ``replace`` an existing ``target``
    is replaced whole (nothing of it is kept) instead of receiving the new files.
    """
    target = followed(Path(target))
    staging = Path(
        tempfile.mkdtemp(dir=_nearest_folder(target.parent), prefix=hidden_name(target, PARTIAL))
    )
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and replace:
            _replace_folder(staging, target)
        elif target.exists():
            _move_into(staging, target, last)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: staging folders are named ``.<target>.partial-<random>`` beside their target
STAGING_PREFIX, PARTIAL = ".", ".partial-"


def remove_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders a killed process left beside ``target`` (SIGKILL and power
    loss give :func:`staged_folder` no chance to clean up); returns what was removed. Only
    the caller that owns ``target`` may call this: another process may be writing it."""
    target = followed(Path(target))
    if not target.parent.is_dir():
        return []
    pattern = glob.escape(hidden_name(target, PARTIAL)) + "*"
    found = sorted(p for p in target.parent.glob(pattern) if p.is_dir())
    for leftover in found:
        shutil.rmtree(leftover, ignore_errors=True)
    return found


def _replace_folder(source: Path, target: Path) -> None:
    """Put folder ``source`` where folder ``target`` is: ``target`` moves aside (a hidden
    staging name, so :func:`remove_leftovers` finds it if this process dies), ``source``
    takes its place, then the old one is deleted."""
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=hidden_name(target, PARTIAL)))
    os.replace(target, aside / "old")
    os.replace(source, target)
    shutil.rmtree(aside, ignore_errors=True)


def _move_into(source: Path, target: Path, last: str | None = None) -> None:
    """Move the entries of folder ``source`` into folder ``target`` (merging sub-folders,
    replacing files), ``last`` at the end."""
    target.mkdir(exist_ok=True)
    for entry in sorted(source.iterdir(), key=lambda p: p.name == last):
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _move_into(entry, destination)
        else:
            os.replace(entry, destination)


def path_text(path: str | os.PathLike[str]) -> str:
    """A path as text any UTF-8 file can hold: the bytes of a name that are not UTF-8 (a file
    system allows them) shown as ``\\xNN``.

    >>> path_text(b"caf\\xe9.mp4".decode("utf-8", "surrogateescape"))
    'caf\\\\xe9.mp4'
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def footprint(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Bytes and latest modification time (ns) of a file, or of the files in a folder (a video
    given as a folder of frames); OSError when it cannot be read."""
    path = Path(path)
    stats = [p.stat() for p in path.iterdir() if p.is_file()] if path.is_dir() else [path.stat()]
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def _nearest_folder(path: Path) -> Path:
    """``path`` or the nearest of its parents that exists (which may be a file)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
