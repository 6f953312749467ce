"""Claims registered before the run: what ``harness run`` writes before any trial, and the
``Judging`` a verdict is read under afterwards.

Before its first trial, ``harness run`` writes the study's claims (statement, effect,
kind, threshold, n, gate: ``Claim.registration``) and their SHA-256 into
``runs/ray/<study>-<profile>/registration.json``, and the time its first trial started;
the run's results carry the same under ``registration`` in
``results/<study>/<profile>/run.json``, committed with the records. A verdict is then
judged under the claims its records were run with: a claim that changed since (n raised
included), a registration whose hash does not match its claims, or records with no
registration at all read *post hoc* (``harness.evidence.registration_status``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.evidence import Claim, Judging
from harness.files import write_json_atomic

REGISTRATION_FILE = "registration.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def claim_n(claim: Claim, profile: Any) -> int | None:
    """The seeds a profile gives the claim: the repeats of the stage it reads (its
    ``stage``), or the most any stage of the profile runs when it names none."""
    stages = list(profile.stages)
    named = [s for s in stages if s.name == claim.stage] if claim.stage else stages
    return max((int(s.repeats) for s in named), default=None)


def claim_entries(study: Any, profile_name: str) -> dict[str, dict[str, Any]]:
    """Claim name -> what is registered for it at this profile, as the study file says now."""
    profile = study.profile(profile_name)
    return {c.name: c.registration(claim_n(c, profile)) for c in study.claims}


def claims_hash(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """SHA-256 of the registered claims, canonical JSON (sorted keys)."""
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def register(study: Any, profile_name: str, state_dir: Path, resume: bool) -> dict[str, Any]:
    """Write the claims and their hash before any trial runs; a resumed run keeps the
    registration its first start wrote (its kept records were run under that one)."""
    path = state_dir / REGISTRATION_FILE
    if resume and path.is_file():
        return json.loads(path.read_text())
    entries = claim_entries(study, profile_name)
    registration = {"claims": entries, "hash": claims_hash(entries), "registered_at": _now()}
    write_json_atomic(path, registration)
    return registration


def mark_first_trial(state_dir: Path) -> dict[str, Any] | None:
    """Record when the run's first trial started (once: a resumed run keeps the first)."""
    path = state_dir / REGISTRATION_FILE
    if not path.is_file():
        return None
    registration = json.loads(path.read_text())
    if "first_trial_at" not in registration:
        registration["first_trial_at"] = _now()
        write_json_atomic(path, registration)
    return registration


def read_registration(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / REGISTRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def judging_for(study: Any, profile: str, records: list[dict[str, Any]],
                run: Mapping[str, Any] | None, needed: Mapping[str, int] | None = None,
                pilot: str = "") -> Judging:
    """The ``Judging`` of a study's records at ``profile``: their scale, the claims they
    were registered with (``run``: their run.json), the claims as they stand now, and the
    seeds the pilot says each claim needs."""
    from harness.scope import scale_text

    registration = (run or {}).get("registration")
    scopes = {c.name: scale_text([r for r in records if r.get("stage") == c.stage], profile)
              for c in study.claims if c.stage and any(r.get("stage") == c.stage
                                                       for r in records)}
    current = claim_entries(study, profile) if profile in study.profiles else {}
    unregistered, first = "", ""
    if registration is None and study.pilot is not None and study.pilot.profile == profile:
        unregistered = ("its records carry no registration: they are the study's pilot, made "
                        "before `harness run` registered claims (their history is under "
                        "Registration), and size later runs rather than judge the claim")
        first = study.pilot.first_record
    if registration is None:
        return Judging(scope=scale_text(records, profile), scopes=scopes, registered=None,
                       current=current, first_record=first,
                       unregistered=unregistered, needed=dict(needed or {}), pilot=pilot)
    claims = registration.get("claims") or {}
    problem = ""
    if registration.get("hash") != claims_hash(claims):
        problem = "the registration's hash does not match the claims it lists (edited after " \
                  "its run)"
    return Judging(scope=scale_text(records, profile), scopes=scopes, registered=claims,
                   registered_at=str(registration.get("registered_at", "")),
                   first_record=str(registration.get("first_trial_at", "")),
                   registration_problem=problem, current=current,
                   needed=dict(needed or {}), pilot=pilot)
