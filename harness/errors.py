"""Errors a user can cause and fix; the CLI prints them as one message, no traceback.
Warnings of our own print as one clean line too (``harness: warning: ...``), not Python's
default "file:line: UserWarning" followed by the source line that raised it.
"""

import warnings


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


class HarnessWarning(UserWarning):
    """Something a user should know (e.g. data that is not the documented copy)."""


def warn(message: str) -> None:
    warnings.warn(HarnessWarning(message), stacklevel=2)


_python_format = warnings.formatwarning


def _format(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    if isinstance(category, type) and issubclass(category, HarnessWarning):
        return f"harness: warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


# Only our own category is reformatted; every other warning keeps Python's format.
warnings.formatwarning = _format
