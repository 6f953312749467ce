"""Errors a user can cause and fix; the CLI prints them as one message, no traceback."""


class HarnessError(Exception):
    """An expected failure with a message that says what was wrong and how to fix it."""

    exit_code = 2


class ConfigError(HarnessError):
    """A configuration key, type or value is not valid."""


class DataError(HarnessError):
    """Data is missing, corrupt or unreadable."""

    exit_code = 3


class RegistryError(HarnessError):
    """A name is not in a registry (model, loss, dataset, study)."""


def require(condition: bool, message: str) -> None:
    """Raise a ConfigError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)
