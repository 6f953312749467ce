"""A theory check as a trial: the ``check`` trial kind of ``harness.trials``.

A check trial's config names a claim and a repeat index; its seed is a hash of both, like a
training trial's. Running it computes the claim (``harness.theory.claims.run_claim``) and
returns a record of the usual shape: the claim's measurements are its final metrics (and
MLflow metrics), ``agrees`` is 1 when the write-up's statement holds as stated, and the
whole ``ClaimResult`` is kept under ``record["claim"]`` for the table and figures.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from harness.errors import ConfigError, require
from harness.records import RECORD_SCHEMA_VERSION

KEYS = ("claim", "repeat")


@dataclass(frozen=True)
class CheckConfig:
    claim: int
    repeat: int = 0
    epochs: int = 1  # one result per check; Tune's bookkeeping counts it as one epoch
    dataset: str = "none"  # checks read no data

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CheckConfig:
        from harness.theory.claims import CLAIMS

        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise ConfigError(
                f"unknown key(s) for a theory check: {', '.join(unknown)}. Valid keys: "
                f"{', '.join(KEYS)}"
            )
        try:
            claim, repeat = int(values["claim"]), int(values.get("repeat", 0))
        except KeyError:
            raise ConfigError("a theory check needs a claim number, e.g. claim=4") from None
        except (TypeError, ValueError):
            raise ConfigError(f"claim and repeat must be integers, got {dict(values)}") from None
        require(claim in CLAIMS, f"claim must be one of {sorted(CLAIMS)}, got {claim}")
        require(repeat >= 0, f"repeat must be >= 0, got {repeat}")
        return cls(claim, repeat)

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "repeat": self.repeat}

    def config_hash(self) -> str:
        blob = json.dumps({"claim": self.claim, "kind": "check"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def derived_seed(self) -> int:
        digest = hashlib.sha256(f"{self.config_hash()}:{self.repeat}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def run_check(
    config: CheckConfig,
    report: Callable[[dict[str, Any], dict[str, Any] | None], None] | None = None,
    *,
    checkpoint: dict[str, Any] | None = None,
    data_root: Any = None,
) -> dict[str, Any]:
    """Compute the claim and return its record (one report, as one "epoch")."""
    from harness.environment import environment_facts
    from harness.theory.claims import VERDICTS, run_claim

    started = time.perf_counter()
    seed = config.derived_seed()
    result = run_claim(config.claim, seed=seed)
    seconds = time.perf_counter() - started
    metrics = {
        "epoch": 1,
        "agrees": 1.0 if result.verdict == VERDICTS[0] else 0.0,
        **{k: float(v) for k, v in result.measurements.items()},
        "epoch_seconds": seconds,
    }
    record = {
        "schema_version": RECORD_SCHEMA_VERSION,
        "status": "completed",
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "seed": seed,
        "final": dict(metrics),
        "history": [dict(metrics)],
        "claim": result.to_dict(),
        "verdict": result.verdict,
        "train_seconds": seconds,
        "wall_seconds": time.perf_counter() - started,
        "data": {"dataset": "none", "source": "computed", "sha256": None},
        "environment": environment_facts(torch.device("cpu")),
    }
    if report is not None:
        report(metrics, {"epoch": 1, "record": record})
    return record
