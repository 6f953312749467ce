"""Where trials run: a local Ray instance of our own, or an existing cluster.

Without an address a run always starts its own local instance (``address="local"``),
whatever else runs on the machine: a head left by ``ray start`` (or one killed by a
signal, which leaves /tmp/ray/ray_current_cluster behind) must not capture it. With
``RAY_ADDRESS`` or ``--ray-address`` it joins that cluster, failing fast and with the
cause when it cannot: nobody answers, no Ray head answers, or the head uses token
authentication and this client has no token. Since Ray 2.5x, ``ray.init()`` on a new
local instance turns token authentication on and writes ``~/.ray/auth_token``, and
``ray start --head`` turns it on whenever that file exists; a client that joins by address
sends a token only with ``RAY_AUTH_MODE=token``. Ray retries a refused client for about
30 s before it gives up, so one handshake first asks the head directly (``_refused``).

The environment variables that quiet Tune and bound Ray's connection retries are set for
the session only and restored after it, since they would change every later use of Ray
in the process (a notebook, a test).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import HarnessError
from harness.termination import is_ours

# Tune's defaults print a lot and write loggers we don't read.
RAY_QUIET_ENV = {
    "RAY_DEDUP_LOGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic CLIReporter table: trial status, epoch, metric
    # No CSV or TensorBoard files per trial; run_tuner adds the JSON logger back, which a
    # restored experiment needs to read its finished trials' last results.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Snapshotting the experiment at every checkpoint is what makes --resume exact; the
    # warning that it happens often is noise for short trials.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
TOKEN_HELP = (
    "set RAY_AUTH_MODE=token and give this machine the cluster's token (the head node's "
    "~/.ray/auth_token, which `ray get-auth-token` prints there: copy it to "
    "~/.ray/auth_token here, or pass it as RAY_AUTH_TOKEN or its file as "
    "RAY_AUTH_TOKEN_PATH); or start the head with RAY_AUTH_MODE=disabled on a trusted network"
)
_AUTH_MARKERS = ("InvalidAuthToken", "Unauthenticated", "AuthenticationError")


@contextlib.contextmanager
def restored_environment() -> Iterator[None]:
    """Whatever changes the environment inside (Ray itself sets RAY_AUTH_MODE when it
    starts a cluster) is undone on exit, so later subprocesses and Ray sessions of this
    process start from the user's environment."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def scoped_env(values: Mapping[str, str], override: bool = False) -> Iterator[None]:
    """Set environment variables (keeping a user's own unless ``override``) and restore
    the environment as it was afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if override or key not in os.environ:
                os.environ[key] = value
        yield
    finally:
        for key, before in saved.items():
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before


def quiet_ray_env() -> contextlib.AbstractContextManager[None]:
    return scoped_env(RAY_QUIET_ENV)


def check_resources(stage: Any, gpus_per_trial: float, custom: Mapping[str, float]) -> None:
    """A trial the cluster can never place would wait forever: say so before it starts."""
    import ray

    have = ray.cluster_resources()
    wanted = {"CPU": stage.cpus_per_trial, "GPU": gpus_per_trial, **custom}
    for name, want in wanted.items():
        if want > have.get(name, 0.0):
            hint = " (pass --gpus-per-trial 0 to train on CPUs)" if name == "GPU" else ""
            raise HarnessError(
                f"stage {stage.name!r} asks for {want:g} {name} per trial but the Ray "
                f"cluster has {have.get(name, 0.0):g}{hint}"
            )


def _host_port(address: str) -> tuple[str, int] | None:
    """host and port of "host:port" or "ray://host:port"; None for "auto" and the like."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        raise HarnessError(f"Ray address {address!r} has a bad port") from None
    if parts.hostname is None or port is None:
        return None
    return parts.hostname, port


def check_ray_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast on an address nobody answers: ray.init itself retries for minutes."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as error:
        raise HarnessError(
            f"cannot reach a Ray cluster at {address} ({error.strerror or error}); "
            "start one with `ray start --head`, or drop --ray-address / RAY_ADDRESS "
            "to run on a local Ray instance"
        ) from None


class _ConnectTimeout(BaseException):  # not Exception: ray.init retries those
    pass


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Ray's C++ core logs connection failures straight to file descriptor 2; catch them
    so the user sees one message naming the cause, not a screen of retries."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode(errors="replace").splitlines()


def _connect_error(address: str, error: BaseException, log: list[str]) -> HarnessError:
    text = f"{type(error).__name__}: {error}\n" + "\n".join(log)
    if any(marker in text for marker in _AUTH_MARKERS):
        mode = os.environ.get("RAY_AUTH_MODE", "not set")
        # Ray's own reason, without the help text its AuthenticationError appends.
        reason = str(getattr(error, "message", "")).strip().rstrip(".")
        return HarnessError(
            f"the Ray cluster at {address} uses token authentication and this client has no "
            f"valid token for it (RAY_AUTH_MODE is {mode}"
            + (f"; Ray: {reason[:200]}" if reason else "")
            + f"). Fix: {TOKEN_HELP}"
        )
    detail = next((line for line in reversed(log) if line.strip()), "")
    return HarnessError(
        f"cannot connect to Ray at {address}: {error}"
        + (f" ({detail.strip()[-300:]})" if detail else "")
    )


_HANDSHAKE = """
import os, sys
from ray._raylet import GcsClient  # Ray's own client of the head (GCS)
from ray.exceptions import AuthenticationError
try:
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        # No token at all aborts the process inside GcsClient: check for one first
        # (ray.init does the same check before it connects).
        from ray._private.authentication.authentication_token_setup import (
            ensure_token_if_auth_enabled,
        )
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
    GcsClient(address=sys.argv[1])
except AuthenticationError as error:
    print("REFUSED " + str(getattr(error, "message", error)).replace(chr(10), " "))
"""


class _Refusal(Exception):
    """The head refused this client's token (Ray's AuthenticationError, from the probe)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"AuthenticationError: {message}")
        self.message = message


def _refused(address: str, wait: float = 3.0) -> BaseException | None:
    """The head's answer to one handshake, when it refuses this client's token.

    ray.init retries a refused client for about 30 s (its GCS connection loop treats every
    error alike); a head answers a handshake in milliseconds, so ask it once, in a child
    process bounded by ``wait``: one killed cleanly when the address is silent, where a
    thread in this process would leave Ray's C++ client logging, and crashing at exit,
    after the error was reported. Success, silence and every other error are left to
    ray.init.
    """
    if "://" in address or _host_port(address) is None:
        return None  # ray:// (Ray Client) and "auto" connect differently
    try:
        answer = subprocess.run([sys.executable, "-c", _HANDSHAKE, address],
                                capture_output=True, text=True, timeout=wait)
    except subprocess.TimeoutExpired:
        return None
    for line in answer.stdout.splitlines():
        if line.startswith("REFUSED "):
            return _Refusal(line.removeprefix("REFUSED ").strip())
    return None


def _init_within(timeout: float, **kwargs: Any) -> None:
    """ray.init against an address, bounded: against a port that answers but is no Ray
    head it retries for minutes. SIGALRM interrupts it on the main thread (Ray's own signal
    handlers need that thread); elsewhere a daemon thread runs it and is abandoned on
    timeout."""
    import ray

    address = kwargs.get("address")
    expired = HarnessError(
        f"Ray at {address} did not answer within {timeout:g}s (HARNESS_RAY_CONNECT_TIMEOUT); "
        "is it the head node of a Ray cluster of the same Ray version?"
    )
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):

        def expire(_signum: int, _frame: Any) -> None:
            raise _ConnectTimeout

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        failure: BaseException | None = None
        with _captured_stderr() as log:
            try:
                refused = _refused(str(address), min(timeout, 3.0))
                if refused is not None:
                    raise refused
                ray.init(**kwargs)
            except _ConnectTimeout:
                failure = expired
            except Exception as error:
                failure = error
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        if failure is expired:
            auth = _connect_error(str(address), failure, log)
            raise auth if "token" in str(auth) else expired
        if failure is not None:
            raise _connect_error(str(address), failure, log) from None
        return

    errors: list[BaseException] = []

    def connect() -> None:
        try:
            refused = _refused(str(address), min(timeout, 3.0))
            if refused is not None:
                raise refused
            ray.init(**kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            errors.append(error)

    thread = threading.Thread(target=connect, daemon=True, name="ray-init")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise expired
    if errors:
        raise _connect_error(str(address), errors[0], [])


@contextlib.contextmanager
def _without_worker_death_notices() -> Iterator[None]:
    """The driver prints each error the cluster publishes as "(raylet) ..." on stdout; a
    trial's worker that dies publishes one, and the trial's own harness line says it
    (harness.tune, with Tune's retry). Every other error is still printed."""
    from ray._private import worker

    original = getattr(worker, "print_to_stdstream", None)
    if original is None:  # another Ray version: its notices stay
        yield
        return

    def printed(data: dict, ignore_prefix: bool) -> None:
        lines = data.get("lines") or []
        if data.get("pid") == "raylet" and any("A worker died or was killed" in str(line)
                                               for line in lines):
            return
        original(data, ignore_prefix)

    worker.print_to_stdstream = printed
    try:
        yield
    finally:
        worker.print_to_stdstream = original


@contextlib.contextmanager
def ray_session(address: str | None = None, record_in: Path | None = None) -> Iterator[str]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start a local Ray; stop what we started.

    Yields a short description of where trials run. A Ray already initialised in this
    process (a test fixture, a notebook) is used as it is and left running. With
    ``record_in`` (the runs folder), a local instance's processes are recorded there while
    it runs, so that the next run ends them if this one is killed (harness.ray_leftovers).
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    timeout = float(os.environ.get("HARNESS_RAY_CONNECT_TIMEOUT", "60"))
    # WORKER_ENV (cuBLAS's workspace) must be in a worker's environment before CUDA starts:
    # a local Ray's workers inherit it from here, a cluster's get it as the job's env_vars.
    from harness.environment import WORKER_ENV

    env = {**RAY_QUIET_ENV, **WORKER_ENV}
    if address:
        # Ray waits for a GCS in C++ calls (30 s and 5 s by default, read from the
        # environment when Ray starts its client) that hold off the alarm in
        # _init_within: shorten them to a timeout set lower than that.
        env["RAY_py_gcs_connect_timeout_s"] = str(max(1, min(30, int(timeout))))
        env["RAY_gcs_rpc_server_connect_timeout_s"] = str(max(1, min(5, int(timeout))))
    with restored_environment(), scoped_env(env), contextlib.ExitStack() as recording:
        import ray

        if ray.is_initialized():
            yield "the Ray instance already running in this process"
            return
        # ray.init sets a SIGTERM handler that calls sys.exit wherever the main thread is;
        # one of ours (harness.termination: stop as Ctrl-C does) is put back after it.
        sigterm = signal.getsignal(signal.SIGTERM)
        if address:
            check_ray_address(address)
            _init_within(timeout, address=address, logging_level=logging.WARNING,
                         log_to_driver=False,
                         runtime_env={"env_vars": {k: os.environ[k] for k in WORKER_ENV}})
            where = f"the Ray cluster at {address}"
        else:
            # "local": always a fresh instance of our own, even when RAY_ADDRESS-less
            # ray.init would join a head started earlier on this machine. Its notice that
            # token authentication is on (Ray's default) is for cluster operators, not for
            # a run that starts and stops its own instance.
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
                logging.ERROR)
            ray.init(
                address="local",
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            where = f"a local Ray instance ({os.cpu_count()} CPUs)"
        if is_ours(sigterm) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)
        if not address and record_in is not None:
            from harness.ray_leftovers import recorded_instance

            # Entered after ray.init, left after ray.shutdown: the record lives while
            # the instance does.
            recording.enter_context(recorded_instance(record_in))
        try:
            with _without_worker_death_notices():
                yield where
        finally:
            ray.shutdown()
