"""The suite's parts, their sizes (the GPU run, or --tiny on a CPU) and each part's share of
the time budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.gpu_suite.budget import ALARM_GRACE_S

# In this order: pricing (what the dry run reads) before the slices' torch.compile runs,
# which take whatever time is left.
PARTS = ("throughput", "recipe", "sharing", "pricing", "slices", "mlflow")
RECIPE_NAMES = ("harness.recipes:FASTNET_RECIPE", "harness.models.fastnet:FASTNET_RECIPE")
ANCHOR_MACHINE = "H100"
# Images/s measured on an H100 per pipeline (the project's design notes, DESIGN.md: "a
# torchvision DataLoader with PIL transforms fed 12k images/s with 4 workers and 24k with 8;
# the same net with its data resident on the GPU trained at 139k images/s").
THROUGHPUT_ANCHORS = {"harness_device_resident": 139_000, "4": 12_100, "8": 23_700}
# airbench94 on the JPEG q75 copy on an H100: test accuracy (%) and training seconds.
RECIPE_ANCHOR = {"test_acc_percent": 90.61, "train_seconds": 2.3}
BUDGET_S = 540.0  # 9 minutes, data decoding included
OPTIONAL = ("ray", "mlflow")
EXPERIMENT = "gpu-suite"  # the MLflow experiment the suite logs to
TINY_CIFAR = {"train": 128, "test": 32}  # synthetic CIFAR-shaped images for --tiny


@dataclass(frozen=True)
class Sizes:
    """How big each part runs: the GPU suite, or --tiny for a CPU."""

    profile: str  # the studies' profile the slices and pricing walk
    throughput_batch: int
    throughput_steps: int
    loader_workers: tuple[int, ...]
    throughput_options: Mapping[str, Any]
    recipe_seeds: int
    recipe_overrides: tuple[Mapping[str, Any], ...]  # tried in order; the first that validates
    recipe_warmup: bool
    sharing_counts: tuple[int, ...]
    sharing_config: Mapping[str, Any]
    sharing_seconds: float
    sharing_warmup_steps: int
    slice_epochs: int
    slice_steps: int
    slice_test: int
    pricing_budget_s: float
    budget_s: float
    # Seconds a part needs at the least to be worth starting (the rest is kept for it).
    needs: Mapping[str, float] = field(default_factory=dict)
    # The most seconds a part may run: past it the part is stopped (budget.part_deadline)
    # and fails, so one slow part cannot eat the others' time.
    shares: Mapping[str, float] = field(default_factory=dict)
    # Seconds past its deadline before the alarm stops a part that does not check it.
    grace_s: float = ALARM_GRACE_S


FULL = Sizes(
    profile="paper", throughput_batch=512, throughput_steps=50, loader_workers=(4, 8, 16),
    throughput_options={}, recipe_seeds=5, recipe_overrides=({},), recipe_warmup=True,
    sharing_counts=(1, 2, 4, 8), sharing_config={"model": "resnet32", "batch_size": 128},
    sharing_seconds=10.0, sharing_warmup_steps=20, slice_epochs=2, slice_steps=100,
    slice_test=2000, pricing_budget_s=150.0, budget_s=BUDGET_S,
    needs={"throughput": 30, "recipe": 40, "sharing": 60, "slices": 40, "pricing": 40,
           "mlflow": 10},
    shares={"throughput": 60, "recipe": 120, "sharing": 120, "pricing": 170, "slices": 240,
            "mlflow": 30},
)
TINY = Sizes(
    profile="smoke", throughput_batch=32, throughput_steps=2, loader_workers=(1, 2),
    throughput_options={"widths": (8, 8, 8)}, recipe_seeds=2,
    # Two epochs if the recipe allows them, else its own length, of a narrow fastnet.
    recipe_overrides=({"batch_size": 32, "model.widths": "8,8,8", "epochs": 2,
                       "warmup_epochs": 0.5},
                      {"batch_size": 32, "model.widths": "8,8,8"}),
    recipe_warmup=False,
    sharing_counts=(1, 2),
    sharing_config={"model": "resnet32", "model.depth": 8, "model.base_width": 4,
                    "batch_size": 32},
    sharing_seconds=1.0, sharing_warmup_steps=2, slice_epochs=2, slice_steps=2,
    slice_test=64, pricing_budget_s=4.0, budget_s=300.0,
    needs={"throughput": 0, "recipe": 0, "sharing": 0, "slices": 0, "pricing": 0, "mlflow": 0},
    shares={"throughput": 120, "recipe": 120, "sharing": 150, "pricing": 120, "slices": 240,
            "mlflow": 120},
)


class SkipPart(Exception):
    """A part that cannot run here; its message says why."""
