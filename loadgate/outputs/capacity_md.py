"""capacity.md: the capacity plan of a ``loadgate capacity`` run as Markdown, beside capacity.json.

Three sections, as a capacity-planning template asks: Current State (capacity, headroom, resource use,
the earlier releases and their trend), Future Requirements (peak, growth, runway) and Scaling (resources
and replicas for the peak). Every figure says which run it comes from. The figures are the plan's
(capacity.json ``planning``, :func:`loadgate.history.plan.build_plan`); nothing is computed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

FILE = "capacity.md"


def _cell(text: Any) -> str:
    """Text for a Markdown table cell or inline code: no pipe, backtick or line break can break the layout."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ").replace("\r", " ")


def _date(t: float | None, with_time: bool = False) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def _pct(v: float | None, signed: bool = False) -> str:
    return "-" if v is None else f"{v * 100:+.1f}%" if signed else f"{v * 100:.1f}%"


def _n(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _run(run_id: str) -> str:
    return f"(run `{_cell(run_id)}`)"


def _capacity(plan: Mapping) -> str:
    cap, unit = plan["capacity"], plan["unit"]
    if cap["value"] is None:
        return "no capacity: no step passed, or the search was inconclusive"
    text = ("at least " if cap["at_least"] else "") + f"**{_n(cap['value'], 0 if unit == 'users' else 1)} {unit}**"
    if cap["upper"] is not None:
        text += f" (the next step, {_n(cap['upper'], 0 if unit == 'users' else 1)} {unit}, did not pass)"
    return text


def current_state(plan: Mapping) -> list[str]:
    rid, cap = plan["run_id"], plan["capacity"]
    out = ["## Current State", "", f"- Capacity: {_capacity(plan)} {_run(rid)}"]
    if cap.get("broke_first"):
        out.append(f"- What broke first: {_cell(cap['broke_first'])} {_run(rid)}")
    if cap.get("throughput_at_max") is not None:
        out.append(f"- Throughput at capacity: {_n(cap['throughput_at_max'], 1)} req/s {_run(rid)}")
    knee = cap.get("knee")
    at = (
        f"{_n(knee['rate'], 1)} iterations/s offered"
        if knee and "rate" in knee
        else f"{_n(knee['users'])} users"
        if knee
        else ""
    )
    out.append(
        "- Knee (throughput stops growing): "
        + (f"≈ {at}, {_n(knee['throughput'], 1)} req/s {_run(rid)}" if knee else f"not reached {_run(rid)}")
    )
    h = plan.get("headroom")
    if h:
        iv = h.get("interval")
        out.append(
            f"- Headroom against the peak: **{_pct(h['value'])}**"
            + (f" (between {_pct(iv[0])} and {_pct(iv[1])} by the steps that bracket the capacity)" if iv else "")
            + f"; target {h['target'] or '-'}, alert {h['alert'] or '-'}: **{h['status']}** {_run(rid)}"
        )
    steps = (plan.get("scaling") or {}).get("steps") or []
    if any(s.get("cpu_cores") is not None for s in steps):
        out += [
            "",
            f"Resource usage at the passing steps ({(plan.get('scaling') or {}).get('source')}) {_run(rid)}:",
            "",
            "| users | req/s | CPU (cores) | memory (MiB) |",
            "|---:|---:|---:|---:|",
        ]
        out += [
            f"| {s['users']} | {_n(s['throughput'], 1)} | {_n(s['cpu_cores'], 3)} | "
            f"{_n(None if s['memory_bytes'] is None else s['memory_bytes'] / 2**20, 1)} |"
            for s in steps
        ]
    out += [
        "",
        "Capacity of each release (the baseline and its trend):",
        "",
        f"| release | dated | run | commit | capacity ({plan['unit']}) | verdict |",
        "|---|---|---|---|---:|---|",
    ]
    for r in plan["history"]:
        value = "-" if r["capacity"] is None else ("≥ " if r["at_least"] else "") + _n(r["capacity"], 1)
        out.append(
            f"| {_cell(r['release'])} | {_date(r['dated'])} | `{_cell(r['run_id'])}`"
            f"{' (this run)' if r.get('current') else ''} | `{_cell((r['commit'] or '-')[:12])}` | {value} "
            f"| {_cell(r['verdict'])} |"
        )
    t = plan["trend"]
    out.append("")
    if t.get("monthly") is None:
        out.append(f"- Trend: none yet: {t['reason']}.")
    else:
        out.append(
            f"- Trend: **{_pct(t['monthly'], True)} a month** ({t['method']}, {t['n']} runs: "
            + ", ".join(f"`{_cell(r)}`" for r in t["runs"])
            + "; R² "
            + ("-" if t["r2"] is None else f"{t['r2']:.3f}")
            + "). Fitted: "
            + ", ".join(f"{_n(f['value'], 1)} on {_date(f['dated'])}" for f in t["fitted"])
            + "."
        )
    reg = plan.get("regression")
    if reg:
        out.append(_regression(reg))
    return out


def _regression(reg: Mapping) -> str:
    if reg["status"] == "skipped":
        return "- Regression: no earlier passing capacity run to compare with."
    iv = reg.get("interval")
    head = "**REGRESSION**: capacity fell" if reg["status"] == "fail" else "No regression: capacity changed"
    text = (
        f"- {head} {_pct(reg['change'], True)}"
        + (f" (between {_pct(iv[0], True)} and {_pct(iv[1], True)} at the ends of both brackets)" if iv else "")
        + f" from {_n(reg['baseline_users'])} users {_run(reg['baseline_run'] or '-')}, tolerance "
        f"{reg['tolerance']} {_run(reg['run'])}."
    )
    if reg.get("commit_range"):
        text += f" Commits between: `{_cell(reg['commit_range'])}`"
        commits = reg.get("commits")
        text += (
            (
                ":"
                + "".join(
                    f"\n  - `{_cell(str(c.get('commit', ''))[:12])}` {_cell(c.get('subject', ''))}" for c in commits
                )
            )
            if commits
            else " (`git log` of that range lists them)."
        )
    return text


def future_requirements(plan: Mapping) -> list[str]:
    out = ["## Future Requirements", ""]
    peak, growth, way = plan.get("peak"), plan.get("growth") or {}, plan.get("runway")
    if peak is None:
        return out + [
            "No peak declared: add `capacity: {peak: {users: N}}` (or `{rate: N/s}`) to the threshold "
            "file to plan against it."
        ]
    out.append(f"- Peak: **{peak['text']}** (declared in `{_cell(peak['source'])}`)")
    out.append(
        f"- Growth of the peak: **{_pct(growth['monthly'], True)} a month** ({growth['text']}, {growth['source']})"
        if growth.get("monthly") is not None
        else "- Growth of the peak: none declared (`capacity: {growth: 8%/month}`); the runway below comes from "
        "the capacity's trend alone"
    )
    if way is None:
        return out + ["- Runway: no capacity to project from."]
    basis = (
        f"from the capacity of run `{_cell(way['from'])}`, the peak growing {_pct(way['growth'], True)} and "
        f"the capacity {_pct(way['trend'], True)} a month"
    )
    out.append(f"- Runway: the peak meets the capacity {_when(way['capacity'])} ({basis})")
    if way.get("alert"):
        out.append(f"- Headroom reaches its alert level ({_pct(way['alert']['level'])}) {_when(way['alert'])}")
    return out


def _when(w: Mapping) -> str:
    if w["already"]:
        return "**already**"
    if w["never"]:
        return "**never** at these rates (the capacity grows at least as fast as the peak)"
    return f"on **{_date(w['date'])}** (in {w['months']:.1f} months)"


def scaling(plan: Mapping) -> list[str]:
    s = plan.get("scaling") or {}
    out = ["## Scaling", "", f"An estimate, not a gate {_run(s.get('run', plan['run_id']))}."]
    if s.get("reason"):
        return out + ["", f"No estimate: {s['reason']}."]
    per = "user" if s["basis"] == "users" else "req/s"
    for metric, unit, scale, digits in (("cpu", "cores", 1, 4), ("memory", "MiB", 2**20, 2)):
        c = s.get(metric)
        if c:
            how = (
                f"a line fitted over {c['steps']} passing steps"
                if c["steps"] > 1
                else "the use at the highest passing step counted per user, an upper bound: the use did not rise "
                "with the users clearly enough to fit a line"
            )
            out.append(
                f"- {metric.upper() if metric == 'cpu' else 'Memory'}: {_n(c['fixed'] / scale, digits)} {unit} "
                f"fixed + {_n(c['per_user'] / scale, digits + 2)} {unit} per {per} ({how})"
                + (
                    f"; at the peak: **{_n(c['at_peak'] / scale, digits - 1)} {unit}**"
                    if c.get("at_peak") is not None
                    else ""
                )
            )
    if s.get("replicas") is not None:
        out.append(
            f"- Replicas of `{_cell(s['limits'])}` for the peak: **{s['replicas']}** (decided by {s['decided_by']})"
        )
    elif s.get("limits") is None:
        out.append("- Replicas: declare one replica's limits (`capacity: {limits: {cpu: 500m, memory: 512Mi}}`)")
    return out + ["", "Assumptions:", *[f"- {a}" for a in s["assumptions"]]]


def summary_line(plan: Mapping) -> str | None:
    """One line for the terminal: headroom over the peak and the runway; None without a declared peak."""
    peak, h, way = plan.get("peak"), plan.get("headroom"), plan.get("runway")
    if peak is None or way is None:
        return None
    parts = [f"peak {peak['text']}"]
    if h and h.get("value") is not None:
        parts.append(f"headroom {_pct(h['value'])} ({h['status']})")
    parts.append("runway: the peak meets capacity " + _when(way["capacity"]).replace("**", ""))
    return "plan: " + "; ".join(parts) + f"; see {FILE}"


def render(plan: Mapping) -> str:
    title = f"# Capacity plan: {plan.get('requirement') or 'capacity run'}, release {_cell(plan['release'])}"
    lines = [
        title,
        "",
        f"Run `{_cell(plan['run_id'])}`, dated {_date(plan['dated'], True)}.",
        "",
        *current_state(plan),
        "",
        *future_requirements(plan),
        "",
        *scaling(plan),
    ]
    return "\n".join(lines) + "\n"


def write(path: str, plan: Mapping) -> None:
    """Write capacity.md atomically (a temp file renamed)."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(render(plan))
    os.replace(tmp, path)
