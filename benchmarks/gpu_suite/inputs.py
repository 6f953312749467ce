"""What the suite reads: datasets (CIFAR-10 from the data root, or synthetic with --tiny)
and the optional modules (an offline Ray bundle, MLflow)."""

from __future__ import annotations

import os
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.gpu_suite.config import TINY_CIFAR


def synthetic_cifar(train: int, test: int) -> Any:
    from harness.pricing import synthetic_dataset

    return synthetic_dataset("cifar10", (3, 32, 32), 10, train, test, seed=0)


def dataset_from_spec(spec: Mapping[str, Any]) -> Any:
    """The dataset a worker process loads: a spec travels, 180 MB of images do not."""
    if spec["kind"] == "synthetic":
        return synthetic_cifar(spec["train"], spec["test"])
    from harness.data import load_dataset

    return load_dataset(spec["name"], spec.get("root"))


class Data:
    """Datasets by name: CIFAR-10 from the data root (or synthetic with --tiny), others
    (the embedded digits and photos) as the registry loads them."""

    def __init__(self, tiny: bool, root: str | None) -> None:
        # Absolute: worker processes (Ray's too) may start in another folder.
        self.tiny, self.root = tiny, str(Path(root).resolve()) if root else None
        self.loaded: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}

    def spec(self, name: str) -> dict[str, Any]:
        if name == "cifar10" and self.tiny:
            return {"kind": "synthetic", **TINY_CIFAR}
        return {"kind": "load", "name": name, "root": self.root}

    def get(self, name: str) -> Any:
        if name not in self.loaded:
            began = time.perf_counter()
            self.loaded[name] = dataset_from_spec(self.spec(name))
            self.seconds[name] = time.perf_counter() - began
        return self.loaded[name]

    def describe(self) -> str:
        if not self.loaded:
            return "no dataset loaded"
        return "; ".join(f"{d.name}: {d.source} (sha256 {d.sha256[:12]}), {len(d.train):,} train / "
                         f"{len(d.test):,} test images, loaded in {self.seconds[n]:.1f}s"
                         for n, d in self.loaded.items())


def use_ray_site(path: str) -> str:
    """Put an offline Ray bundle (a site-packages folder, or the .tar.xz that
    ../shared/tools/offline-ray-bundle.sh builds) first on sys.path and PYTHONPATH, so
    this process and the Ray workers it starts import it."""
    source = Path(path)
    if not source.exists():
        raise SystemExit(f"gpu_suite: --ray-site {path}: no such file or folder")
    folder = source
    if source.is_file():
        folder = Path(os.environ.get("TMPDIR", "/tmp")) / "harness-ray-site"
        if not (folder / ".unpacked").exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tarfile.open(source) as archive:
                archive.extractall(folder, filter="data")
            (folder / ".unpacked").touch()
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(folder)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return str(folder)


def probe(module: str) -> dict[str, Any]:
    """Whether an optional module is installed here and its version, or why not. Found,
    not imported (Ray and MLflow take seconds each): the part that uses it imports it and
    says so if that fails."""
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return {"ok": False, "why": f"No module named {module!r}"}
    except (ImportError, ValueError) as error:  # a blocked or broken install
        return {"ok": False, "why": f"{type(error).__name__}: {error}"}
    try:
        version = importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:  # e.g. an unpacked bundle without metadata
        version = "?"
    return {"ok": True, "version": version}
