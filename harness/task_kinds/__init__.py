"""Task kinds: what each task is, apart from training it (``harness.task_kinds.kind``).

A config's validation, a plan, tables and MLflow look a task up here; the training side
(``harness.tasks``) imports these, never the other way round.
"""

from __future__ import annotations

# Importing the kind modules fills the registry (harness.task_kinds.kind, which they import).
from harness.task_kinds import classify, denoise  # noqa: F401
from harness.task_kinds.kind import (
    TASK_KINDS,
    TaskKind,
    list_tasks,
    record_task,
    register_task_kind,
    task_class,
    task_options,
)

__all__ = [
    "TASK_KINDS",
    "TaskKind",
    "list_tasks",
    "record_task",
    "register_task_kind",
    "task_class",
    "task_options",
]
