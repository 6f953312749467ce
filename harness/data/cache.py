"""Decoded-data cache: uint8/int64 tensors saved once per (source, sha256), written atomically.

The cache lives apart from the data root because the data root may be read-only (a shared
copy). The file name carries the sha256 of the source read, so a changed archive gets a new
key and never serves stale arrays. The payload also carries a checksum of its own contents
(crc32 over every tensor's bytes and the class names), verified on load, so flipped bytes
in a cache file (a bad disk, a bad copy) are caught. A cache file that can't be read,
doesn't hold what it should or fails its checksum is rebuilt, with one warning that names
it (a cache that keeps breaking points at a bad disk or a bad copy).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from harness.errors import warn
from harness.files import atomic_path

CACHE_FORMAT = 2  # bump when the stored layout changes; old files are then just not found
_TENSOR_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def _user_cache_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def resolve_cache_dir() -> Path:
    """HARNESS_CACHE if set, else <XDG_CACHE_HOME or ~/.cache>/harness/decoded."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    return _user_cache_home() / "harness" / "decoded"


def cache_path(source: str, sha256: str, cache_dir: Path | None = None) -> Path:
    folder = resolve_cache_dir() if cache_dir is None else cache_dir
    return folder / f"{source}-{sha256}-v{CACHE_FORMAT}.pt"


def sha256_files(paths: Iterable[Path], chunk_size: int = 1 << 20) -> str:
    """sha256 of the files' bytes concatenated in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(chunk_size):
                digest.update(block)
    return digest.hexdigest()


def content_checksum(payload: dict[str, Any]) -> int:
    """crc32 of the payload's tensors (in a fixed order) and class names: cheap enough to
    check on every load (about 0.3 s for CIFAR-10), and any flipped byte changes it."""
    checksum = 0
    for key in _TENSOR_KEYS:
        raw = payload[key].contiguous().view(torch.uint8)  # the bytes, whatever the dtype
        checksum = zlib.crc32(raw.numpy(), checksum)
    return zlib.crc32("\n".join(payload["classes"]).encode(), checksum)


def _problem(payload: Any, sha256: str) -> str | None:
    """What is wrong with a loaded cache payload; None when it holds what it should."""
    if not isinstance(payload, dict) or payload.get("sha256") != sha256:
        return "does not hold the data it is named for"
    if not all(isinstance(payload.get(k), torch.Tensor) for k in _TENSOR_KEYS):
        return "lacks some of its arrays"
    classes = payload.get("classes")
    if not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes):
        return "has no class names"
    for split in ("train", "test"):
        images, labels = payload[f"{split}_images"], payload[f"{split}_labels"]
        if images.dtype != torch.uint8 or images.ndim != 4 or labels.dtype != torch.int64:
            return f"holds {split} arrays of the wrong type"
        if labels.shape != (images.shape[0],):
            return f"holds {split} labels that do not match its images"
    if payload.get("checksum") != content_checksum(payload):
        return "fails its checksum (flipped bytes)"
    return None


def load_cached(path: Path, sha256: str) -> dict[str, Any] | None:
    """The cached payload, or None when the file is missing, unreadable or not as expected.

    A file that is there but cannot be used is rebuilt by the caller: say so, naming it."""
    if not path.is_file():
        return None
    try:
        # weights_only: the cache holds plain tensors and strings, nothing to unpickle as code.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file of any kind just means "rebuild"
        problem: str | None = f"cannot be read ({type(error).__name__})"
    else:
        problem = _problem(payload, sha256)
    if problem is not None:
        warn(f"the decoded-data cache {path} {problem}; rebuilding it")
        return None
    return payload


def save_cached(path: Path, payload: dict[str, Any]) -> None:
    """Write the payload via a temp file in the same folder and os.replace.

    Readers (other trials decoding the same data at once) see either no file or a whole
    one; a failure removes the temp file so nothing half-written stays behind.
    """
    payload = {**payload, "checksum": content_checksum(payload)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)
