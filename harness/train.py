"""One trial: a plain function of its config. No Ray or MLflow in here.

``train(config, report)`` calls ``report(metrics, checkpoint)`` once per epoch and
returns the trial's record. The checkpoint dict references live tensors: a reporter
that keeps it must serialize it before returning (``save_checkpoint`` does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness.config import TrialConfig
from harness.data import DeviceBatches, eval_batches, load_dataset, pixel_stats
from harness.data.types import ImageDataset
from harness.environment import environment_facts, resolve_device
from harness.evaluate import Evaluation, evaluate
from harness.files import atomic_path
from harness.losses import create_loss
from harness.models import count_macs, count_parameters, create_model
from harness.optim import build_optimizer, build_scheduler
from harness.trial_data import prepare_trial_data

RECORD_SCHEMA_VERSION = 1

Reporter = Callable[[dict[str, Any], dict[str, Any] | None], None]


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint atomically so an interrupted write never replaces a good one."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _configure_determinism(config: TrialConfig, device: torch.device) -> None:
    if device.type != "cuda":
        return
    if config.deterministic:
        # cuBLAS needs a fixed workspace for deterministic matmuls.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def _autocast_factory(config: TrialConfig, device: torch.device) -> Callable[[], Any]:
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(
    config: TrialConfig,
    report: Reporter | None = None,
    *,
    checkpoint: dict[str, Any] | None = None,
    data_root: str | Path | None = None,
    dataset: ImageDataset | None = None,
) -> dict[str, Any]:
    """Run one trial to the end (or to divergence) and return its record."""
    wall_start = time.perf_counter()
    device = resolve_device(config.device)
    _configure_determinism(config, device)
    seed = config.derived_seed()
    dataset = dataset if dataset is not None else load_dataset(config.dataset, data_root)
    data = prepare_trial_data(dataset, config)
    num_classes = dataset.num_classes
    in_shape = dataset.image_shape
    channels_last = config.channels_last and device.type == "cuda"

    mean, std = pixel_stats(data.train.images)
    train_batches = DeviceBatches(
        data.train.images.to(device), data.train.labels.to(device), config.batch_size, seed,
        mean, std, crop_padding=config.crop_padding, flip=config.flip, channels_last=channels_last,
    )
    test_images, test_labels = data.test.images.to(device), data.test.labels.to(device)

    torch.manual_seed(seed)
    model = create_model(config.model, num_classes, in_shape, **config.model_options)
    num_params = count_parameters(model)
    macs = count_macs(model, in_shape)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = create_loss(config.loss, data.class_counts, **config.loss_options).to(device)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, len(train_batches), config)
    forward = torch.compile(model) if config.compile else model
    autocast = _autocast_factory(config, device)

    history: list[dict[str, Any]] = []
    start_epoch = 0
    evaluation: Evaluation | None = None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["torch_rng"])
        if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
        history = list(checkpoint["history"])
        start_epoch = int(checkpoint["epoch"])
        evaluation = Evaluation(**checkpoint["evaluation"])

    def build_record(status: str) -> dict[str, Any]:
        train_seconds = sum(h.get("epoch_seconds", 0.0) for h in history)
        completed = [h for h in history if "test_acc" in h]
        final = dict(completed[-1]) if completed else {"epoch": 0}
        if "test_acc" in final:
            final["test_error"] = 1.0 - final["test_acc"]
        if status == "diverged":
            final["train_loss"] = history[-1]["train_loss"]
        images_seen = sum(h.get("images_per_second", 0.0) * h.get("epoch_seconds", 0.0) for h in completed)
        return {
            "schema_version": RECORD_SCHEMA_VERSION,
            "status": status,
            "config": config.to_dict(),
            "config_hash": config.config_hash(),
            "seed": seed,
            "final": final,
            "history": history,
            "per_class_accuracy": evaluation.per_class_accuracy if evaluation else None,
            "confusion_matrix": evaluation.confusion_matrix if evaluation else None,
            "class_names": list(dataset.classes),
            "train_class_counts": data.class_counts,
            "num_params": num_params,
            "macs_per_image": macs,
            "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - wall_start,
            "images_per_second": images_seen / train_seconds if train_seconds > 0 else None,
            "data": {
                "dataset": dataset.name,
                "source": dataset.source,
                "sha256": dataset.sha256,
                "train_size": len(data.train),
                "test_size": len(data.test),
                "data_seed": config.data_seed,
                "label_noise_realized": data.label_noise_realized,
            },
            "environment": environment_facts(device),
        }

    status = "completed"
    for epoch in range(start_epoch, config.epochs):
        loss_fn.set_epoch(epoch)
        model.train()
        _synchronize(device)
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for images, labels in train_batches.epoch(epoch):
            with autocast():
                logits = forward(images)
                loss = loss_fn(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * labels.numel()
            correct += (logits.detach().argmax(dim=1) == labels).sum()
            seen += labels.numel()
        _synchronize(device)
        epoch_seconds = time.perf_counter() - epoch_start
        train_loss = loss_sum.item() / max(1, seen)
        if not math.isfinite(train_loss):
            # A diverged trial is a result (the lr was too high), not a crash.
            status = "diverged"
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "epoch_seconds": epoch_seconds})
            break
        evaluation = evaluate(
            forward,
            eval_batches(test_images, test_labels, config.eval_batch_size, mean, std, channels_last),
            num_classes,
            autocast,
        )
        metrics = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": correct.item() / max(1, seen),
            "test_loss": evaluation.loss,
            "test_acc": evaluation.accuracy,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": epoch_seconds,
            "images_per_second": seen / epoch_seconds if epoch_seconds > 0 else float("nan"),
        }
        history.append(metrics)
        if report is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "epoch": epoch + 1,
                "history": list(history),
                "config": config.to_dict(),
                "evaluation": dataclasses.asdict(evaluation),
                # The record so far, so a trial stopped early (ASHA) still leaves one.
                "record": build_record("running"),
            }
            report(
                {**metrics, "per_class_accuracy": evaluation.per_class_accuracy},
                state,
            )

    return build_record(status)
