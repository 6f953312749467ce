"""What one training step costs depends on (``Workload``), read off a trial's config, and
its MACs per image from the model built on the meta device."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.pricing.counts import DatasetCounts

_RUNTIME_DEFAULTS = {"precision": "auto", "channels_last": True, "compile": False}
_SHOWN_RUNTIME = {**_RUNTIME_DEFAULTS, "threads": 1}


def _frozen(value: Any) -> Any:
    """A hashable form of a JSON-like value (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    return value


def _text(value: Any) -> str:
    return ",".join(_text(v) for v in value) if isinstance(value, tuple) else str(value)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


@dataclass(frozen=True)
class Workload:
    """What one training step costs depends on: the key of a throughput table."""

    task: str
    model: str
    options: tuple[tuple[str, Any], ...]  # every model option, defaults filled in, sorted
    batch_size: int
    in_shape: tuple[int, int, int]
    outputs: int
    runtime: tuple[tuple[str, Any], ...] = ()  # precision, channels_last, compile, threads

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model,
                "options": {k: _plain(v) for k, v in self.options},
                "batch_size": self.batch_size, "in_shape": list(self.in_shape),
                "outputs": self.outputs, "runtime": dict(self.runtime)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workload:
        return cls(
            task=str(data["task"]), model=str(data["model"]),
            options=tuple(sorted((k, _frozen(v)) for k, v in data["options"].items())),
            batch_size=int(data["batch_size"]),
            in_shape=tuple(int(s) for s in data["in_shape"]),  # type: ignore[arg-type]
            outputs=int(data["outputs"]),
            runtime=tuple(sorted(dict(data.get("runtime") or {}).items())),
        )

    def key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        """e.g. "resnet32(base_width=8, depth=20) bs 128 3x32x32": options off their defaults."""
        from harness.models import model_options

        try:
            defaults = model_options(self.model)
        except HarnessError:
            defaults = {}
        changed = [f"{k}={_text(v)}" for k, v in self.options if _frozen(defaults.get(k)) != v]
        changed += [f"{k}={v}" for k, v in self.runtime if _SHOWN_RUNTIME.get(k) != v]
        shape = "x".join(str(s) for s in self.in_shape)
        return (f"{self.model}" + (f"({', '.join(changed)})" if changed else "")
                + f" bs {self.batch_size} {shape}")


def workload_of(config: Any, counts: DatasetCounts, threads: int = 1) -> Workload:
    from harness.models import model_options
    from harness.tasks import task_class

    outputs, in_shape = task_class(config.task).model_io(
        config, counts.image_shape, len(counts.train))
    options = {**model_options(config.model), **dict(config.model_options)}
    return Workload(
        task=config.task, model=config.model,
        options=tuple(sorted((k, _frozen(v)) for k, v in options.items())),
        batch_size=int(config.batch_size), in_shape=tuple(in_shape), outputs=int(outputs),
        runtime=tuple(sorted([*((k, getattr(config, k)) for k in _RUNTIME_DEFAULTS),
                              ("threads", threads)])),
    )


def macs_of(workload: Workload) -> int | None:
    """MACs per image, from the model built on the meta device (no memory, no time)."""
    try:
        from harness.expansion import model_on_meta
        from harness.models import count_macs

        model = model_on_meta(workload.model, workload.outputs, workload.in_shape,
                              dict(workload.options))
        return int(count_macs(model, workload.in_shape))
    except Exception:  # noqa: BLE001 - a model that cannot run on meta is priced without MACs
        return None


# Ops that only re-describe a tensor (no kernel runs): not counted as launches.
_NO_KERNEL = {"view", "_unsafe_view", "t", "transpose", "permute", "expand", "reshape",
              "as_strided", "detach", "alias", "unsqueeze", "squeeze", "slice", "select",
              "split", "unbind", "flatten", "lift_fresh", "empty", "empty_like", "zeros_like"}


def model_costs(workload: Workload) -> tuple[int | None, int | None]:
    """(aten ops of one training-mode forward, parameters) of the workload's model, counted
    on the meta device: the ops are its kernel launches per forward in eager mode."""
    try:
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        from harness.expansion import model_on_meta

        model = model_on_meta(workload.model, workload.outputs, workload.in_shape,
                              dict(workload.options))
        parameters = sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta is not counted
        return None, None

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            name = func.overloadpacket.__name__
            if name not in _NO_KERNEL and not getattr(func, "is_view", False):
                Count.ops += 1
            return func(*args, **(kwargs or {}))

    try:
        model.train()
        inputs = torch.zeros(2, *workload.in_shape, device="meta")
        with Count():
            model(inputs)
        return Count.ops, parameters
    except Exception:  # noqa: BLE001 - a forward that cannot run on meta: ops unknown
        return None, parameters
