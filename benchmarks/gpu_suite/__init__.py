"""The GPU suite: every GPU figure this project reports, each against its target, from one
run of at most 9 minutes (data decoding included) on one CUDA GPU.

It is a check that can fail: each part's figure is compared with its target
(``targets.py``) and printed as PASS / FAIL / SKIP with the figure; the command exits 1
on any FAIL (2 on bad arguments or no GPU). Each part runs inside its share of the budget
(``config.Sizes.shares``) and is stopped, and FAILs, when it overruns it (``budget.py``).

Parts (``parts/``, one module each):

1. throughput: fastnet at batch 512, the engine's device-resident pipeline against a
   DataLoader + PIL pipeline with 4, 8 and 16 workers (benchmarks/throughput.py); target:
   resident >= 10x the fastest DataLoader;
2. recipe: fastnet's airbench94 recipe (harness.recipes.FASTNET_RECIPE), five seeds after a
   warm-up run; target: mean test accuracy >= 90.3% on the JPEG copy, no seed diverged,
   NaN or at chance level;
3. sharing: 1, 2, 4 and 8 concurrent ResNet-32 trials on the card (Ray's fractional GPUs
   when Ray imports, else separate processes); target: a trial sharing the card with up to
   four (the profiles' packing) runs within 1.5x of its speed alone;
4. pricing: every workload of every study's paper profile timed on this card
   (harness.pricing), written to throughput.json, which `harness run ... --dry-run` reads;
5. slices: one trial of every study's first training stage, a few epochs, torch.compile off
   and on; every metric must be finite;
6. mlflow: the figures and files logged as one MLflow run, when MLflow imports (else SKIP).

Modules: ``config`` (parts, sizes, shares, anchors), ``targets`` (verdicts, exit code),
``budget`` (deadlines), ``inputs`` (data, optional modules), ``context``, ``suite`` (runs
the parts), ``report`` (summary.md), ``cli``.

It writes results/gpu/<card>-<date>/ (``--out-root``, or ``--out`` for the exact folder):
summary.md (verdicts, then every figure beside its anchor), suite.json (the raw numbers,
verdicts included) and throughput.json (pricing's table), rewritten after each part, so a
run cut short leaves what it measured. It needs PyTorch, torchvision, pandas and the
checkout only: no nox, no network; Ray and MLflow are optional.

On a GPU machine lent through the device tool (a copy of the working tree, 64 MiB carried;
/work/.library/device/README.md), from the checkout's root:

    # here, once: the data (19 MB) and, optionally, Ray (~38 MB) into git-ignored folders
    mkdir -p .data && cp ../shared/data/cifar10-jpeg.tar.gz .data/
    bash ../shared/tools/offline-ray-bundle.sh 3.12     # optional: .whl/ray-site-py312.tar.xz

    # the device call: run(carry=[".data", ".whl"], timeout_s=600, command=
    set -o pipefail; RAY=; [ -f .whl/ray-site-py312.tar.xz ] && RAY="--ray-site .whl/ray-site-py312.tar.xz"; PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_suite --data-root .data --out $OUT/gpu $RAY 2>&1 | tee $OUT/gpu-suite.log

    # then copy files_at/gpu/ into results/gpu/<card>-<date>/ and commit it

On a CPU, ``--tiny`` runs every code path at toy sizes on synthetic CIFAR-shaped data and
the smoke profiles, judging finiteness only (tests/test_gpu_suite.py runs it):

    python -m benchmarks.gpu_suite --tiny --device cpu --out /tmp/suite
"""
