"""The suite's parts, one module each; ``BODIES`` maps a part's name to its function."""

from __future__ import annotations

from benchmarks.gpu_suite.parts.mlflow_log import part_mlflow
from benchmarks.gpu_suite.parts.pricing import part_pricing
from benchmarks.gpu_suite.parts.recipe import part_recipe
from benchmarks.gpu_suite.parts.sharing import part_sharing
from benchmarks.gpu_suite.parts.slices import part_slices
from benchmarks.gpu_suite.parts.throughput import part_throughput

BODIES = {"throughput": part_throughput, "recipe": part_recipe, "sharing": part_sharing,
          "pricing": part_pricing, "slices": part_slices, "mlflow": part_mlflow}
