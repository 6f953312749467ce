"""Stand-in records of a stage that has not run, so a later stage whose space is built
from earlier records can be planned, and the stages it read are noted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.study import Stage


@dataclass
class StageConfigs:
    """A stage's enumerated trial configs, for the cost points and placeholder records."""

    items: list[tuple[Any, str | None]]  # (config, variant label)
    skipped: int = 0


@dataclass
class Reads:
    """The earlier stages whose records the space builder running now has read."""

    stages: set[str] = field(default_factory=set)


class _Watched(dict):
    """A placeholder record that notes which stage's records a space builder reads
    beyond the stage and status every builder filters on."""

    def __init__(self, data: Mapping[str, Any], reads: Reads) -> None:
        super().__init__(data)
        self._reads = reads

    def _note(self, key: Any) -> None:
        if key not in ("stage", "status"):
            self._reads.stages.add(str(dict.get(self, "stage")))

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)


def placeholder_records(stage: Stage, space: Mapping[str, Any], configs: StageConfigs,
                        reads: Reads) -> list[dict[str, Any]]:
    """One finished record per enumerated config of an earlier stage, with a stand-in
    score (a hash of the config), for resolving a later stage's space before anything ran."""
    from harness.records import RECORD_SCHEMA_VERSION
    from harness.tasks import task_class
    from harness.trials import stage_metric

    try:
        stage_wide, _mode = stage_metric(stage, space)
    except ConfigError:
        stage_wide = None  # a stage mixing tasks: each record gets its own task's metric
    records = []
    for index, (config, label) in enumerate(configs.items):
        digest = config.config_hash()
        score = int(digest[:8], 16) / 0xFFFFFFFF
        task = getattr(config, "task", None)  # a check trial's config has no task
        metric = stage_wide or task_class(task).metric
        final = {"epoch": config.epochs, metric: score}
        if task is not None:
            # The report metric too, ranked unlike the chosen-on one: a space builder that
            # chose on the test metric would resolve differently from a real run's choice.
            final.setdefault(task_class(task).metric, 1.0 - score)
        if task is not None:
            # The task derives the rest (test_error from test_acc), as for a real trial.
            final = task_class(task).finalize(final)
        record = {"schema_version": RECORD_SCHEMA_VERSION, "status": "completed",
                  "stage": stage.name, "trial_id": f"placeholder-{index}",
                  "config": config.to_dict(), "config_hash": digest, "final": final,
                  "history": [final], "placeholder": True}
        if label is not None:
            record["label"] = label
        records.append(_Watched(record, reads))
    return records
