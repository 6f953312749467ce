"""Dataset loading: digits, CIFAR-10 (JPEG copy, canonical files), the decode cache, errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import cache as cache_mod
from harness.data import list_datasets, load_dataset, resolve_cache_dir, resolve_data_root, sources
from harness.errors import DataError, RegistryError

JPEG_SHA256 = "ca552adc1a6d12d89c7084f0caf1bbc607e43e1fc1b5582d30611bd954c1cbe1"
CLASSES = sources.CIFAR10_CLASSES


def files_in(folder: Path) -> list[Path]:
    """Every file (not folder) below ``folder``: what a failed load may have left behind."""
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache folder for one test, so its contents can be checked exactly."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(folder))
    return folder


# ---------------------------------------------------------------- registry and paths


def test_registry_lists_datasets_and_rejects_unknown() -> None:
    assert {"digits", "cifar10"} <= set(list_datasets())
    with pytest.raises(RegistryError, match="cifar10"):
        load_dataset("cifar100")


def test_resolve_data_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root(str(tmp_path / "arg")) == tmp_path / "arg"
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv("HARNESS_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_root() == tmp_path / "xdg" / "harness" / "data"


def test_resolve_cache_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c"))
    assert resolve_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HARNESS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "harness" / "decoded"


# ---------------------------------------------------------------- digits


def test_digits_shapes_split_and_determinism(tmp_path: Path) -> None:
    ds = load_dataset("digits", tmp_path / "unused")  # digits needs no data root
    assert ds.name == "digits" and ds.source == "sklearn-digits"
    assert ds.classes == tuple(str(i) for i in range(10))
    assert ds.train.images.shape == (1347, 1, 8, 8) and ds.test.images.shape == (450, 1, 8, 8)
    assert ds.train.images.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
    assert int(ds.train.images.max()) == 255 and int(ds.train.images.min()) == 0
    # Stratified: every class gets its quarter of the test split, to within rounding.
    all_counts = torch.bincount(torch.cat([ds.train.labels, ds.test.labels]), minlength=10)
    test_counts = torch.bincount(ds.test.labels, minlength=10)
    assert ((test_counts - all_counts * 0.25).abs() <= 1).all()
    assert len(ds.train) + len(ds.test) == 1797
    again = load_dataset("digits")
    assert again.sha256 == ds.sha256 and len(ds.sha256) == 64
    assert torch.equal(again.train.images, ds.train.images)
    assert torch.equal(again.test.labels, ds.test.labels)


def test_digits_pixels_are_scaled_from_0_16() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = load_dataset("digits")
    # Rebuild the whole dataset from both splits and compare with round(x * 255 / 16).
    values = set(torch.cat([ds.train.images, ds.test.images]).unique().tolist())
    assert values == {round(v * 255 / 16 + 1e-9) for v in np.unique(raw.data)}


# ---------------------------------------------------------------- small synthetic JPEG archives


def gray_jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), value, dtype=np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def pixel_value(split: str, label: int, index: int) -> int:
    return 10 + 20 * label + 5 * index + (3 if split == "test" else 0)


def add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def make_jpeg_archive(
    path: Path,
    per_class: dict[str, int] | None = None,
    classes: tuple[str, ...] = CLASSES,
    extra: tuple[str, ...] = (),
) -> Path:
    """A cifar10-jpeg.tar.gz in the real layout, classes and files written out of order.

    Image ``split/class/i`` is a flat gray of pixel_value(split, label, i).
    """
    per_class = per_class or {"train": 2, "test": 1}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        add_file(tf, "README.txt", b"not an image")
        for split, n in per_class.items():
            for label, cls in reversed(list(enumerate(classes))):
                for i in reversed(range(n)):
                    add_file(
                        tf, f"{split}/{cls}/{i:04d}.jpg", gray_jpeg(pixel_value(split, label, i))
                    )
        for name in extra:
            add_file(tf, name, gray_jpeg(0))
    return path


@pytest.fixture
def small_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the reader accept 2 train / 1 test image per class instead of 5000 / 1000."""
    monkeypatch.setattr(sources, "JPEG_PER_CLASS", {"train": 2, "test": 1})


def load_quietly(root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a synthetic archive is not the documented copy
        return load_dataset("cifar10", root)


@pytest.mark.usefixtures("small_counts")
def test_small_jpeg_archive_order_labels_and_hash(tmp_path: Path, own_cache: Path) -> None:
    archive = make_jpeg_archive(tmp_path / "data" / "cifar10-jpeg.tar.gz")
    with pytest.warns(UserWarning, match="not the documented JPEG q75 copy"):
        ds = load_dataset("cifar10", archive.parent)
    assert ds.source == "cifar10-jpeg-q75" and ds.name == "cifar10"
    assert ds.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert ds.classes == CLASSES
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.test.images.shape == (10, 3, 32, 32)
    # Labels follow sorted class folders, files within a class follow their names.
    assert ds.train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    means = ds.train.images.float().mean(dim=(1, 2, 3)).round().long().tolist()
    assert means == [pixel_value("train", c, i) for c in range(10) for i in range(2)]
    test_means = ds.test.images.float().mean(dim=(1, 2, 3)).round().long().tolist()
    assert test_means == [pixel_value("test", c, 0) for c in range(10)]


@pytest.mark.usefixtures("small_counts")
def test_cache_is_written_once_used_and_rebuilt(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    make_jpeg_archive(root / "cifar10-jpeg.tar.gz")
    first = load_quietly(root)
    cached = files_in(own_cache)
    assert [p.name for p in cached] == [f"cifar10-jpeg-q75-{first.sha256}-v2.pt"]

    decodes = []
    real_decode = sources._decode_jpeg_archive

    def counting_decode(archive: Path):
        decodes.append(archive)
        return real_decode(archive)

    monkeypatch.setattr(sources, "_decode_jpeg_archive", counting_decode)
    second = load_quietly(root)
    assert decodes == []  # served from the cache
    assert torch.equal(second.train.images, first.train.images)

    cached[0].write_bytes(b"torn write")  # unreadable cache: ignored and rebuilt
    third = load_quietly(root)
    assert len(decodes) == 1 and torch.equal(third.test.images, first.test.images)
    assert cache_mod.load_cached(cached[0], first.sha256) is not None

    # Flipped bytes inside the stored pixels: the file still loads as a payload of the
    # right shapes, but its checksum no longer matches, so it is rebuilt.
    blob = bytearray(cached[0].read_bytes())
    pixels = bytes(first.train.images[3].flatten().tolist())
    at = blob.find(pixels)
    assert at > 0
    blob[at : at + 64] = bytes(255 - b for b in blob[at : at + 64])
    cached[0].write_bytes(bytes(blob))
    flipped = torch.load(cached[0], weights_only=True)
    assert not torch.equal(flipped["train_images"], first.train.images)  # really corrupted
    fourth = load_quietly(root)
    assert len(decodes) == 2 and torch.equal(fourth.train.images, first.train.images)
    assert cache_mod.load_cached(cached[0], first.sha256) is not None  # rewritten whole

    # A changed archive gets a new key: its own pixels, never the stale cache.
    make_jpeg_archive(root / "cifar10-jpeg.tar.gz", classes=CLASSES, extra=("train/cat/zzzz.txt",))
    changed = load_quietly(root)
    assert changed.sha256 != first.sha256 and len(decodes) == 3
    assert len(files_in(own_cache)) == 2


def test_cache_write_failure_leaves_no_partial_file(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = {
        "train_images": torch.zeros(2, 1, 2, 2, dtype=torch.uint8),
        "train_labels": torch.zeros(2, dtype=torch.int64),
        "test_images": torch.zeros(1, 1, 2, 2, dtype=torch.uint8),
        "test_labels": torch.zeros(1, dtype=torch.int64),
        "classes": ["a"],
        "sha256": "ab" * 32,
    }
    path = cache_mod.cache_path("toy", "ab" * 32)
    cache_mod.save_cached(path, payload)
    assert cache_mod.load_cached(path, "ab" * 32) is not None
    with pytest.warns(UserWarning, match="does not hold the data it is named for"):
        assert cache_mod.load_cached(path, "cd" * 32) is None  # sha256 must match too

    def failing_save(obj, f) -> None:
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        cache_mod.save_cached(path, payload)
    assert files_in(own_cache) == [path]  # the old, whole file; no temp file
    assert cache_mod.load_cached(path, "ab" * 32) is not None


@pytest.mark.usefixtures("small_counts")
def test_pil_fallback_decodes_the_same_pixels(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    make_jpeg_archive(root / "cifar10-jpeg.tar.gz")
    fast = load_quietly(root)
    for f in files_in(own_cache):
        f.unlink()
    monkeypatch.setattr(sources, "_jpeg_decoder", lambda: sources._decode_with_pil)
    slow = load_quietly(root)
    assert torch.equal(fast.train.images, slow.train.images)


# ---------------------------------------------------------------- canonical files, faked small


def fake_canonical(root: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Tiny cifar-10-batches-py files (2 images per batch) with torchvision's md5s patched.

    Returns all images in CIFAR's on-disk order: rows of 3072 = 1024 R, 1024 G, 1024 B.
    """
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (12, 3072), dtype=np.uint8)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]

    def write(name: str, obj: dict) -> list[str]:
        (folder / name).write_bytes(pickle.dumps(obj))
        return [name, hashlib.md5((folder / name).read_bytes()).hexdigest()]

    entries = [
        write(name, {"data": data[2 * i : 2 * i + 2], "labels": [i, (i + 1) % 10]})
        for i, name in enumerate(names)
    ]
    meta = write("batches.meta", {"label_names": list(CLASSES)})
    monkeypatch.setattr(CIFAR10, "train_list", entries[:5])
    monkeypatch.setattr(CIFAR10, "test_list", entries[5:])
    monkeypatch.setattr(
        CIFAR10, "meta", {"filename": meta[0], "key": "label_names", "md5": meta[1]}
    )
    monkeypatch.setattr(sources, "CANONICAL_COUNTS", (10, 2))
    return data


def test_canonical_folder(tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = fake_canonical(tmp_path, monkeypatch)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.source == "cifar10" and ds.classes == CLASSES
    assert torch.equal(ds.train.images, torch.from_numpy(data[:10].reshape(10, 3, 32, 32)))
    assert torch.equal(ds.test.images, torch.from_numpy(data[10:].reshape(2, 3, 32, 32)))
    assert ds.train.labels.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    files = sorted((tmp_path / "cifar-10-batches-py").iterdir())
    assert ds.sha256 == hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert len(files_in(own_cache)) == 1


def test_canonical_archive_is_extracted_beside_the_cache(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.datasets import CIFAR10

    data = fake_canonical(tmp_path / "src", monkeypatch)
    root = tmp_path / "data"
    root.mkdir()
    tgz = root / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(tgz.read_bytes()).hexdigest())
    root.chmod(0o555)  # the data root may be read-only: nothing may be written there
    try:
        ds = load_dataset("cifar10", root)
    finally:
        root.chmod(0o755)
    assert ds.source == "cifar10"
    assert ds.sha256 == hashlib.sha256(tgz.read_bytes()).hexdigest()
    assert torch.equal(ds.test.images, torch.from_numpy(data[10:].reshape(2, 3, 32, 32)))
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]
    assert [p.name for p in own_cache.iterdir()] == [f"cifar10-{ds.sha256}-v2.pt"]


# ---------------------------------------------------------------- errors


def expect_corrupt(root: Path, cache: Path, culprit: str) -> DataError:
    with pytest.raises(DataError) as info:
        load_quietly(root)
    message = str(info.value)
    assert culprit in message and "download it again" in message
    assert files_in(cache) == []  # nothing half-written in the cache folder
    return info.value


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.usefixtures("small_counts")
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(truncated, id="truncated-gzip"),
        pytest.param(lambda data: b"garbage" * 100, id="not-gzip"),
        pytest.param(lambda data: gzip.compress(b"not a tar " * 200), id="gzip-not-tar"),
    ],
)
def test_corrupt_jpeg_archive(tmp_path: Path, own_cache: Path, damage) -> None:
    archive = make_jpeg_archive(tmp_path / "data" / "cifar10-jpeg.tar.gz")
    archive.write_bytes(damage(archive.read_bytes()))
    expect_corrupt(archive.parent, own_cache, str(archive))


def test_jpeg_archive_with_wrong_counts(tmp_path: Path, own_cache: Path) -> None:
    # Real per-class counts are required: 2 train images per class is a broken archive.
    archive = make_jpeg_archive(tmp_path / "data" / "cifar10-jpeg.tar.gz")
    error = expect_corrupt(archive.parent, own_cache, str(archive))
    assert "expected 5000 each" in str(error)


@pytest.mark.usefixtures("small_counts")
def test_jpeg_archive_with_wrong_classes(tmp_path: Path, own_cache: Path) -> None:
    archive = make_jpeg_archive(tmp_path / "data" / "cifar10-jpeg.tar.gz", classes=CLASSES[:9])
    error = expect_corrupt(archive.parent, own_cache, str(archive))
    assert "class folders" in str(error)


@pytest.mark.usefixtures("small_counts")
@pytest.mark.parametrize("name", ["../evil.jpg", "/abs/train/cat/0000.jpg", "train/../../x.jpg"])
def test_jpeg_archive_with_unsafe_member(tmp_path: Path, own_cache: Path, name: str) -> None:
    archive = make_jpeg_archive(tmp_path / "data" / "cifar10-jpeg.tar.gz", extra=(name,))
    error = expect_corrupt(archive.parent, own_cache, str(archive))
    assert "unsafe member name" in str(error)
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "x.jpg").exists()


@pytest.mark.usefixtures("small_counts")
def test_jpeg_that_does_not_decode(tmp_path: Path, own_cache: Path) -> None:
    archive = tmp_path / "data" / "cifar10-jpeg.tar.gz"
    make_jpeg_archive(archive)
    with tarfile.open(archive, "w:gz") as tf:  # rewrite with one member's bytes broken
        for split, n in {"train": 2, "test": 1}.items():
            for label, cls in enumerate(CLASSES):
                for i in range(n):
                    data = gray_jpeg(pixel_value(split, label, i))
                    if (split, cls, i) == ("train", "dog", 1):
                        data = b"\xff\xd8 not really a jpeg"
                    add_file(tf, f"{split}/{cls}/{i:04d}.jpg", data)
    error = expect_corrupt(archive.parent, own_cache, str(archive))
    assert "JPEG" in str(error)


def test_missing_data_root(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", missing)
    message = str(info.value)
    assert str(missing) in message and "does not exist" in message
    assert "HARNESS_DATA" in message and "--data-root" in message


def test_root_without_data_names_files_root_and_fixes(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_OFFLINE", "1")  # no network attempt in tests
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    message = str(info.value)
    for needed in (
        str(tmp_path),
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        "cifar10-jpeg.tar.gz",
        "HARNESS_DATA",
        "--data-root",
        "online",
    ):
        assert needed in message
    assert files_in(own_cache) == []


def test_failed_download_becomes_data_error_with_a_per_request_timeout(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    monkeypatch.delenv("HARNESS_OFFLINE", raising=False)
    timeouts = []

    class Unreachable:
        def __init__(self) -> None:
            # A partial file appears, as when a connection drops mid-download.
            partial = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            assert len(partial) == 1
            partial[0].write_bytes(b"partial")

        def __enter__(self):
            raise OSError("[Errno 101] Network is unreachable")

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout=None):
        timeouts.append((timeout, socket.getdefaulttimeout()))
        return Unreachable()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError, match="download failed: .*Network is unreachable"):
        load_dataset("cifar10", tmp_path)
    # The request carries its own short timeout; the process-wide default is never touched.
    assert timeouts == [(sources.DOWNLOAD_TIMEOUT_S, before)]
    assert socket.getdefaulttimeout() == before
    assert list(tmp_path.iterdir()) == []  # no partial download left behind


def test_incomplete_canonical_folder(tmp_path: Path, own_cache: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
    with pytest.raises(DataError, match="cifar-10-batches-py.*missing batches.meta, data_batch_2"):
        load_dataset("cifar10", tmp_path)


def test_corrupt_canonical_files(tmp_path: Path, own_cache: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in sources._canonical_files():
        (folder / name).write_bytes(b"not a pickle")
    error = expect_corrupt(tmp_path, own_cache, str(folder))
    assert "torchvision could not read it" in str(error)


def test_corrupt_canonical_archive(tmp_path: Path, own_cache: Path) -> None:
    tgz = tmp_path / "cifar-10-python.tar.gz"
    tgz.write_bytes(gzip.compress(b"not the real archive"))
    error = expect_corrupt(tmp_path, own_cache, str(tgz))
    assert "md5" in str(error)


# ---------------------------------------------------------------- the real CIFAR-10 JPEG copy


@pytest.mark.cifar
def test_cifar10_jpeg_copy(cifar10, cifar_root: Path) -> None:
    if not (cifar_root / "cifar10-jpeg.tar.gz").is_file() or cifar10.source != "cifar10-jpeg-q75":
        pytest.skip("the data root holds canonical CIFAR-10, not the JPEG copy")
    assert cifar10.source == "cifar10-jpeg-q75" and cifar10.sha256 == JPEG_SHA256
    assert cifar10.classes == CLASSES
    assert cifar10.train.images.shape == (50000, 3, 32, 32)
    assert cifar10.test.images.shape == (10000, 3, 32, 32)
    assert cifar10.train.images.dtype == torch.uint8 and cifar10.test.labels.dtype == torch.int64
    assert torch.bincount(cifar10.train.labels).tolist() == [5000] * 10
    assert torch.bincount(cifar10.test.labels).tolist() == [1000] * 10


@pytest.mark.cifar
def test_cifar10_pixels_match_pil(cifar10, cifar_root: Path) -> None:
    if cifar10.source != "cifar10-jpeg-q75":
        pytest.skip("the data root holds canonical CIFAR-10, not the JPEG copy")
    wanted = {"test/airplane/0000.jpg": 0, "test/truck/0999.jpg": 9999}
    found = {}
    with tarfile.open(cifar_root / "cifar10-jpeg.tar.gz", "r|gz") as tf:
        for member in tf:
            if member.name in wanted:
                image = Image.open(io.BytesIO(tf.extractfile(member).read())).convert("RGB")
                found[member.name] = torch.from_numpy(np.array(image)).permute(2, 0, 1)
                if len(found) == len(wanted):
                    break
    assert len(found) == 2
    for name, index in wanted.items():
        assert torch.equal(cifar10.test.images[index], found[name]), name


@pytest.mark.cifar
def test_cifar10_second_load_hits_cache(
    cifar10, cifar_root: Path, harness_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = files_in(harness_cache)
    assert any(cifar10.sha256 in p.name for p in cached)

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(sources, "_decode_jpeg_archive", no_decode)
    monkeypatch.setattr(sources, "_read_torchvision", no_decode)
    again = load_dataset("cifar10", cifar_root)
    assert again.sha256 == cifar10.sha256
    assert torch.equal(again.train.images, cifar10.train.images)
    assert torch.equal(again.test.labels, cifar10.test.labels)


@pytest.mark.cifar
def test_truncated_real_archive(cifar_root: Path, tmp_path: Path, own_cache: Path) -> None:
    source = cifar_root / "cifar10-jpeg.tar.gz"
    if not source.is_file():
        pytest.skip("no cifar10-jpeg.tar.gz in the data root")
    copy = tmp_path / "data" / "cifar10-jpeg.tar.gz"
    copy.parent.mkdir()
    with open(source, "rb") as f:
        copy.write_bytes(f.read(1 << 20))  # the first MiB of 19
    expect_corrupt(copy.parent, own_cache, str(copy))


@pytest.mark.usefixtures("small_counts")
@pytest.mark.parametrize("damage", ["torn", "flipped"])
def test_a_corrupt_cache_is_rebuilt_with_one_warning_naming_the_file(
    damage: str, tmp_path: Path, own_cache: Path
) -> None:
    root = tmp_path / "data"
    make_jpeg_archive(root / "cifar10-jpeg.tar.gz")
    first = load_quietly(root)
    (cached,) = files_in(own_cache)
    if damage == "torn":
        cached.write_bytes(cached.read_bytes()[:100])
    else:  # loads as a payload of the right shapes, but its checksum no longer matches
        blob = bytearray(cached.read_bytes())
        at = blob.find(bytes(first.train.images[3].flatten().tolist()))
        blob[at : at + 64] = bytes(255 - b for b in blob[at : at + 64])
        cached.write_bytes(bytes(blob))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_dataset("cifar10", root)
    lines = [warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught]
    about_cache = [line for line in lines if "decoded-data cache" in line]
    assert len(about_cache) == 1, lines
    assert about_cache[0].startswith(f"harness: warning: the decoded-data cache {cached} ")
    assert about_cache[0].endswith("; rebuilding it\n") and about_cache[0].count("\n") == 1
    assert torch.equal(again.train.images, first.train.images)
    with warnings.catch_warnings(record=True) as caught:  # rebuilt: read quietly again
        warnings.simplefilter("always")
        load_dataset("cifar10", root)
    assert not [w for w in caught if "decoded-data cache" in str(w.message)]
