"""The capacity plan's chart in report.html: capacity and the declared peak across releases, and beyond the
newest one the projection — the capacity along its trend and the peak along its growth — up to the runway.

One x axis of release dates (Unix s): the releases' points, then :data:`STEPS` points of the projection
from this run's date to the runway date (or :data:`HORIZON_MONTHS` ahead when the peak never catches up).
The figures are the plan's (:func:`loadgate.history.plan.build_plan`); only the projection's curve is
sampled here, with the same formulas.
"""

from __future__ import annotations

from collections.abc import Mapping

DAY_S = 86400.0
DAYS_PER_MONTH = 365.2425 / 12
STEPS = 24
HORIZON_MONTHS = 24.0


def plan_chart(plan: Mapping | None) -> dict | None:
    """JSON-ready chart data, or None when there is nothing to draw (no capacity found)."""
    if not plan or plan["capacity"]["value"] is None or plan.get("dated") is None:
        return None
    runs = [r for r in plan["history"] if r.get("dated") is not None]
    peak = (plan.get("peak") or {}).get("value")
    way = plan.get("runway")
    xs = [r["dated"] for r in runs]
    cap = [r["capacity"] for r in runs]
    peaks = [r.get("peak") for r in runs]
    proj_cap: list[float | None] = [None] * len(runs)
    proj_peak: list[float | None] = [None] * len(runs)
    marks = []
    if way is not None and peak is not None:
        proj_cap[-1], proj_peak[-1] = plan["capacity"]["value"], peak
        end = _end_months(way)
        for i in range(1, STEPS + 1):
            m = end * i / STEPS
            xs.append(plan["dated"] + m * DAYS_PER_MONTH * DAY_S)
            cap.append(None)
            peaks.append(None)
            proj_cap.append(plan["capacity"]["value"] * (1 + way["trend"]) ** m)
            proj_peak.append(peak * (1 + way["growth"]) ** m)
        for key, label in (("capacity", "runway: the peak meets capacity"), ("alert", "headroom alert level")):
            w = way.get(key)
            if w and w.get("date") is not None and not w.get("already"):
                marks.append({"at": w["date"], "label": label})
    return {
        "x": xs,
        "capacity": cap,
        "peak": peaks,
        "projected_capacity": proj_cap,
        "projected_peak": proj_peak,
        "runs": [
            {"run_id": r["run_id"], "release": str(r["release"]), "current": bool(r.get("current"))} for r in runs
        ],
        "unit": plan["unit"],
        "marks": marks,
    }


def _end_months(way: Mapping) -> float:
    """How far the projection reaches: a little past the runway, else the horizon."""
    w = way["capacity"]
    if w.get("months") and not w.get("already"):
        return min(w["months"] * 1.15, 10 * HORIZON_MONTHS)
    return HORIZON_MONTHS
