"""The capacity plan's scaling estimate: resource use per user at the passing steps of a capacity run, the
resources the declared peak needs, and the replicas of one replica's limits that hold them. An estimate
with its assumptions stated, never a gate.

The resource use comes from the threshold file's resource source (``load.resources``): Prometheus over each
passing step's measured window (:mod:`loadgate.sources.step_use`), else this machine's local samples in
resources.parquet (taken once a second whenever the target is on loopback) converted to cores and bytes
with the machine's size recorded in capacity.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from loadgate.analysis import plan as calc
from loadgate.data import resources as resource_store
from loadgate.errors import LoadgateError
from loadgate.gate.plan_settings import CapacitySettings
from loadgate.gate.resources import ResourceSettings
from loadgate.sources.step_use import step_use

LINEAR = "the cost of a user is linear below the knee: a fixed part plus a cost per user, from the passing steps"
EVEN = "replicas share the load evenly and add no cost of their own (no coordination, caches, or databases)"


def _passing(capacity: Mapping) -> list[Mapping]:
    return [s for s in capacity.get("steps") or () if s.get("status") == "pass" and s.get("start") is not None]


def local_use(run_dir: str, capacity: Mapping) -> list[dict]:
    """Each passing step's mean CPU (cores) and memory (bytes) of this machine, from the local samples in
    resources.parquet and the machine's size recorded in capacity.json."""
    machine = capacity.get("machine") or {}
    cores, total = machine.get("cpu_cores"), machine.get("memory_bytes")
    rows = [r for r in resource_store.read_rows(run_dir) if r[1] == "local" and r[2] in ("cpu", "memory")]
    out = []
    for s in _passing(capacity):
        got = {}
        for metric, size in (("cpu", cores), ("memory", total)):
            vals = [r[5] for r in rows if r[2] == metric and s["start"] <= r[0] <= s["end"]]
            got[metric] = sum(vals) / len(vals) / 100 * size if vals and size else None
        out.append(
            {
                "users": s["users"],
                "throughput": s.get("throughput"),
                "cpu_cores": got["cpu"],
                "memory_bytes": got["memory"],
            }
        )
    return out


def _prometheus_use(capacity: Mapping, res: ResourceSettings) -> tuple[list[dict], dict, str | None]:
    steps = _passing(capacity)
    try:
        use, machine = step_use(res.prometheus or "", res.selector, [(s["start"], s["end"]) for s in steps], res.step)
    except LoadgateError as e:
        return [], {}, f"Prometheus at {_public(res.prometheus)} could not be asked ({e})"
    return [{"users": s["users"], "throughput": s.get("throughput"), **u} for s, u in zip(steps, use)], machine, None


def _public(url: str | None) -> str:
    """The server's URL without a user or password in it (the plan is written into the run directory)."""
    parts = urlsplit(url or "")
    if not parts.hostname:
        return url or ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def _n(v: float | None) -> str:
    return "?" if v is None else f"{v:g}"


def _gib(v: float | None) -> str:
    return "?" if v is None else f"{v / 2**30:.1f} GiB"


def scaling(
    run_dir: str, capacity: Mapping, settings: CapacitySettings, res: ResourceSettings | None, kind: str, run_id: str
) -> dict:
    """The estimate (JSON-ready): per-step use, cost per user, needs at the peak, replicas, assumptions."""
    basis = "users" if kind == "users" else "throughput"
    if res is not None and res.source == "prometheus" and res.prometheus:
        steps, machine, why = _prometheus_use(capacity, res)
        where = (
            f"measured by Prometheus at {_public(res.prometheus)} over each step's window (selector "
            f"{res.selector or 'none'}: {_n(machine.get('cpu_cores'))} CPUs, {_gib(machine.get('memory_bytes'))}); "
            "the use of everything those series cover"
        )
        source = "prometheus"
    else:
        steps, why = local_use(run_dir, capacity), None
        machine = capacity.get("machine") or {}
        where = (
            f"measured on this machine ({machine.get('cpu_cores')} cores, {_gib(machine.get('memory_bytes'))}), "
            "sampled locally once a second: it includes the load generator and anything else running there, "
            "so it overstates the target's own use"
        )
        source = "local"
    out: dict = {
        "run": run_id,
        "basis": basis,
        "steps": steps,
        "assumptions": [LINEAR, where, EVEN],
        "source": source,
        "limits": settings.limits_text,
    }
    if why or not any(s["cpu_cores"] is not None or s["memory_bytes"] is not None for s in steps):
        out["reason"] = why or (
            f"no {source} resource samples in the passing steps ("
            + (
                "the target was not on loopback, or no step passed)"
                if source == "local"
                else "no step passed, or no points)"
            )
        )
        return out
    xs = [s[basis] for s in steps]
    peak = settings.peak.value if settings.peak else None
    needs = {}
    for metric, key in (("cpu", "cpu_cores"), ("memory", "memory_bytes")):
        cost = calc.linear_cost(xs, [s[key] for s in steps])
        at_peak = None if cost is None or peak is None else cost.at(peak)
        needs[metric] = at_peak
        out[metric] = (
            None
            if cost is None
            else {"fixed": cost.fixed, "per_user": cost.per_unit, "steps": cost.points, "at_peak": at_peak}
        )
    out["replicas"], out["decided_by"] = calc.replicas(
        needs["cpu"], needs["memory"], settings.cpu_limit, settings.memory_limit
    )
    return out
