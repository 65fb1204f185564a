"""How every final file is written: the one home of the atomic write.

Whatever vcgan writes under a name a user gave it (a video, an image, a report, a bench
JSON or CSV, an exported model, a training checkpoint) goes through here:

* it is written to a hidden temporary file beside the target (same folder, so the last step
  is a rename on one file system), whose name fits the folder's NAME_MAX however long the
  target's name is;
* the temporary file is flushed to disk (fsync) before it gets the final name, and the folder
  afterwards, so a crash leaves the old file or the new one, never half of one;
* without ``overwrite`` the last step is exclusive (a hard link, which fails if the name
  exists): a file that appeared under the target's name while vcgan worked is left untouched,
  and the result is kept under a free name beside it (``out.vcgan-1.mp4``) instead of lost;
* a failure, an exception or Ctrl-C deletes the temporary file; the target is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Iterator

from .errors import VcganError


class OutputAppearedError(VcganError):
    """The target appeared while the result was being made; the result was kept elsewhere."""

    def __init__(self, message: str, kept: Path):
        super().__init__(message)
        self.kept = kept


def name_max(folder: str | os.PathLike) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return text
    return raw[: max(limit, 0)].decode("utf-8", "ignore")


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file, within NAME_MAX. The
    extension is kept (encoders and muxers choose by it)."""
    path = Path(path)
    folder = path.absolute().parent
    ext = path.suffix if len(path.suffix) <= 16 else ""
    tail = f".{secrets.token_hex(4)}.tmp{ext}"
    room = name_max(folder) - 1 - len(tail.encode("utf-8", "surrogateescape"))
    stem = _fit(path.name, room)
    return folder / f".{stem}{tail}"


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible everywhere (Windows); the rename itself is already atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _link_exclusive(tmp: Path, target: Path) -> bool:
    """Give ``tmp`` the name ``target`` only if no such name exists. False if it does."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError as exc:  # no hard links here (FAT, some network and FUSE mounts)
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(target):
            return False
        os.replace(tmp, target)  # the best this file system offers: check, then rename
        return True
    os.unlink(tmp)
    return True


def _free_name(target: Path) -> Iterator[Path]:
    stem, ext = target.stem, target.suffix
    for n in range(1, 1000):
        tail = f".vcgan-{n}{ext}"
        yield target.with_name(_fit(stem, name_max(target.absolute().parent) - len(tail.encode())) + tail)


def publish(tmp: str | os.PathLike, target: str | os.PathLike, *, overwrite: bool) -> Path:
    """Move the finished temporary file ``tmp`` to ``target`` (see the module docstring) and
    return ``target``. Raises :class:`OutputAppearedError` (having kept the result under a free
    name) if ``target`` appeared meanwhile and ``overwrite`` is not given."""
    tmp, target = Path(tmp), Path(target)
    fsync_file(tmp)
    if overwrite:
        if target.is_dir() and not target.is_symlink():
            raise VcganError(f"{target} is a folder; the result was not saved")
        os.replace(tmp, target)
        fsync_folder(target.absolute().parent)
        return target
    if _link_exclusive(tmp, target):
        fsync_folder(target.absolute().parent)
        return target
    for other in _free_name(target):
        if _link_exclusive(tmp, other):
            fsync_folder(target.absolute().parent)
            raise OutputAppearedError(
                f"{target} appeared while vcgan was working and was left untouched; the result is saved as {other}",
                other,
            )
    raise VcganError(f"{target} appeared while vcgan was working; no free name beside it to keep the result")


def discard(tmp: str | os.PathLike | None) -> None:
    """Delete a temporary file if it is there; never raises."""
    if tmp is None:
        return
    try:
        os.unlink(tmp)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool) -> Iterator[Path]:
    """``with atomic_path(target, overwrite=...) as tmp:`` write the whole file to ``tmp``
    (by any means: ``open``, ``torch.save``, an encoder); on leaving the block it is published
    as ``target``, or deleted if the block raised."""
    tmp = temp_path(target)
    try:
        yield tmp
        publish(tmp, target, overwrite=overwrite)
    finally:
        discard(tmp)


def write_atomic(target: str | os.PathLike, data: bytes | str, *, overwrite: bool) -> Path:
    """Write ``data`` (text is UTF-8) as the file ``target`` through :func:`atomic_path`."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(target)


def target_problem(target: str | os.PathLike) -> str | None:
    """Why the file ``target`` could not be created (one phrase), or None: checked before any
    work starts, so hours of it are not lost at the last step."""
    target = Path(target)
    folder = target.absolute().parent
    return name_problem(target) or folder_problem(folder)


def name_problem(target: str | os.PathLike) -> str | None:
    """Whether ``target``'s own name is too long for its folder's file system."""
    target = Path(target)
    limit = name_max(target.absolute().parent) if target.absolute().parent.is_dir() else 255
    if len(target.name.encode("utf-8", "surrogateescape")) > limit:
        return f"the file name is longer than this file system allows ({limit} bytes)"
    return None


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why a file cannot be created in ``folder`` (one phrase), or None if it can."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    if os.access(folder, os.W_OK):
        return None
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"folder {folder} is on a read-only file system"
    except (OSError, AttributeError):
        pass
    return f"cannot write to folder {folder} (permission denied)"


_PLAIN = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.ENAMETOOLONG: "file name too long",
    errno.EISDIR: "is a folder",
    errno.ENOENT: "no such file or folder",
    errno.EIO: "input/output error (a failing disk or a lost network mount?)",
}


def os_error_text(exc: OSError) -> str:
    """A short phrase for what went wrong in ``exc``, without Python's decoration."""
    return _PLAIN.get(exc.errno or -1) or (exc.strerror or str(exc)).lower()
