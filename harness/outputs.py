"""What a model outputs, and therefore which losses score it and which tasks can use it:
class logits ("classes"), an image of C channels ("image"), or a kind a new task brings
(``register_output_kind`` in the task's own module; no core file changes). A kind names
the leading arguments of its model factories and of its loss factories."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutputKind:
    name: str
    model_leading: tuple[str, ...]  # e.g. (num_classes, in_shape)
    loss_leading: tuple[str, ...]  # e.g. (class_counts,): what the task hands the loss


OUTPUT_KINDS: dict[str, OutputKind] = {}


def register_output_kind(
    name: str, model_leading: tuple[str, ...], loss_leading: tuple[str, ...] = ()
) -> OutputKind:
    """Register (idempotently) an output kind; a second, different definition is refused."""
    kind = OutputKind(name, tuple(model_leading), tuple(loss_leading))
    if OUTPUT_KINDS.setdefault(name, kind) != kind:
        raise ValueError(f"output kind {name!r} is already registered as {OUTPUT_KINDS[name]}")
    return kind


def output_kind(name: str) -> OutputKind:
    if name not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {tuple(OUTPUT_KINDS)}, got {name!r}")
    return OUTPUT_KINDS[name]


CLASSES = register_output_kind("classes", ("num_classes", "in_shape"), ("class_counts",))
IMAGE = register_output_kind("image", ("out_channels", "in_shape"))
