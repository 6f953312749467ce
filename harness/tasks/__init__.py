"""Tasks: what a trial learns. ``harness.task_kinds`` holds what each task is (options,
metrics, checks, the shape of its records); ``harness.tasks.base`` the training side
(data, batches, loss, meter, evaluation). Adding a task is a kind and a training class:
``@register_task_kind(name)`` on the one and ``@register_task(Kind)`` on the other.
"""

from __future__ import annotations

# Importing the task modules fills the training registry (harness.tasks.base).
from harness.task_kinds import (
    TASK_KINDS,
    TaskKind,
    list_tasks,
    record_task,
    register_task_kind,
    task_class,
    task_options,
)
from harness.tasks import classify, denoise  # noqa: F401
from harness.tasks.base import (
    TRAINERS,
    Autocast,
    Evaluation,
    Meter,
    Task,
    create_task,
    register_task,
)

__all__ = [
    "TASK_KINDS",
    "TRAINERS",
    "Autocast",
    "Evaluation",
    "Meter",
    "Task",
    "TaskKind",
    "create_task",
    "list_tasks",
    "record_task",
    "register_task",
    "register_task_kind",
    "task_class",
    "task_options",
]
