"""Training throughput: the engine's device-resident pipeline against a DataLoader pipeline.

(a) harness: the split lives on the device as one uint8 tensor; shuffling, crop, flip and
    normalization are batched tensor ops there (harness.data.DeviceBatches).
(b) baseline: a torchvision-style Dataset of the same images, PIL transforms
    (RandomCrop with padding, RandomHorizontalFlip, ToTensor, Normalize) and a DataLoader
    with worker processes, batches copied to the device.

Both train the same model with the same optimizer for the same number of steps, in one run;
(b) once per DataLoader worker count given. ``run_benchmark`` is what the GPU suite
(benchmarks/gpu_suite/) calls.

    python benchmarks/throughput.py --dataset cifar10 --model fastnet --device cuda --batch-size 512 --workers 4,8,16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from harness.data import DeviceBatches, load_dataset, pixel_stats
from harness.environment import device_name, resolve_device
from harness.models import create_model


class PilImageDataset(Dataset):
    """What torchvision.datasets.CIFAR10 does per item: an array to a PIL image, then transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # N, H, W, C for PIL
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        array = self.images[index]
        image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        return self.transform(image), self.labels[index]


def train_steps(model, optimizer, batches, steps: int, device: torch.device, autocast,
                check: Callable[[], None] | None = None) -> float:
    """Train for `steps` batches after a warm-up of 3; return images per second.
    ``check`` is called before every step (the GPU suite's deadline: it raises to stop)."""
    seen = 0
    start = None
    for step, (images, labels) in enumerate(batches):
        if check is not None:
            check()
        if step == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, seen = time.perf_counter(), 0
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast():
            loss = F.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += labels.numel()
        if step + 1 >= steps + 3:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def endless(make_epoch):
    epoch = 0
    while True:
        yield from make_epoch(epoch)
        epoch += 1


def run_benchmark(dataset, model_name: str = "fastnet", device: torch.device | str = "cpu",
                  batch_size: int = 512, steps: int = 30, workers: Sequence[int] = (8,),
                  model_options: dict | None = None,
                  check: Callable[[], None] | None = None) -> dict:
    """(a) the device-resident pipeline, then (b) the DataLoader + PIL pipeline once per
    worker count, each on a fresh copy of the same model; images/s of each."""
    device = torch.device(device)
    mean, std = pixel_stats(dataset.train.images)
    channels_last = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" \
        else (lambda: torch.autocast("cpu", enabled=False))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    def fresh_model():
        torch.manual_seed(0)
        model = create_model(model_name, dataset.num_classes, dataset.image_shape,
                             **(model_options or {})).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    height = dataset.image_shape[1]
    padding = 4 if height >= 32 else 1
    results = {}

    model, optimizer = fresh_model()
    device_batches = DeviceBatches(dataset.train.images.to(device), dataset.train.labels.to(device),
                                   batch_size, 0, mean, std, crop_padding=padding, flip=True,
                                   channels_last=channels_last)
    results["harness_device_resident"] = train_steps(
        model, optimizer, endless(device_batches.epoch), steps, device, autocast, check)

    pil = transforms.Compose([
        transforms.RandomCrop(height, padding=padding),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean.tolist(), std.tolist()),
    ])
    by_workers = {}
    for count in workers:
        model, optimizer = fresh_model()
        loader = DataLoader(PilImageDataset(dataset.train.images, dataset.train.labels, pil),
                            batch_size=batch_size, shuffle=True, num_workers=count,
                            pin_memory=device.type == "cuda", drop_last=True,
                            persistent_workers=count > 0)
        by_workers[str(count)] = round(train_steps(
            model, optimizer, endless(lambda _epoch, loader=loader: iter(loader)), steps, device,
            autocast, check), 1)
        del loader  # stops its worker processes before the next count starts its own
    first = by_workers[str(workers[0])]
    return {
        "machine": device_name(device), "device": device.type, "model": model_name,
        "dataset": dataset.source, "batch_size": batch_size, "steps": steps,
        "workers": list(workers), "torch": torch.__version__,
        "images_per_second": {"harness_device_resident": round(results["harness_device_resident"], 1),
                              "dataloader_pil": first},
        "dataloader_pil_by_workers": by_workers,
        "speedup": round(results["harness_device_resident"] / first, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--model", default="fastnet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", default=str(min(8, os.cpu_count() or 1)),
                        help="DataLoader worker processes; a comma list (4,8,16) measures each")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    summary = run_benchmark(load_dataset(args.dataset, args.data_root), args.model,
                            resolve_device(args.device), args.batch_size, args.steps, workers)
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    main()
