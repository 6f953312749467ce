"""Trace one ``--set`` value from the command line to the optimizer, across processes.

    python tools/trace_option.py [--repo PATH] [--key lr --value 0.1] -- run imbalance --profile smoke

runs ``python -m harness.cli <args> --set KEY=VALUE`` from ``--repo`` (default: this
checkout) with a ``sitecustomize`` on the path that profiles every process it starts: the
driver and each Ray worker (a local Ray's workers inherit PYTHONPATH). On every return from
a function defined in the repo's ``harness`` package, the frame's locals are searched for
the value: a local named KEY, a mapping with KEY, an object with attribute KEY (a trial
config), a torch optimizer's param groups, or the text ``KEY=VALUE``. The first optimizer
seen holding it ends the trace (the run is stopped with SIGTERM, which the harness treats
as Ctrl-C): the path from the command line to the optimizer, not the run's end.

Prints the distinct modules and the stops (module:function) that saw the value, in order
of first sight, with how many times each was seen, and writes them as JSON (``--json``).
Why a profiler and not sys.settrace: only call/return events, so a traced run is a few
times slower, not tens.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SITECUSTOMIZE = r'''
import json, os, sys, threading
_OUT = os.environ["TRACE_OPTION_OUT"]
_KEY = os.environ["TRACE_OPTION_KEY"]
_VALUE = float(os.environ["TRACE_OPTION_VALUE"])
_ROOT = os.environ["TRACE_OPTION_ROOT"].rstrip("/") + "/harness/"
_seen = {}
_path = os.path.join(_OUT, f"trace-{os.getpid()}.jsonl")


def _is(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return abs(value - _VALUE) < 1e-12
    if isinstance(value, str):
        try:
            return abs(float(value) - _VALUE) < 1e-12
        except ValueError:
            return False
    return False


def _holds(value, depth=0):
    if depth > 3:
        return None
    if isinstance(value, str):
        return "text" if f"{_KEY}={os.environ['TRACE_OPTION_VALUE']}" in value else None
    if isinstance(value, dict):
        if _KEY in value and _is(value[_KEY]):
            return "mapping"
        for v in list(value.values())[:64]:
            if isinstance(v, (dict, list, tuple)) or hasattr(v, "__dict__"):
                found = _holds(v, depth + 1)
                if found:
                    return found
        return None
    if isinstance(value, (list, tuple)):
        for v in value[:64]:
            found = _holds(v, depth + 1)
            if found:
                return found
        return None
    if type(value).__module__.startswith(("harness", "argparse")) and hasattr(value, "__dict__"):
        found = _holds(dict(vars(value)), depth + 1)  # a plan, options, a namespace
        if found:
            return found
    groups = getattr(type(value), "param_groups", None) is None and getattr(value, "param_groups", None)
    if isinstance(groups, list) and any(isinstance(g, dict) and _is(g.get(_KEY)) for g in groups):
        return "optimizer"
    try:
        own = getattr(value, _KEY)
    except Exception:
        own = None
    if own is not None and not callable(own) and _is(own):
        return "attribute"
    return None


_open = set()  # frames already counted at their call: each frame is one stop


def _profile(frame, event, arg):
    if event not in ("call", "return"):
        return
    code = frame.f_code
    if not code.co_filename.startswith(_ROOT):
        return
    if event == "return" and id(frame) in _open:
        _open.discard(id(frame))
        return
    try:
        hows = {"local" if name == _KEY and _is(value) else _holds(value)
                for name, value in list(frame.f_locals.items())}
        hows.discard(None)
        how = "optimizer" if "optimizer" in hows else min(hows, default=None)
    except Exception:
        return
    if not how:
        return
    if event == "call":
        _open.add(id(frame))
    module = code.co_filename[len(_ROOT) - len("harness/"):-3].replace("/", ".")
    module = module.removesuffix(".__init__")
    stop = f"{module}:{code.co_qualname}"
    _seen[stop] = _seen.get(stop, 0) + 1
    with open(_path, "a") as out:
        out.write(json.dumps({"t": __import__("time").time(), "stop": stop, "how": how,
                              "pid": os.getpid()}) + "\n")
    if how == "optimizer":
        open(os.path.join(_OUT, "optimizer-seen"), "a").close()


sys.setprofile(_profile)
threading.setprofile(_profile)
'''


def trace(repo: Path, cli_args: list[str], key: str, value: str, timeout: float) -> list[dict]:
    """Run the CLI under the profiler; the events every process wrote, in time order."""
    with tempfile.TemporaryDirectory(prefix="trace-option-") as scratch:
        out, site = Path(scratch) / "out", Path(scratch) / "site"
        out.mkdir()
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env = {**os.environ, "TRACE_OPTION_OUT": str(out), "TRACE_OPTION_KEY": key,
               "TRACE_OPTION_VALUE": value, "TRACE_OPTION_ROOT": str(repo.resolve()),
               "PYTHONPATH": os.pathsep.join([str(site), str(repo.resolve())]),
               "HARNESS_RUNS": str(Path(scratch) / "runs"),
               "HARNESS_RESULTS": str(Path(scratch) / "results")}
        command = [sys.executable, "-m", "harness.cli", *cli_args, "--set", f"{key}={value}"]
        process = subprocess.Popen(command, cwd=scratch, env=env, start_new_session=True)
        started = time.monotonic()
        while process.poll() is None:
            if (out / "optimizer-seen").exists() or time.monotonic() - started > timeout:
                time.sleep(2)  # let the worker's next returns land
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
                break
            time.sleep(0.5)
        events = [json.loads(line) for path in sorted(out.glob("trace-*.jsonl"))
                  for line in path.read_text().splitlines() if line.strip()]
        if not (out / "optimizer-seen").exists():
            print("trace_option: warning: no optimizer was seen holding the value",
                  file=sys.stderr)
    return sorted(events, key=lambda e: e["t"])


def summarize(events: list[dict]) -> dict:
    """Distinct modules and stops, in order of first sight; the optimizer's stop ends it."""
    stops: dict[str, int] = {}
    for event in events:
        stops[event["stop"]] = stops.get(event["stop"], 0) + 1
        if event["how"] == "optimizer":
            break
    modules: dict[str, int] = {}
    for stop, count in stops.items():
        module = stop.split(":")[0]
        modules[module] = modules.get(module, 0) + count
    return {"modules": modules, "stops": stops, "frames": sum(stops.values()),
            "processes": len({e["pid"] for e in events})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--key", default="lr")
    parser.add_argument("--value", default="0.1")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("cli", nargs=argparse.REMAINDER, help="-- then the harness CLI arguments")
    args = parser.parse_args(argv)
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    if not cli:
        parser.error("give the harness command after --, e.g. -- run imbalance --profile smoke")
    summary = summarize(trace(args.repo, cli, args.key, args.value, args.timeout))
    print(f"{len(summary['modules'])} modules, {len(summary['stops'])} stops "
          f"({summary['frames']} frames, {summary['processes']} processes)")
    print("modules: " + ", ".join(f"{m} ({n})" for m, n in summary["modules"].items()))
    for stop, count in summary["stops"].items():
        print(f"  {stop}  x{count}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
