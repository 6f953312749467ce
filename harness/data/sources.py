"""Dataset registry and readers: sklearn digits and CIFAR-10 (canonical files or a JPEG copy).

Readers decode once into uint8 arrays cached by (source, sha256), see ``cache.py``.
sklearn and torchvision are imported lazily: the CLI's startup shouldn't pay for them.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from harness.data.cache import cache_path, load_cached, resolve_cache_dir, save_cached, sha256_files
from harness.data.types import ImageDataset, ImageSplit
from harness.errors import DataError, warn
from harness.files import atomic_path
from harness.registry import Registry

DatasetLoader = Callable[[Path], ImageDataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CANONICAL_DIR = "cifar-10-batches-py"
CANONICAL_TGZ = "cifar-10-python.tar.gz"
JPEG_TGZ = "cifar10-jpeg.tar.gz"
JPEG_SOURCE = "cifar10-jpeg-q75"
# The copy described in shared/data/README.md; another archive with the same layout still
# loads, with a warning, since its pixels may differ.
JPEG_Q75_SHA256 = "ca552adc1a6d12d89c7084f0caf1bbc607e43e1fc1b5582d30611bd954c1cbe1"
JPEG_PER_CLASS = {"train": 5000, "test": 1000}
CANONICAL_COUNTS = (50000, 10000)  # train, test
DIGITS_TEST_SIZE = 0.25  # 450 test / 1,347 train images, stratified, random_state=0
DOWNLOAD_TIMEOUT_S = 5.0  # per socket operation of the request, so offline fails fast
_DECODE_CHUNK = 2048


_FACTS: dict[str, dict[str, Any]] = {}


def register_dataset(
    name: str, image_shape: tuple[int, int, int] | None = None, num_classes: int | None = None
) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register ``loader(data_root: Path) -> ImageDataset`` under ``name``. The training
    images' shape and the class count, when given, let a plan check its models before any
    data is read."""
    _FACTS[name] = {"image_shape": image_shape, "num_classes": num_classes}
    return DATASETS.register(name)


def dataset_facts(name: str) -> dict[str, Any]:
    """{"image_shape": (C, H, W) or None, "num_classes": int or None} for dataset ``name``."""
    DATASETS.get(name)
    return dict(_FACTS[name])


def list_datasets() -> list[str]:
    return DATASETS.names()


def default_data_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harness" / "data"


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The argument, else env HARNESS_DATA, else <XDG_CACHE_HOME or ~/.cache>/harness/data."""
    if data_root is not None and str(data_root) != "":
        return Path(data_root).expanduser()
    env = os.environ.get("HARNESS_DATA")
    if env:
        return Path(env).expanduser()
    return default_data_root()


def load_dataset(name: str, data_root: str | Path | None = None) -> ImageDataset:
    """Load a registered dataset; raises RegistryError for an unknown name, DataError for data."""
    loader = DATASETS.get(name)
    return loader(resolve_data_root(data_root))


def _from_payload(name: str, source: str, sha256: str, payload: dict[str, Any]) -> ImageDataset:
    return ImageDataset(
        name=name,
        source=source,
        sha256=sha256,
        classes=tuple(payload["classes"]),
        train=ImageSplit(payload["train_images"], payload["train_labels"]),
        test=ImageSplit(payload["test_images"], payload["test_labels"]),
    )


def _load_or_decode(
    name: str, source: str, sha256: str, decode: Callable[[], dict[str, Any]]
) -> ImageDataset:
    path = cache_path(source, sha256)
    payload = load_cached(path, sha256)
    if payload is None:
        payload = decode()
        payload["sha256"] = sha256
        try:
            save_cached(path, payload)
        except OSError as exc:
            # The data is in memory and correct; a cache we can't write only costs speed.
            warn(f"could not write the decoded-data cache {path}: {exc}")
    return _from_payload(name, source, sha256, payload)


# ---------------------------------------------------------------- digits


@register_dataset("digits", image_shape=(1, 8, 8), num_classes=10)
def load_digits_dataset(data_root: Path) -> ImageDataset:
    """sklearn's bundled 8x8 digits (offline, tiny): the CPU smoke-test dataset.

    The data root is unused. Pixels 0..16 become uint8 round(x * 255 / 16). The test split is
    a fixed stratified quarter (train_test_split, test_size=0.25, random_state=0); both splits
    keep sklearn's original order.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    raw = np.ascontiguousarray(bunch.data, dtype=np.float64)
    target = np.ascontiguousarray(bunch.target, dtype=np.int64)
    sha256 = hashlib.sha256(raw.tobytes() + target.tobytes()).hexdigest()
    images = np.rint(raw * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    train_idx, test_idx = train_test_split(
        np.arange(len(target)), test_size=DIGITS_TEST_SIZE, random_state=0, stratify=target
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return ImageDataset(
        name="digits",
        source="sklearn-digits",
        sha256=sha256,
        classes=tuple(str(i) for i in range(10)),
        train=ImageSplit(torch.from_numpy(images[train_idx]), torch.from_numpy(target[train_idx])),
        test=ImageSplit(torch.from_numpy(images[test_idx]), torch.from_numpy(target[test_idx])),
    )


# ---------------------------------------------------------------- CIFAR-10

_HOW_TO_FIX = (
    f"Fix: set HARNESS_DATA or pass --data-root to a folder holding {CANONICAL_TGZ}, "
    f"{CANONICAL_DIR}/ or {JPEG_TGZ}, or run online so torchvision downloads {CANONICAL_TGZ} "
    "into the data root."
)


def _missing_error(root: Path, why: str) -> DataError:
    return DataError(
        f"CIFAR-10 not found: looked for {CANONICAL_DIR}/, {CANONICAL_TGZ} and {JPEG_TGZ} in "
        f"data root {root} ({why}). {_HOW_TO_FIX}"
    )


def _corrupt_error(path: Path, detail: str) -> DataError:
    return DataError(
        f"{path} is corrupt or incomplete ({detail}); delete it and download it again "
        f"(or point HARNESS_DATA / --data-root at a good copy)."
    )


def _offline() -> bool:
    return os.environ.get("HARNESS_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


@register_dataset("cifar10", image_shape=(3, 32, 32), num_classes=10)
def load_cifar10(data_root: Path) -> ImageDataset:
    """CIFAR-10 from the canonical python files, else the JPEG q75 copy, else a download.

    ``source`` says which was read ("cifar10" or "cifar10-jpeg-q75"): tables must not mix them.
    """
    root = data_root
    if not root.exists() and root == default_data_root() and not _offline():
        root.mkdir(parents=True, exist_ok=True)  # the per-user default is ours to create
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise DataError(f"data root {root} {what}. {_HOW_TO_FIX}")
    folder, tgz, jpeg = root / CANONICAL_DIR, root / CANONICAL_TGZ, root / JPEG_TGZ
    if not (folder.is_dir() or tgz.is_file() or jpeg.is_file()):
        _download_canonical(root)
    if folder.is_dir() or tgz.is_file():
        return _load_canonical(root)
    return _load_jpeg(jpeg)


def _download_canonical(root: Path) -> None:
    """Download the canonical archive into the data root (md5-checked, written atomically);
    raises the 'not found' DataError on failure. The timeout is the request's own: the
    process-wide socket default is shared with Ray's and MLflow's connections."""
    if _offline():
        raise _missing_error(root, "none present; download skipped because HARNESS_OFFLINE is set")
    import urllib.request

    from torchvision.datasets import CIFAR10

    tgz = root / CANONICAL_TGZ
    try:
        with atomic_path(tgz) as partial:
            digest = hashlib.md5()
            request = urllib.request.Request(CIFAR10.url, headers={"User-Agent": "harness"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, \
                    open(partial, "wb") as out:
                while block := response.read(1 << 20):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != CIFAR10.tgz_md5:
                raise OSError(f"md5 {digest.hexdigest()} differs from the published one")
    except Exception as exc:
        raise _missing_error(root, f"none present and the download failed: {exc}") from exc


def _canonical_files() -> list[str]:
    from torchvision.datasets import CIFAR10

    names = [entry[0] for entry in CIFAR10.train_list + CIFAR10.test_list]
    return sorted([*names, CIFAR10.meta["filename"]])


def _load_canonical(root: Path) -> ImageDataset:
    folder, tgz = root / CANONICAL_DIR, root / CANONICAL_TGZ
    if tgz.is_file():
        sha256 = sha256_files([tgz])
    else:
        files = [folder / name for name in _canonical_files()]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise _corrupt_error(folder, f"missing {', '.join(missing)}")
        sha256 = sha256_files(files)

    def decode() -> dict[str, Any]:
        if folder.is_dir():
            return _read_torchvision(root, folder)
        return _extract_and_read(tgz)

    return _load_or_decode("cifar10", "cifar10", sha256, decode)


def _read_torchvision(root: Path, checked: Path) -> dict[str, Any]:
    from torchvision.datasets import CIFAR10

    payload: dict[str, Any] = {}
    try:
        for split, train in (("train", True), ("test", False)):
            ds = CIFAR10(str(root), train=train, download=False)  # md5-checks every batch file
            images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
            payload[f"{split}_images"] = images
            payload[f"{split}_labels"] = torch.tensor(ds.targets, dtype=torch.int64)
            payload["classes"] = list(ds.classes)
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as exc:
        raise _corrupt_error(checked, f"torchvision could not read it: {exc}") from exc
    counts = (len(payload["train_labels"]), len(payload["test_labels"]))
    if counts != CANONICAL_COUNTS:
        raise _corrupt_error(checked, f"{counts} train/test images, expected {CANONICAL_COUNTS}")
    return payload


def _extract_and_read(tgz: Path) -> dict[str, Any]:
    """Extract the canonical archive into a temp folder beside the cache, read it, delete it.

    Not into the data root: that may be read-only. tarfile's "data" filter refuses absolute
    paths, '..' and links out of the folder.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    if not check_integrity(str(tgz), CIFAR10.tgz_md5):
        raise _corrupt_error(tgz, "md5 differs from the published one")
    cache_dir = resolve_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=cache_dir) as tmp:
        try:
            with tarfile.open(tgz, "r:gz") as tf:
                tf.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise _corrupt_error(tgz, f"cannot unpack: {exc}") from exc
        return _read_torchvision(Path(tmp), tgz)


def _split_member(name: str, archive: Path) -> tuple[str, str, str] | None:
    """(split, class, file) for an image member, None for other members; rejects unsafe names."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise _corrupt_error(archive, f"unsafe member name {name!r}")
    parts = [p for p in path.parts if p != "."]
    if (
        len(parts) == 3
        and parts[0] in JPEG_PER_CLASS
        and parts[2].lower().endswith((".jpg", ".jpeg"))
    ):
        return parts[0], parts[1], parts[2]
    return None


def _iter_jpeg_members(archive: Path) -> Iterator[tuple[str, str, str, bytes]]:
    # Streaming mode ("r|gz") reads the archive front to back once: no seeking, no extraction.
    with tarfile.open(archive, "r|gz") as tf:
        for member in tf:
            where = _split_member(member.name, archive)
            if member.isdir():
                continue
            if not member.isfile():
                raise _corrupt_error(archive, f"unexpected link or device member {member.name!r}")
            if where is None:
                continue  # e.g. a README beside the image folders
            f = tf.extractfile(member)
            if f is None:
                raise _corrupt_error(archive, f"unreadable member {member.name!r}")
            yield (*where, f.read())


def _jpeg_decoder() -> Callable[[list[bytes]], list[torch.Tensor]]:
    """torchvision's batched libjpeg decode, else PIL (torchvision 0.29 deprecates its image IO)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return _decode_with_pil

    def decode(blobs: list[bytes]) -> list[torch.Tensor]:
        # bytearray: frombuffer wants a writable buffer; a list call decodes the chunk at once.
        data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(data, mode=ImageReadMode.RGB)

    return decode


def _decode_with_pil(blobs: list[bytes]) -> list[torch.Tensor]:
    from PIL import Image

    out = []
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as image:
            out.append(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))
    return out


def _decode_jpegs(blobs: list[bytes], archive: Path) -> torch.Tensor:
    decode = _jpeg_decoder()
    out = []
    for start in range(0, len(blobs), _DECODE_CHUNK):
        try:
            images = decode(blobs[start : start + _DECODE_CHUNK])
        except (RuntimeError, OSError, ValueError) as exc:  # libjpeg / PIL decode errors
            raise _corrupt_error(archive, f"a JPEG does not decode: {exc}") from exc
        bad = [tuple(im.shape) for im in images if tuple(im.shape) != (3, 32, 32)]
        if bad:
            raise _corrupt_error(archive, f"image of shape {bad[0]}, expected (3, 32, 32)")
        out.append(torch.stack(images))
    return torch.cat(out)


def _decode_jpeg_archive(archive: Path) -> dict[str, Any]:
    files: dict[str, dict[str, list[tuple[str, bytes]]]] = {s: {} for s in JPEG_PER_CLASS}
    try:
        for split, cls, fname, data in _iter_jpeg_members(archive):
            files[split].setdefault(cls, []).append((fname, data))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise _corrupt_error(archive, f"cannot read it as a gzipped tar: {exc}") from exc
    for split, per_class in JPEG_PER_CLASS.items():
        found = tuple(sorted(files[split]))
        if found != CIFAR10_CLASSES:
            raise _corrupt_error(
                archive,
                f"{split}/ holds class folders {list(found)}, expected {list(CIFAR10_CLASSES)}",
            )
        counts = {cls: len(items) for cls, items in files[split].items()}
        if any(n != per_class for n in counts.values()):
            raise _corrupt_error(
                archive, f"{split}/ has {counts} images per class, expected {per_class} each"
            )
    payload: dict[str, Any] = {"classes": list(CIFAR10_CLASSES)}
    for split in JPEG_PER_CLASS:
        blobs: list[bytes] = []
        labels: list[int] = []
        for label, cls in enumerate(CIFAR10_CLASSES):  # sorted names = official label order
            for _, data in sorted(files[split][cls]):
                blobs.append(data)
                labels.append(label)
        payload[f"{split}_images"] = _decode_jpegs(blobs, archive)
        payload[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)
    return payload


def _load_jpeg(archive: Path) -> ImageDataset:
    try:
        sha256 = sha256_files([archive])
    except OSError as exc:
        raise _corrupt_error(archive, f"cannot read it: {exc}") from exc
    if sha256 != JPEG_Q75_SHA256:
        warn(
            f"{archive} is not the documented JPEG q75 copy (sha256 {sha256[:12]}...); "
            "results may not compare with runs on that copy"
        )
    return _load_or_decode("cifar10", JPEG_SOURCE, sha256, lambda: _decode_jpeg_archive(archive))
