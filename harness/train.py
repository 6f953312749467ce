"""One trial: a plain function of its config. No Ray or MLflow in here.

``train(config, report)`` calls ``report(metrics, checkpoint)`` once per epoch and
returns the trial's record. What is learned (data, batches, evaluation, the record's
extras) comes from the config's task (``harness.tasks``); this loop knows the optimizer,
the schedule, checkpoints, divergence and timing, nothing task-specific.

Two optional hooks let a task or model take part without the loop knowing what they do:
a task's ``prepare_model(model)`` runs once before the first step of a fresh trial
(classification hands models with ``init_from_data`` training images: fastnet's whitening
stem), and a model's ``set_epoch(epoch)`` runs before every epoch (fastnet freezes its
stem bias after ``whiten_bias_epochs``). With ``train_fraction`` < 1 the last epoch stops
after ``total_steps`` steps; with ``lookahead_every`` > 0 the weights' EMA
(``harness.optim.Lookahead``) follows every optimizer step and goes into the checkpoint.

The checkpoint dict references live tensors: a reporter that keeps it must serialize it
before returning (``save_checkpoint`` does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from harness.compiling import compile_model
from harness.config import TrialConfig
from harness.data import load_dataset
from harness.data.types import ImageDataset
from harness.environment import (
    environment_facts,
    prepare_worker_environment,
    resolve_device,
    resolve_precision,
)
from harness.files import atomic_path
from harness.models import count_macs, count_parameters, create_model
from harness.optim import build_lookahead, build_optimizer, build_scheduler, total_steps
from harness.records import RECORD_SCHEMA_VERSION
from harness.tasks import Evaluation, create_task

Reporter = Callable[[dict[str, Any], dict[str, Any] | None], None]

# Where shuffles, crops, flips and noise are drawn (harness.data.batching, the tasks): CPU
# generators on every device, so a CPU and a GPU trial of one config see the same batches.
RANDOM_DRAWS = "cpu"

# Before anything in this process can start CUDA: see harness.environment.WORKER_ENV.
prepare_worker_environment()


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint atomically so an interrupted write never replaces a good one."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


@contextlib.contextmanager
def trial_determinism(config: TrialConfig, device: torch.device) -> Iterator[None]:
    """PyTorch's determinism switches for one trial, restored when it ends.

    They are process-wide: a Tune worker reused for the next trial (``reuse_actors``)
    would otherwise inherit one trial's deterministic mode or cuDNN autotuning.
    """
    cudnn = torch.backends.cudnn
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.benchmark,
        cudnn.deterministic,
    )
    try:
        if config.deterministic:
            # cuBLAS's fixed workspace (CUBLAS_WORKSPACE_CONFIG) is in the environment
            # since this module's import: setting it here would come after cuBLAS started.
            torch.use_deterministic_algorithms(True)
            cudnn.benchmark, cudnn.deterministic = False, True
        else:
            torch.use_deterministic_algorithms(False)
            # Autotuning picks the fastest kernels for a fixed input shape, on CUDA only.
            cudnn.benchmark, cudnn.deterministic = device.type == "cuda", False
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        cudnn.benchmark, cudnn.deterministic = saved[2], saved[3]


def autocast_factory(config: TrialConfig, device: torch.device) -> Callable[[], Any]:
    """A context factory for the trial's precision (``resolve_precision``): bf16 autocast
    (the default on a CUDA card with native bf16), else a no-op. The GPU suite times its
    steps under the same one."""
    if resolve_precision(config.precision, device)[0] == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a wall-clock reading covers it (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    autocast: Callable[[], Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step: the forward pass under ``autocast``, the loss in float32 outside
    it (on float32 logits: autocast may give bf16 ones, and would run a loss's own matmuls
    in bf16), backward, step. Returns (outputs, loss), not detached."""
    with autocast():
        outputs = forward(inputs)
    loss = loss_fn(outputs.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return outputs, loss


def train(
    config: TrialConfig,
    report: Reporter | None = None,
    *,
    checkpoint: dict[str, Any] | None = None,
    data_root: str | Path | None = None,
    dataset: ImageDataset | None = None,
) -> dict[str, Any]:
    """Run one trial to the end (or to divergence, or to the task's early stop) and return
    its record."""
    wall_start = time.perf_counter()
    device = resolve_device(config.device)
    with trial_determinism(config, device):
        dataset = dataset if dataset is not None else load_dataset(config.dataset, data_root)
        return _train(config, report, checkpoint, dataset, device, wall_start)


def _train(
    config: TrialConfig,
    report: Reporter | None,
    checkpoint: dict[str, Any] | None,
    dataset: ImageDataset,
    device: torch.device,
    wall_start: float,
) -> dict[str, Any]:
    seed = config.derived_seed()
    task = create_task(config, dataset, device)
    channels_last = config.channels_last and device.type == "cuda"

    torch.manual_seed(seed)
    model = create_model(config.model, task.num_outputs, task.in_shape, **config.model_options)
    num_params = count_parameters(model)
    macs = count_macs(model, task.in_shape)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if checkpoint is None:
        task.prepare_model(model)
    loss_fn = task.create_loss().to(device)
    optimizer = build_optimizer(model, config)
    steps_per_epoch = len(task)
    scheduler = build_scheduler(optimizer, steps_per_epoch, config)
    lookahead = build_lookahead(model, steps_per_epoch, config)
    set_epoch = getattr(model, "set_epoch", None)
    forward = compile_model(model) if config.compile else model
    autocast = autocast_factory(config, device)
    precision, precision_note = resolve_precision(config.precision, device)

    history: list[dict[str, Any]] = []
    start_epoch = 0
    evaluation: Evaluation | None = None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if lookahead is not None:
            lookahead.load_state_dict(checkpoint["lookahead"])
        torch.set_rng_state(checkpoint["torch_rng"])
        if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
        history = list(checkpoint["history"])
        start_epoch = int(checkpoint["epoch"])
        evaluation = Evaluation(**checkpoint["evaluation"])

    def build_record(status: str) -> dict[str, Any]:
        train_seconds = sum(h.get("epoch_seconds", 0.0) for h in history)
        evaluated = [h for h in history if task.kind.metric in h]
        if status == "diverged":
            final = dict(history[-1])  # the epoch that blew up, as the history says
        else:
            final = dict(evaluated[-1]) if evaluated else {"epoch": 0}
        images_seen = sum(
            h.get("images_per_second", 0.0) * h.get("epoch_seconds", 0.0) for h in evaluated
        )
        fields = task.record_fields()
        return {
            "schema_version": RECORD_SCHEMA_VERSION,
            "status": status,
            "config": config.to_dict(),
            "resolved_config": config.resolved_dict(),
            "config_hash": config.config_hash(),
            "seed": seed,
            "final": task.kind.finalize(final),
            "history": history,
            **{k: v for k, v in fields.items() if k != "data"},
            **(evaluation.extras if evaluation else {}),
            **task.summarize(history),
            "num_params": num_params,
            "macs_per_image": macs,
            "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - wall_start,
            "images_per_second": images_seen / train_seconds if train_seconds > 0 else None,
            "data": {
                "dataset": dataset.name,
                "source": dataset.source,
                "sha256": dataset.sha256,
                **fields.get("data", {}),
                "data_seed": config.trial_data_seed(),
            },
            "environment": environment_facts(
                device,
                device_kind=device.type,
                deterministic=torch.are_deterministic_algorithms_enabled(),
                precision=precision,
                precision_note=precision_note,
                compiled=bool(config.compile),
                random_draws=RANDOM_DRAWS,
            ),
        }

    status = "completed"
    last_step = total_steps(steps_per_epoch, config)
    for epoch in range(start_epoch, config.epochs):
        loss_fn.set_epoch(epoch)
        if set_epoch is not None:
            set_epoch(epoch)
        model.train()
        synchronize(device)
        epoch_start = time.perf_counter()
        meter = task.meter()
        step = epoch * steps_per_epoch
        for inputs, targets in task.batches(epoch):
            if step >= last_step:
                break  # train_fraction < 1: the last epoch ends early
            loss_fn.set_progress(step / last_step)
            outputs, loss = train_step(forward, loss_fn, optimizer, autocast, inputs, targets)
            scheduler.step()
            meter.update(outputs.detach(), targets, loss.detach())
            step += 1
            if lookahead is not None:
                lookahead.after_step(model, step)
        synchronize(device)
        epoch_seconds = time.perf_counter() - epoch_start
        train_metrics = meter.result()
        if not math.isfinite(train_metrics["train_loss"]):
            # A diverged trial is a result (the lr was too high), not a crash.
            status = "diverged"
            history.append({"epoch": epoch + 1, "train_loss": train_metrics["train_loss"],
                            "epoch_seconds": epoch_seconds})
            break
        evaluation = task.evaluate(forward, autocast)
        metrics = {
            "epoch": epoch + 1,
            **train_metrics,
            **evaluation.metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": epoch_seconds,
            "images_per_second": meter.count / epoch_seconds if epoch_seconds > 0 else float("nan"),
        }
        history.append(metrics)
        stop = task.stop_status(metrics)
        if report is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "lookahead": lookahead.state_dict() if lookahead is not None else None,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "epoch": epoch + 1,
                "history": list(history),
                "config": config.to_dict(),
                "evaluation": dataclasses.asdict(evaluation),
                # The record so far, so a trial stopped early (ASHA) still leaves one.
                "record": build_record(stop or "running"),
            }
            report({**metrics, **evaluation.extras}, state)
        if stop is not None:
            status = stop
            break

    return build_record(status)
