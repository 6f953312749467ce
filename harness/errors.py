"""Errors a user can cause and fix; the CLI prints them as one message, no traceback.
Warnings of our own print as one clean line too (``harness: warning: ...``), not Python's
default "file:line: UserWarning" followed by the source line that raised it.
"""

import warnings

# What `harness` exits with; the README and `harness --help` show this table, and a test
# checks that every exit_code in the package is in it.
INTERRUPTED_EXIT = 130
EXIT_CODES: dict[int, str] = {
    0: "success",
    2: "bad input: an unknown name, a bad value or option, an unwritable folder, a Ray "
       "cluster that does not answer or refuses this client, a --resume whose stage changed",
    3: "data missing, corrupt or unreadable, the MLflow store included",
    4: "some trials failed even after their retries (fix the cause, then --resume)",
    5: "no trial finished (all diverged or stopped): records written, no tables",
    6: "a write failed on the file system (disk full, quota, read-only, I/O error): the "
       "message names the folder and the free space; what was there before is kept",
    7: "--resume with nothing to resume (no earlier run of the study and profile in the "
       "runs folder): run without --resume to start it",
    8: "another run of the same study and profile holds the runs folder's lock (the "
       "message names its pid and start time)",
    10: "harness reproduce: a re-trained record's numbers differ from the committed ones",
    11: "harness reproduce: a committed record's config no longer builds (an option renamed "
        "or removed) or builds another trial (another config hash or seed)",
    129: "stopped by SIGHUP (the terminal closed): the state is kept, continue with --resume",
    INTERRUPTED_EXIT: "interrupted (Ctrl-C): the state is kept, continue with --resume",
    143: "stopped by SIGTERM (a cluster scheduler, timeout, kill): the state is kept, continue "
         "with --resume",
}


def exit_codes_text() -> str:
    """The exit-code table as `harness --help` prints it."""
    import textwrap

    return "exit codes:\n" + "\n".join(
        textwrap.fill(meaning, 79, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
        for code, meaning in EXIT_CODES.items()
    )


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
