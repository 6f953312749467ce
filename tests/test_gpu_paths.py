"""What a first CUDA run would hit, caught on the CPU (issue 29).

No GPU runs these tests: each checks, on the CPU, the property that makes the CUDA path
right by construction: every op in a model's backward graph has a deterministic CUDA
backward; random draws come from CPU generators; ``torch.compile`` makes at most two
graphs per model and task; bf16 never reaches a loss, a normed head, TTA's average or
the stop-at-accuracy check; the record says what its numbers depend on.
"""

from __future__ import annotations

import re

import pytest
import torch

import harness.losses  # noqa: F401  (registers the class losses)
import harness.pixel_losses  # noqa: F401  (registers the pixel losses)
from harness.loss_registry import create_loss, list_losses, loss_output
from harness.models import create_model, list_models, model_output

# ------------------------------------------------------------------ 1. deterministic ops

# Every op that PyTorch's documentation of torch.use_deterministic_algorithms lists under
# "will throw a RuntimeError when mode=True", with the autograd nodes it leaves in a
# backward graph (the "0"/"1" overload suffix stripped). Ops with no backward, or whose
# only error is in the forward of a non-differentiable op, have none: they never show in a
# graph. test_the_list_covers_pytorchs_documentation keeps the table in step with PyTorch.
NONDETERMINISTIC_BACKWARD: dict[str, tuple[str, ...]] = {
    "torch.nn.AvgPool3d": ("AvgPool3DBackward",),
    "torch.nn.AdaptiveAvgPool2d": ("AdaptiveAvgPool2DBackward",),
    "torch.nn.AdaptiveAvgPool3d": ("AdaptiveAvgPool3DBackward",),
    "torch.nn.AdaptiveMaxPool2d": ("AdaptiveMaxPool2DBackward",),
    "torch.nn.FractionalMaxPool2d": ("FractionalMaxPool2DBackward",),
    "torch.nn.FractionalMaxPool3d": ("FractionalMaxPool3DBackward",),
    "torch.nn.MaxUnpool1d": ("MaxUnpool1DBackward",),
    "torch.nn.MaxUnpool2d": ("MaxUnpool2DBackward",),
    "torch.nn.MaxUnpool3d": ("MaxUnpool3DBackward",),
    "torch.nn.functional.interpolate": (
        "UpsampleLinear1DBackward", "UpsampleBilinear2DBackward", "UpsampleBicubic2DBackward",
        "UpsampleTrilinear3DBackward", "UpsampleBilinear2DAaBackward",
        "UpsampleBicubic2DAaBackward",
    ),
    "torch.nn.ReflectionPad1d": ("ReflectionPad1DBackward",),
    "torch.nn.ReflectionPad2d": ("ReflectionPad2DBackward",),
    "torch.nn.ReflectionPad3d": ("ReflectionPad3DBackward",),
    "torch.nn.NLLLoss": ("NllLoss2DBackward",),  # the 2-d (per-pixel) kernel alerts on CUDA
    "torch.nn.CTCLoss": ("CtcLossBackward",),
    "torch.nn.EmbeddingBag": ("EmbeddingBagBackward",),
    "torch.Tensor.put_": ("PutBackward",),
    "torch.histc": (),  # not differentiable
    "torch.bincount": (),  # not differentiable
    "torch.median": ("MedianBackward",),
    "torch.nn.functional.grid_sample": ("GridSampler2DBackward", "GridSampler3DBackward"),
    "torch.Tensor.scatter_reduce": ("ScatterReduceBackward",),
    "torch.Tensor.resize_": (),  # quantized tensors only
}
FORBIDDEN_NODES = {node for nodes in NONDETERMINISTIC_BACKWARD.values() for node in nodes}

# Registered models, with the options that change their layers (whitening stem, cosine
# head, LRN) switched on as well as off.
MODEL_VARIANTS: dict[str, list[dict]] = {
    "fastnet": [{}, {"whiten": True, "whiten_bias_epochs": 1}],
    "resnet32": [{}, {"normed_head": True}],
    "alexnet-small": [{}, {"lrn": False}],
}


def throwing_ops_in_docs() -> list[str]:
    """The names PyTorch documents as throwing in deterministic mode."""
    doc = torch.use_deterministic_algorithms.__doc__ or ""
    section = doc.split("operations will throw a", 1)[1].split("In addition", 1)[0]
    return [name for name in re.findall(r":(?:class|func):`([\w.]+)`", section)
            if name != "RuntimeError"]


def backward_nodes(output: torch.Tensor) -> set[str]:
    """The autograd node class names of ``output``'s backward graph, without the overload
    suffix (AvgPool3DBackward0 -> AvgPool3DBackward)."""
    names, seen, stack = set(), set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(re.sub(r"\d+$", "", type(node).__name__))
        stack += [child for child, _ in node.next_functions]
    return names


def test_the_list_covers_pytorchs_documentation() -> None:
    documented = throwing_ops_in_docs()
    assert len(documented) > 10  # the section was found
    missing = sorted(set(documented) - set(NONDETERMINISTIC_BACKWARD))
    assert not missing, f"map these newly documented ops to their autograd nodes: {missing}"


def test_the_walk_sees_a_nondeterministic_backward() -> None:
    """The check itself can fail: PyTorch's own LRN and adaptive max pool are caught."""
    x = torch.randn(2, 9, 4, 4, requires_grad=True)
    assert "AvgPool3DBackward" in backward_nodes(torch.nn.LocalResponseNorm(3)(x).sum())
    assert "AdaptiveMaxPool2DBackward" in backward_nodes(torch.nn.AdaptiveMaxPool2d(1)(x).sum())


def _model_cases() -> list[tuple[str, dict]]:
    return [(name, options) for name in list_models()
            for options in MODEL_VARIANTS.get(name, [{}])]


@pytest.mark.parametrize(("name", "options"), _model_cases(),
                         ids=[f"{n}-{o}" for n, o in _model_cases()])
def test_every_model_backward_has_a_deterministic_cuda_kernel(name: str, options: dict) -> None:
    image = model_output(name) == "image"
    torch.manual_seed(0)
    model = create_model(name, 3 if image else 10, (3, 32, 32), **options).train()
    logits = model(torch.randn(4, 3, 32, 32))
    found = backward_nodes(logits.square().sum()) & FORBIDDEN_NODES
    assert not found, f"{name} {options}: no deterministic CUDA backward for {sorted(found)}"


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_backward_has_a_deterministic_cuda_kernel(name: str) -> None:
    torch.manual_seed(0)
    if loss_output(name) == "image":
        outputs = torch.randn(2, 3, 8, 8, requires_grad=True)
        loss = create_loss(name)(outputs, torch.rand(2, 3, 8, 8))
    else:
        outputs = torch.randn(8, 10, requires_grad=True)
        loss = create_loss(name, [50, 40, 30, 20, 10, 8, 6, 4, 2, 1])(outputs, torch.arange(8))
    found = backward_nodes(loss) & FORBIDDEN_NODES
    assert not found, f"loss {name}: no deterministic CUDA backward for {sorted(found)}"


def test_the_deterministic_layers_compute_what_they_replace() -> None:
    """Same values and gradients as PyTorch's LRN and adaptive max pool, bit for bit on the
    CPU, so records made before the change reproduce."""
    from harness.models.fastnet import GlobalMaxPool
    from harness.models.zhang import tf_local_response_norm

    torch.manual_seed(0)
    lrn = tf_local_response_norm()
    reference_lrn = torch.nn.LocalResponseNorm(lrn.size, lrn.alpha, lrn.beta, lrn.k)
    for ours, theirs in ((lrn, reference_lrn), (GlobalMaxPool(), torch.nn.AdaptiveMaxPool2d(1))):
        x = (torch.randn(8, 64, 5, 5) * 7).requires_grad_()
        grad = torch.randn_like(theirs(x))
        mine, = torch.autograd.grad(ours(x), x, grad)
        expected, = torch.autograd.grad(theirs(x), x, grad)
        assert torch.equal(ours(x), theirs(x))
        assert torch.equal(mine, expected)


# ------------------------------------------------------------------ 2. what a record depends on


@pytest.fixture(scope="module")
def digits():
    from harness.data import load_dataset

    return load_dataset("digits")


def test_batches_for_any_device_are_drawn_from_cpu_generators() -> None:
    """The meta device has no generator of its own: batches for it can only be cut if every
    shuffle, crop and flip is drawn on the CPU (then the same for CPU and GPU trials)."""
    from harness.data import DeviceBatches

    images = torch.zeros(40, 3, 8, 8, dtype=torch.uint8, device="meta")
    labels = torch.zeros(40, dtype=torch.int64, device="meta")
    for options in ({"crop_padding": 2, "flip": True},
                    {"crop_size": 6, "random_crop": True, "crop_padding": 1, "pad_mode": "reflect",
                     "flip": True, "flip_mode": "alternate"}):
        batches = DeviceBatches(images, labels, 16, 3, (0.5,) * 3, (0.25,) * 3, **options)
        cut = list(batches.epoch(1))
        assert [x.shape[0] for x, _ in cut] == [16, 16, 8]
        assert all(x.device.type == "meta" for x, _ in cut)


@pytest.mark.parametrize("noise", ["gaussian", "bernoulli", "impulse"])
def test_noise_for_any_device_is_drawn_from_a_cpu_generator(noise: str) -> None:
    from harness.data.noise import NoiseSpec, add_noise_masked

    clean = torch.zeros(2, 3, 8, 8, device="meta")
    noisy, valid = add_noise_masked(clean, NoiseSpec(noise, blind=True),
                                    torch.Generator().manual_seed(0))
    assert noisy.device.type == valid.device.type == "meta"


def test_the_record_says_what_its_numbers_depend_on(digits) -> None:
    from harness.config import TrialConfig
    from harness.train import train

    base = {"dataset": "digits", "model": "mlp", "model.hidden": "32", "epochs": 1,
            "train_limit": 200, "test_limit": 100, "device": "cpu"}
    plain = train(TrialConfig.from_dict(base), dataset=digits)["environment"]
    assert {k: plain[k] for k in ("device_kind", "deterministic", "precision", "precision_note",
                                  "compiled", "random_draws")} == {
        "device_kind": "cpu", "deterministic": False, "precision": "float32",
        "precision_note": None, "compiled": False, "random_draws": "cpu"}
    asked = train(TrialConfig.from_dict({**base, "deterministic": True, "precision": "bf16"}),
                  dataset=digits)["environment"]
    assert asked["deterministic"] is True and asked["precision"] == "bf16"
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the trial


def test_determinism_turns_cudnn_autotuning_off() -> None:
    from harness.config import TrialConfig
    from harness.train import trial_determinism

    config = TrialConfig.from_dict({"deterministic": True})
    with trial_determinism(config, torch.device("cuda")):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic


# ------------------------------------------------------------------ 3. GPU shares


def _plan(tmp_path, study: str, profile: str, **options):
    from harness.plan import RunOptions, plan_run

    return plan_run(RunOptions(study, profile, tracking=False, runs_dir=tmp_path / "runs",
                               results_dir=tmp_path / "results", **options))


def test_device_auto_asks_ray_for_a_gpu_share_where_the_cluster_has_one(tmp_path) -> None:
    from harness.placement import DEFAULT_GPU_SHARE, where_trials_run
    from harness.runner import _resources

    plan = _plan(tmp_path, "memorization", "smoke")
    stage = plan.profile.stages[0]
    assert stage.gpus_per_trial == 0  # the smoke profile names no share
    assert _resources(plan, stage, cluster_gpus=1.0)["gpu"] == DEFAULT_GPU_SHARE
    assert _resources(plan, stage, cluster_gpus=0.0)["gpu"] == 0
    assert "trials on GPU (0.25 GPU per trial, 4 at a time per card)" in where_trials_run(
        stage, DEFAULT_GPU_SHARE, 1.0)
    on_cpu = _plan(tmp_path, "memorization", "smoke", overrides={"device": "cpu"})
    assert _resources(on_cpu, on_cpu.profile.stages[0], cluster_gpus=1.0)["gpu"] == 0
    assert "although the cluster has 1 GPU" in where_trials_run(on_cpu.profile.stages[0], 0, 1.0)
    given = _plan(tmp_path, "memorization", "smoke", gpus_per_trial=0.5)
    assert _resources(given, given.profile.stages[0], cluster_gpus=1.0)["gpu"] == 0.5


def test_cpu_only_stages_never_get_gpus(tmp_path) -> None:
    from harness.runner import _resources

    plan = _plan(tmp_path, "theory", "smoke", gpus_per_trial=1.0)
    (stage,) = plan.profile.stages
    assert stage.trial == "check"
    assert _resources(plan, stage, cluster_gpus=1.0)["gpu"] == 0


# ------------------------------------------------------------------ 4. cuBLAS workspace


def _python(code: str) -> str:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items()
           if k not in ("CUBLAS_WORKSPACE_CONFIG", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_a_process_that_imports_the_training_loop_has_the_cublas_workspace_set() -> None:
    out = _python("import os, harness.train; print(os.environ.get('CUBLAS_WORKSPACE_CONFIG'))")
    assert out.split() == [":4096:8"]


@pytest.mark.slow
def test_ray_workers_start_with_the_cublas_workspace_set() -> None:
    """Before any harness code runs in them: a reused worker may start CUDA in one trial
    and run a deterministic one next."""
    out = _python(
        "import os, ray\n"
        "from harness.ray_session import ray_session\n"
        "with ray_session():\n"
        "    f = ray.remote(lambda: os.environ.get('CUBLAS_WORKSPACE_CONFIG'))\n"
        "    print('worker', ray.get(f.remote()))\n"
        "print('driver', os.environ.get('CUBLAS_WORKSPACE_CONFIG'))\n"
    )
    assert "worker :4096:8" in out
    assert "driver None" in out  # the driver's environment is restored


# ------------------------------------------------------------------ 5. torch.compile


class GraphCounter:
    """A torch.compile backend: aot_eager (forward and backward traced, run eagerly), and
    a count of the graphs it was handed."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, graph_module, example_inputs, **kwargs):
        from torch._dynamo.backends.debugging import aot_eager

        self.graphs += 1
        return aot_eager(graph_module, example_inputs, **kwargs)


@pytest.mark.slow
def test_one_graph_per_mode_whatever_the_calls() -> None:
    """Short batches, another layout, float32 beside bf16, eval mode: two graphs, and every
    call's result is the model's own."""
    from harness.compiling import OneGraphPerMode

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))
    counter = GraphCounter()
    forward = OneGraphPerMode(model, counter)
    x = torch.randn(8, 3, 8, 8)
    for batch in (x, x, x[:3], x.transpose(2, 3).contiguous().transpose(2, 3)):
        forward(batch).sum().backward()
    model.eval()
    with torch.no_grad():
        for batch in (x, x[:5], x[..., :8, :8]):
            assert torch.allclose(forward(batch), model(batch), atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            forward(x)
    assert counter.graphs == 2
    assert list(forward.state_dict()) == [f"model.{k}" for k in model.state_dict()]


def _count_trial_graphs(monkeypatch, dataset, values: dict) -> tuple[int, dict]:
    import harness.compiling
    from harness.config import TrialConfig
    from harness.train import train

    torch._dynamo.reset()
    counter = GraphCounter()
    monkeypatch.setattr(harness.compiling, "COMPILE_BACKEND", counter)
    record = train(TrialConfig.from_dict({**values, "compile": True, "device": "cpu"}),
                   dataset=dataset)
    return counter.graphs, record


@pytest.mark.slow
def test_the_fastnet_recipe_compiles_two_graphs(monkeypatch, digits) -> None:
    """The recipe's short last batch, TTA's shifted views, the stem bias freezing after an
    epoch and eval mode: each was a recompile."""
    from harness.recipes import fastnet_recipe

    values = {**fastnet_recipe(64, 2.5), "dataset": "digits", "model.widths": "8,8,8",
              "model.whiten_bias_epochs": 1, "train_limit": 300, "test_limit": 150,
              "eval_batch_size": 128}
    graphs, record = _count_trial_graphs(monkeypatch, digits, values)
    assert record["status"] == "completed" and record["environment"]["compiled"] is True
    assert "test_acc_plain" in record["final"]  # TTA scored the last epoch
    assert graphs == 2


@pytest.mark.slow
def test_resnet_with_ldam_and_a_stop_check_compiles_two_graphs(monkeypatch, digits) -> None:
    """The normed head, LDAM's deferred reweighting, bf16 scoring beside the float32 stop
    check."""
    values = {"dataset": "digits", "model": "resnet32", "model.depth": 8, "model.base_width": 4,
              "model.normed_head": True, "loss": "ldam", "loss.drw_epoch": 1, "epochs": 3,
              "batch_size": 64, "train_limit": 300, "test_limit": 150, "eval_batch_size": 128,
              "precision": "bf16", "task.stop_at_train_acc": 1.0}
    graphs, record = _count_trial_graphs(monkeypatch, digits, values)
    assert record["status"] in ("completed", "fitted")
    assert graphs == 2


@pytest.mark.slow
def test_the_denoiser_compiles_two_graphs(monkeypatch) -> None:
    """Photographs scored whole are other shapes than the training crops."""
    from harness.data import load_dataset

    values = {"dataset": "photos", "task": "denoise", "model": "unet", "model.features": 8,
              "model.depth": 2, "model.head_features": 8, "epochs": 2, "batch_size": 16,
              "train_limit": 40, "test_limit": 8, "eval_batch_size": 16}
    graphs, record = _count_trial_graphs(monkeypatch, load_dataset("photos"), values)
    assert record["status"] == "completed"
    assert graphs == 2


# ------------------------------------------------------------------ 6. precision


def test_bf16_only_where_the_card_has_it() -> None:
    from harness.environment import resolve_precision

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_precision("auto", cuda, bf16_supported=True) == ("bf16", None)
    assert resolve_precision("auto", cpu) == ("float32", None)
    assert resolve_precision("fp32", cuda, bf16_supported=True) == ("float32", None)
    assert resolve_precision("bf16", cpu) == ("bf16", None)
    for asked in ("auto", "bf16"):
        used, note = resolve_precision(asked, cuda, bf16_supported=False)
        assert used == "float32" and f"precision={asked}" in note and "no native bf16" in note


def test_the_normed_head_runs_in_float32_under_bf16_autocast() -> None:
    from harness.models.resnet import NormedLinear

    torch.manual_seed(0)
    head, x = NormedLinear(64, 10), torch.randn(8, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(x)
    assert logits.dtype == torch.float32
    assert torch.equal(logits, head(x))


def test_tta_averages_in_float32() -> None:
    from harness.tasks.classify import tta_logits

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10)).eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for level in (1, 2):
            assert tta_logits(model, x, level).dtype == torch.float32
        views = [model(x).float(), model(x.flip(-1)).float()]
        assert torch.equal(tta_logits(model, x, 1), 0.5 * views[0] + 0.5 * views[1])


def test_the_loss_is_computed_outside_autocast() -> None:
    from harness.train import train_step

    model = torch.nn.Linear(6, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def loss_fn(outputs, targets):
        seen.append((torch.is_autocast_enabled("cpu"), outputs.dtype))
        return torch.nn.functional.cross_entropy(outputs, targets)

    train_step(model, loss_fn, optimizer, lambda: torch.autocast("cpu", dtype=torch.bfloat16),
               torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1]))
    assert seen == [(False, torch.float32)]


def test_the_stop_at_accuracy_check_is_judged_in_float32(digits) -> None:
    import contextlib

    from harness.config import TrialConfig
    from harness.models import create_model
    from harness.tasks import create_task

    config = TrialConfig.from_dict({"dataset": "digits", "model": "mlp", "train_limit": 300,
                                    "test_limit": 200, "device": "cpu",
                                    "task.stop_at_train_acc": 1.0})
    task = create_task(config, digits, torch.device("cpu"))
    torch.manual_seed(0)
    model = create_model("mlp", task.num_outputs, task.in_shape, hidden=(64,))
    bf16 = task.evaluate(model, lambda: torch.autocast("cpu", dtype=torch.bfloat16)).metrics
    exact = task.evaluate(model, contextlib.nullcontext).metrics
    assert bf16["test_loss"] != exact["test_loss"]  # the test split is scored in bf16
    assert bf16["true_train_loss"] == exact["true_train_loss"]
    assert bf16["true_train_acc"] == exact["true_train_acc"]


def test_a_report_that_pools_devices_says_so() -> None:
    """CPU and GPU trials of one config differ; the report's setup names every condition its
    tables pool, and says "mixed" when there is more than one."""
    import copy
    import json
    from pathlib import Path

    from harness.report.sections import setup_facts

    folder = Path(__file__).parent / "fixtures" / "records"
    old = [r for r in (json.loads(p.read_text()) for p in sorted(folder.glob("*.json")))
           if r["status"] == "completed"][:2]
    assert len(old) == 2
    assert "numbers from" not in dict(setup_facts(old, None))  # older records do not say
    conditions = {"device_kind": "cpu", "deterministic": False, "precision": "float32",
                  "precision_note": None, "compiled": False, "random_draws": "cpu"}
    cpu = copy.deepcopy(old)
    for record in cpu:
        record["environment"].update(conditions)
    said = dict(setup_facts(cpu, None))["numbers from"]
    assert said == ("cpu, float32, nondeterministic kernels, eager, random draws on cpu")
    cpu[1]["environment"].update(device_kind="cuda", precision="bf16", compiled=True)
    said = dict(setup_facts(cpu, None))["numbers from"]
    assert said.startswith("mixed") and "cuda, bf16" in said and "cpu, float32" in said
