"""What a study's profile will cost, before anything runs: `harness run STUDY --profile P
--dry-run`.

Three steps, kept apart so the arithmetic can be tested without timing anything:

1. **Plan** (``plan_profile``): per stage, the number of trials (grid size x repeats x
   num_samples, as Ray Tune expands them; an Optuna stage draws num_samples and turns grids
   into choices), the most epochs a trial runs, the training and test images per epoch
   (subset, long tail), and the stage's *cost points*: the distinct
   ``Workload``s its trials train (model, model options, batch size, input shape, task,
   precision) with how many trials each stands for. Grids and variants are enumerated
   exactly; a searched space (choices, ranges) is enumerated up to ``MAX_ENUMERATED``
   configurations, and a stage with more than ``MAX_POINTS`` distinct workloads keeps a
   seeded, weighted sample of them (a Monte Carlo estimate of its mean trial). A stage
   whose space is a function of earlier stages' records (top-5 re-seeding, best setting
   carried on) is resolved with placeholder records of those stages: the *shape* of what
   it builds (how many variants, which models) is real, the configurations it picks are
   stand-ins. No Ray, no data: dataset sizes come from ``KNOWN_COUNTS`` or the embedded
   datasets, MACs from building each model on the meta device.
2. **Throughput** (``measure``): images/s of each workload, timed here with the engine
   itself (``harness.train.train`` on a synthetic dataset of the right shape: one warm-up
   epoch and one timed epoch of a few steps, then stopped), cached in
   ``runs/pricing/``, or read from a GPU suite's ``results/gpu/<card>-<date>/
   throughput.json`` (the GPU suite, ``python -m benchmarks.gpu_suite``). Timing stops at a budget
   (``HARNESS_DRY_RUN_BUDGET`` seconds, default 90), biggest cost first; the rest is scaled
   from the timed workloads by MACs per image and marked "~".
3. **Estimate** (``estimate_profile``): a pure function of (plan, throughput tables).
   A trial's seconds = (epochs x train images x train_fraction + every image it scores /
   ``EVAL_SPEEDUP``) / images per second + its fixed costs. It scores, every epoch, its test
   and validation splits, the whole training split when the task does (train_eval,
   stop_at_train_acc) and the photographs (denoising); once, TTA's extra views
   (``counts.eval_extras``). Fixed costs (``overheads``): process start-up, a Tune report
   and a checkpoint per epoch. A GPU rate scaled by MACs is held to the step's launch-bound
   floor (the forward's aten ops counted on the meta device, ``workload.model_costs``), so
   small models at small batches are not priced as if they filled the card. A stage's
   seconds: the sum over its cost points divided by the trials Ray runs at once on a CPU
   (CPUs / cpus_per_trial; each was timed with cpus_per_trial threads, as Ray sets
   OMP_NUM_THREADS). On a GPU, one trial at a time: trials sharing a card split its
   throughput, and the GPU suite measures the aggregate gain. The dry run prints the rate
   per model and how it was found (``explain``) and what the estimate counts.

Timing on a busy shared CPU reads slow: the dry run is a snapshot of this machine now.

Modules, one job each: ``stages`` (the plan; ``placeholders`` stand in for records of
stages that have not run), ``workload`` (what a step costs depends on) and ``counts``
(images per epoch), ``timing`` (throughput measured here) with its ``cache``, ``tables``
(throughput tables, their files, the GPU anchor), ``estimate``, ``render`` (the printed
tables), ``explain`` (rates per model, what is counted), ``overheads`` (launch floor,
fixed costs) and ``dry_run`` (the command). Every public name is importable from here.
"""

from __future__ import annotations

from harness.pricing.cache import (
    cache_path,
)
from harness.pricing.counts import (
    KNOWN_COUNTS,
    DatasetCounts,
    EvalExtras,
    dataset_counts,
    eval_extras,
    evaluated_images,
    train_images,
)
from harness.pricing.dry_run import (
    dry_run_text,
    print_dry_run,
    print_dry_runs,
)
from harness.pricing.estimate import (
    EVAL_SPEEDUP,
    ProfileEstimate,
    StageEstimate,
    Total,
    concurrent_trials,
    estimate_profile,
    evaluated_per_trial,
    trial_seconds,
)
from harness.pricing.explain import (
    render_counted,
    render_model_rates,
)
from harness.pricing.overheads import (
    CHECKPOINT_FIXED_SECONDS,
    LAUNCH_SECONDS,
    REPORT_SECONDS,
    TRIAL_START_SECONDS,
    checkpoint_seconds,
    describe_overheads,
    launch_bound_rate,
    step_floor_seconds,
    trial_fixed_seconds,
)
from harness.pricing.placeholders import (
    placeholder_records,
)
from harness.pricing.render import (
    human_hours,
    human_seconds,
    render_assumptions,
    render_estimate,
)
from harness.pricing.stages import (
    INT_RANGE_VALUES,
    MAX_ENUMERATED,
    MAX_POINTS,
    CostPoint,
    ProfilePlan,
    StagePlan,
    check_profile,
    enumerate_points,
    plan_profile,
    stage_trials,
    trial_threads,
)
from harness.pricing.tables import (
    ANCHOR_IMAGES_PER_SECOND,
    ANCHOR_SOURCE,
    THROUGHPUT_SCHEMA,
    Rate,
    ThroughputTable,
    anchor_gpu_table,
    find_gpu_table,
    load_table,
    table_json,
)
from harness.pricing.timing import (
    BUDGET_ENV,
    DEFAULT_BUDGET_S,
    TEST_IMAGES,
    budget_seconds,
    machine_name,
    measure,
    synthetic_dataset,
    time_workload,
    timing_steps,
)
from harness.pricing.workload import (
    Workload,
    macs_of,
    model_costs,
    workload_of,
)

__all__ = [
    "CHECKPOINT_FIXED_SECONDS", "EvalExtras", "LAUNCH_SECONDS", "REPORT_SECONDS",
    "TRIAL_START_SECONDS", "checkpoint_seconds", "describe_overheads", "eval_extras",
    "evaluated_per_trial", "launch_bound_rate", "model_costs", "render_counted",
    "render_model_rates", "step_floor_seconds", "trial_fixed_seconds",
    "ANCHOR_IMAGES_PER_SECOND", "ANCHOR_SOURCE", "BUDGET_ENV", "CostPoint", "DEFAULT_BUDGET_S",
    "DatasetCounts", "EVAL_SPEEDUP", "INT_RANGE_VALUES", "KNOWN_COUNTS", "MAX_ENUMERATED",
    "MAX_POINTS", "ProfileEstimate", "ProfilePlan", "Rate", "StageEstimate", "StagePlan",
    "TEST_IMAGES", "THROUGHPUT_SCHEMA", "ThroughputTable", "Total", "Workload",
    "anchor_gpu_table", "budget_seconds", "cache_path", "check_profile", "concurrent_trials",
    "dataset_counts", "dry_run_text", "enumerate_points", "estimate_profile",
    "evaluated_images", "find_gpu_table", "human_hours", "human_seconds", "load_table",
    "machine_name", "macs_of", "measure", "placeholder_records", "plan_profile",
    "print_dry_run", "print_dry_runs", "render_assumptions", "render_estimate", "stage_trials",
    "synthetic_dataset", "table_json", "time_workload", "timing_steps", "train_images",
    "trial_seconds", "trial_threads", "workload_of",
]
