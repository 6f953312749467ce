"""Circulant matrix-vector products: a dense n x n matmul against the FFT product.

(a) dense: the circulant is stored as its n x n matrix C and multiplied as C @ X.
(b) FFT: only its first column c (n numbers) is stored; C X = irfft(rfft(c) * rfft(X)), the
    convolution theorem, O(n log n) per vector, with rfft(c) recomputed every call (the n
    parameters are all that is kept).

Both are timed in one run, same dtype, same device, on X of shape (n, batch); each time is
the median of --repeats calls after a warm-up call. The products are also compared (max
relative error), so a fast but wrong product would show.

    python benchmarks/circulant_fft.py
    python benchmarks/circulant_fft.py --sizes 64 256 1024 4096 --batch 32 --dtype float32
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from harness.environment import device_name, resolve_device
from harness.theory.claims import circulant


def fft_product(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """C x for every column of x (x: n x batch), from the first column c alone."""
    n = c.shape[0]
    return torch.fft.irfft(torch.fft.rfft(c)[:, None] * torch.fft.rfft(x, dim=0), n=n, dim=0)


def median_seconds(fn: Callable[[], torch.Tensor], repeats: int, device: torch.device) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up: allocations, FFT plans, kernel selection
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[16, 64, 256, 1024, 2048, 4096])
    parser.add_argument("--batch", type=int, default=1, help="vectors per product (columns)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(args.seed)
    rows = []
    for n in args.sizes:
        c = torch.randn(n, generator=gen, dtype=dtype).to(device)
        x = torch.randn(n, args.batch, generator=gen, dtype=dtype).to(device)
        dense_matrix = circulant(c)  # built once, outside the timing: it is what is stored
        dense = dense_matrix @ x
        error = float((fft_product(c, x) - dense).abs().max() / dense.abs().max())
        dense_s = median_seconds(lambda m=dense_matrix, x=x: m @ x, args.repeats, device)
        fft_s = median_seconds(lambda c=c, x=x: fft_product(c, x), args.repeats, device)
        rows.append({"n": n, "dense_s": dense_s, "fft_s": fft_s, "ratio": dense_s / fft_s,
                     "max_rel_err": error})
        del dense_matrix

    print(f"# {device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {args.dtype}, batch {args.batch}, median of {args.repeats}")
    print(f"{'n':>6}  {'dense s':>10}  {'fft s':>10}  {'dense/fft':>9}  {'max rel err':>11}")
    for row in rows:
        print(f"{row['n']:>6}  {row['dense_s']:>10.3e}  {row['fft_s']:>10.3e}  "
              f"{row['ratio']:>9.2f}  {row['max_rel_err']:>11.1e}")
    if args.json:
        summary = {"machine": device_name(device), "device": device.type,
                   "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "dtype": args.dtype, "batch": args.batch, "repeats": args.repeats,
                   "rows": rows}
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    main()
