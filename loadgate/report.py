"""report.html: one self-contained, escaped HTML file rendered with Jinja2 (autoescape, StrictUndefined)."""
from __future__ import annotations

import datetime as dt
import os

import jinja2



def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["utc"] = lambda t: (dt.datetime.fromtimestamp(t, dt.timezone.utc)
                                    .strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-")
    env.filters["num"] = lambda v, d=1: "-" if v is None else f"{v:,.{d}f}"
    env.filters["pct"] = lambda v: "-" if v is None else f"{v * 100:.3g}%"
    return env


def render_report(*, verdict: dict, summary: dict, run: dict) -> str:
    """The report as a string (no external resources); inputs are the run directory's JSON files."""
    return _env().get_template("report.html.j2").render(
        verdict=verdict, summary=summary, run=run, titles=run.get("titles") or {})


def write_report(path: str, *, verdict: dict, summary: dict, run: dict) -> None:
    html = render_report(verdict=verdict, summary=summary, run=run)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(tmp, path)
