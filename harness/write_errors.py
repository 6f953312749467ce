"""A write the file system refuses (full disk, quota, read-only, I/O error) as one message
that names the folder and the space found there, instead of a traceback."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from harness.errors import HarnessError

# What a full or failing file system raises, as opposed to a bad path or permissions
# (those are checked before a run starts: harness.plan.check_writable).
FILE_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


class WriteFailed(HarnessError):
    """The file system refused a write: full, over quota, read-only or failing."""

    exit_code = 6


def is_file_system_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in FILE_SYSTEM_ERRNOS


def size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def free_space(folder: Path) -> int | None:
    """Bytes free to this user on the file system of ``folder`` (its nearest existing
    ancestor), or None when it cannot be asked."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 if it is gone)."""
    total = 0
    if folder.is_dir():
        for path in folder.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except OSError:
                continue
    return total


def write_failed(error: OSError, folder: Path, what: str, needed: int | None = None,
                 then: str = "") -> WriteFailed:
    """The message for ``error`` while writing ``what`` into ``folder``: the cause, the
    free space found there, a lower bound of the space the write needs (when known), and what to do."""
    free = free_space(folder)
    found = f"{size_text(free)} free there" if free is not None else "free space unknown"
    need = f", and it needs more than {size_text(needed)}" if needed else ""
    cause = error.strerror or str(error)
    if error.errno == errno.EROFS:
        fix = "make it writable or point the run elsewhere"
    elif error.errno == errno.EIO:
        fix = "check the disk (dmesg) or point the run elsewhere"
    else:
        fix = "free some space (or raise the quota) or point the run elsewhere"
    return WriteFailed(
        f"cannot write {what} into {folder}: {cause} ({found}{need}); {fix}"
        + (f"; {then}" if then else "")
    )
