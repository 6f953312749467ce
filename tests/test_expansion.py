"""harness.expansion: one way from a study's stage to its trials' configs."""

from __future__ import annotations

import pytest

from harness import expansion
from harness.config import TrialConfig
from harness.errors import ConfigError
from harness.expansion import (
    POINT_KEY,
    build_trial,
    check_profile,
    resolve_space,
    sample_points,
    trial_from_tune,
    trial_payload,
)
from harness.space import grid, variants
from harness.study import Profile, Stage

SPACE = {
    "dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64,
    "lr": grid(0.05, 0.1),
    "variant": variants({"label": "wide", "model.hidden": "64"},
                        {"label": "narrow", "model.hidden": "16", "lr": 0.2}),
}


def test_a_trial_built_on_the_driver_reaches_the_worker_as_the_same_config() -> None:
    for point in sample_points(SPACE):
        spec = build_trial(point, "train")
        payload = trial_payload(spec, point, ["lr"])
        assert isinstance(payload["config"], dict)  # data, not a config object
        worker = trial_from_tune({POINT_KEY: payload}, "train")
        assert worker.config == spec.config
        assert worker.config.config_hash() == spec.config.config_hash()
        assert worker.label == spec.label
        assert payload["shown"] == {"lr": point["lr"]}


def test_a_point_a_searcher_suggests_is_built_by_the_same_function() -> None:
    point = sample_points(SPACE)[0]
    assert trial_from_tune(point, "train") == build_trial(point, "train")


def test_an_override_is_a_constant_everywhere_variants_included() -> None:
    stage = Stage("sweep", SPACE)
    space = resolve_space(stage, {"lr": 0.3})
    configs = [build_trial(p, "train").config for p in sample_points(space)]
    assert {c.lr for c in configs} == {0.3}  # the narrow variant's own lr is overridden too


def test_check_profile_types_the_overrides_and_builds_each_point_once(monkeypatch) -> None:
    stage = Stage("sweep", SPACE)
    profile = Profile("quick", "a test", (stage,))
    built = []
    original = TrialConfig.from_dict.__func__

    def counting(cls, values):  # noqa: ANN001, ANN202
        built.append(dict(values))
        return original(cls, values)

    monkeypatch.setattr(TrialConfig, "from_dict", classmethod(counting))
    # The model-fits check builds a config per model shape, memoized across tests: not
    # counted here, so the count does not depend on which tests ran before.
    monkeypatch.setattr(expansion, "_build_on_meta", lambda *args: None)
    typed = check_profile(profile, {"lr": "0.3", "epochs": "3"})
    assert typed == {"lr": 0.3, "epochs": 3}
    # lr=0.3 collapses the lr grid: two points (the variants), each built once, not once
    # to type the overrides and again to validate (which made four).
    points = sample_points(resolve_space(stage, {"lr": 0.3, "epochs": 3}))
    assert len(points) == 2
    assert len(built) == len(points)


def test_a_bad_override_names_the_set_and_the_stage() -> None:
    profile = Profile("quick", "a test", (Stage("sweep", SPACE),))
    with pytest.raises(ConfigError, match=r"--set \(stage 'sweep'\): .*widht"):
        check_profile(profile, {"widht": "3"})


def test_the_trial_kinds_are_real_imports() -> None:
    from harness.theory.trial import CheckConfig, run_check
    from harness.train import train
    from harness.trials import trial_kind

    assert trial_kind("train").config_class() is TrialConfig
    assert trial_kind("train").run_function() is train
    assert trial_kind("check").config_class() is CheckConfig
    assert trial_kind("check").run_function() is run_check


def test_tune_points_are_the_trials_tune_runs_in_its_order() -> None:
    pytest.importorskip("ray.tune")
    from ray.tune.search import BasicVariantGenerator

    from harness.expansion import param_space, tune_points
    from harness.space import uniform

    stage = Stage("random", {**SPACE, "lr": uniform(0.01, 0.1)}, num_samples=3, repeats=2,
                  searcher="random", searcher_seed=7)
    def trainable(config):  # noqa: ANN001, ANN202 - never run: only its trials are listed
        return None

    generator = BasicVariantGenerator(random_state=stage.searcher_seed)
    generator.add_configurations({"trials": {
        "run": trainable, "config": param_space(stage, stage.space),
        "num_samples": stage.num_samples}})
    tune_order = []
    while (trial := generator.next_trial()) is not None:
        tune_order.append(trial.config)
    assert tune_points(stage, stage.space) == tune_order
