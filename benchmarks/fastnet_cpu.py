"""One full-recipe fastnet trial (airbench94 in this harness: harness.recipes.FASTNET_RECIPE)
on all of CIFAR-10, on whatever device is at hand (meant for a CPU: on 2 otherwise idle
cores an epoch takes about 200 s, so about 35 minutes); prints the test accuracy and the seconds it took and writes the trial record.

    HARNESS_DATA=../shared/data python benchmarks/fastnet_cpu.py --out results/fastnet_cpu

``--set key=value`` overrides recipe keys for a quick throughput check, e.g.
``--set train_limit=4096 --set test_limit=1000 --set epochs=1 --set train_fraction=1``.
Reference on the JPEG copy: airbench94 itself, unmodified, 90.61% +- 0.11 (n = 8, H100).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from harness.config import TrialConfig, parse_overrides
from harness.recipes import FASTNET_RECIPE
from harness.records import write_record
from harness.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/fastnet_cpu", help="folder for the record")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    config = TrialConfig.from_dict(
        {**FASTNET_RECIPE, "dataset": "cifar10", "device": args.device, **parse_overrides(args.set)}
    )

    def progress(metrics: dict[str, Any], _state: Any) -> None:
        print(f"epoch {metrics['epoch']:>2}  train_loss {metrics['train_loss']:.4f}  "
              f"train_acc {metrics['train_acc']:.4f}  test_acc {metrics['test_acc']:.4f}  "
              f"lr {metrics['lr']:.4f}  {metrics['epoch_seconds']:.1f} s  "
              f"{metrics['images_per_second']:.0f} img/s", flush=True)

    start = time.perf_counter()
    record = train(config, progress, data_root=args.data_root)
    wall = time.perf_counter() - start
    path = write_record(record, args.out)
    final = record["final"]
    print(f"status {record['status']}; test accuracy {final.get('test_acc', float('nan')):.4f} "
          f"(tta {config.task_options.get('tta', 0)}) on {record['data']['source']}; "
          f"train {record['train_seconds']:.1f} s, wall {wall:.1f} s, "
          f"{record['images_per_second'] or float('nan'):.1f} images/s; "
          f"{record['environment'].get('device_name')}")
    print(path)


if __name__ == "__main__":
    main()
