"""The trial config rejects bad input before any work and hashes what a trial computes."""

import pytest

from harness.config import TrialConfig, parse_overrides
from harness.errors import ConfigError


def test_strings_from_the_command_line_are_coerced_to_field_types():
    config = TrialConfig.from_dict(
        parse_overrides(["epochs=3", "lr=0.2", "nesterov=true", "milestones=2,4", "model.hidden=32,16"])
        | {"epochs": "6"}
    )
    assert config.epochs == 6 and config.lr == 0.2 and config.nesterov is True
    assert config.milestones == (2, 4)
    assert config.model_options["hidden"] == (32, 16)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as error:
        TrialConfig.from_dict({"learning_rate": 0.1})
    message = str(error.value)
    assert "learning_rate" in message and "lr" in message and "model.<option>" in message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("epochs", 0, "epochs must be >= 1"),
        ("lr", -1, "lr must be > 0"),
        ("epochs", "ten", "must be an integer"),
        ("label_noise", 1.5, "label_noise must be in [0, 1]"),
        ("optimizer", "adam", "optimizer must be one of"),
        ("imbalance_factor", 0.5, "imbalance_factor must be >= 1"),
        ("model", "resnet1000", "model must be one of"),
        ("loss", "hinge", "loss must be one of"),
        ("nesterov", "maybe", "true or false"),
    ],
)
def test_bad_values_are_rejected(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        TrialConfig.from_dict({key: value})


def test_unknown_model_option_names_valid_options():
    with pytest.raises(ConfigError) as error:
        TrialConfig.from_dict({"model": "mlp", "model.depth": 3})
    assert "model.hidden" in str(error.value)


def test_multistep_needs_milestones_inside_training():
    with pytest.raises(ConfigError, match="milestones"):
        TrialConfig.from_dict({"schedule": "multistep"})
    with pytest.raises(ConfigError, match="milestones"):
        TrialConfig.from_dict({"schedule": "multistep", "epochs": 5, "milestones": "3,9"})


def test_config_is_frozen():
    config = TrialConfig.from_dict({})
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.model_options["hidden"] = (1,)  # type: ignore[index]


def test_seed_depends_on_config_and_repeat_but_not_on_runtime_keys():
    base = TrialConfig.from_dict({"lr": 0.1})
    assert base.derived_seed() == TrialConfig.from_dict({"lr": 0.1}).derived_seed()
    assert base.derived_seed() != base.replace(lr=0.2).derived_seed()
    assert base.derived_seed() != base.replace(repeat=1).derived_seed()
    # The config hash groups seeds of one cell; the device does not change what is computed.
    assert base.config_hash() == base.replace(repeat=1).config_hash()
    assert base.derived_seed() == base.replace(device="cpu", compile=True).derived_seed()


def test_round_trip_through_the_flat_form():
    config = TrialConfig.from_dict({"model": "mlp", "model.hidden": (8,), "loss": "focal", "loss.gamma": 2.0})
    assert TrialConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["loss.gamma"] == 2.0


def test_override_needs_key_value():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])
