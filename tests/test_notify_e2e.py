"""Notifications of real runs against the demo target, received by real servers on loopback: sent once
(two workers too), escaped, never changing the exit code, recorded in a sealed run.json, never leaking the
secret; 'recovered' through a real history.sqlite; 'loadgate notify' re-sends; an interrupted run."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import E2E, ROOT, load, run_cli, run_dir_of
from notify_receivers import Mailbox, Receiver

SECRET = "T0SECRET/B0/xoxbTOKEN9876"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _thresholds(tmp_path: Path, name: str, source: str, notify: str, folder: str = "thresholds") -> Path:
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    (d / name).write_text((E2E / "thresholds" / source).read_text().rstrip("\n") + "\n" + notify)
    return d


def _run(
    tmp_path: Path, req: str, thresholds: Path, *args: str, env: dict | None = None, scenarios: Path = E2E / "scenarios"
):
    out = tmp_path / "reports"
    res = run_cli(
        "run",
        "--requirement",
        req,
        "--scenarios",
        str(scenarios),
        "--thresholds",
        str(thresholds),
        "--out",
        str(out),
        *args,
        env=env,
    )
    return res, run_dir_of(out)


def _leaks(folder: Path, res, secret: str = SECRET) -> list[str]:
    """Files under ``folder`` (and the command's output) that contain any part of the secret."""
    parts = [p for p in secret.split("/") if len(p) > 4]
    found = [str(p) for p in folder.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in parts)]
    return found + [f"output: {s}" for s in parts if s in res.stdout + res.stderr]


def test_a_failing_run_with_two_workers_sends_one_message_to_each_target(tmp_path, receiver):
    notify = """notify:
  - kind: slack
    url_env: NOTIFY_SLACK
  - kind: teams
    url_env: NOTIFY_TEAMS
    on: [fail, resources]
  - kind: webhook
    url_env: NOTIFY_HOOK
    on: [fail, regressed]
  - kind: webhook
    url_env: NOTIFY_PASS_ONLY
    on: [pass, recovered]
"""
    folder = _thresholds(tmp_path, "fail.yaml", "fail.yaml", notify)
    env = {
        "NOTIFY_SLACK": f"{receiver.url}/slack/{SECRET}",
        "NOTIFY_TEAMS": f"{receiver.url}/teams/{SECRET}",
        "NOTIFY_HOOK": f"{receiver.url}/hook/{SECRET}",
        "NOTIFY_PASS_ONLY": f"{receiver.url}/pass/{SECRET}",
    }
    res, run_dir = _run(tmp_path, "REQ-T-FAIL", folder, "--workers", "2", "--notify", "NOTIFY_HOOK", env=env)
    assert res.code == 1, res.stderr
    assert sorted(p for p, _h, _b in receiver.posts) == sorted(
        [f"/slack/{SECRET}", f"/teams/{SECRET}", f"/hook/{SECRET}"]
    )  # once each: the duplicate --notify merged
    verdict, run = load(run_dir, "verdict.json"), load(run_dir, "run.json")
    assert run["workers"] == 2
    (slack,) = receiver.to(f"/slack/{SECRET}")
    assert slack["text"] == "FAIL: REQ-T-FAIL" and slack["blocks"][0]["text"]["text"] == "FAIL: REQ-T-FAIL"
    assert (
        "*Verdict:* FAIL (exit 1) · sent because: fail\n*REQ-T-FAIL* Half the requests fail (fail)"
        in slack["blocks"][1]["text"]["text"]
    )
    fields = [f["text"] for f in slack["blocks"][2]["fields"]]
    assert fields[1] == f"*Users*\n{run['users_reached']}" and fields[3] == f"*Run*\n{run_dir.name}"
    assert fields[2] == f"*Commit*\n{run['git']['commit'][:12]}" + (
        " (uncommitted changes)" if run["git"]["dirty"] else ""
    )
    rate = next(t for t in verdict["thresholds"] if t["metric"] == "error_rate")
    line = slack["blocks"][3]["text"]["text"].splitlines()[1]
    assert line.startswith("• FAIL REQ-T-FAIL `error_rate`: ") and line.endswith(f"alert &gt;1% — {rate['source']}")
    assert slack["blocks"][-1]["elements"][0]["text"] == f"Report: `{run_dir.resolve() / 'report.html'}`"
    (teams,) = receiver.to(f"/teams/{SECRET}")
    card = teams["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"] == "FAIL: REQ-T-FAIL"
    (hook,) = receiver.to(f"/hook/{SECRET}")
    assert hook["verdict_document"] == verdict and hook["sent_because"] == ["fail"] and hook["comparison"] is None
    records = run["notifications"]
    assert sorted((r["kind"], r["status"], r["tries"]) for r in records) == [
        ("slack", "sent", 1),
        ("teams", "sent", 1),
        ("webhook", "sent", 1),
    ]
    hook_record = next(r for r in records if r["kind"] == "webhook")
    assert hook_record["target"] == f"webhook {receiver.url}/[redacted] ($NOTIFY_HOOK)"
    assert hook_record["declared"] == [f"{folder / 'fail.yaml'}:16", "--notify"]
    assert run_cli("verify", str(run_dir)).code == 0
    assert _leaks(tmp_path / "reports", res) == []


def test_hostile_text_from_a_real_server_is_escaped_in_slack_and_email(tmp_path, receiver):
    box = Mailbox()
    try:
        env = {
            "LOADGATE_SMTP_HOST": "127.0.0.1",
            "LOADGATE_SMTP_PORT": str(box.port),
            "LOADGATE_SMTP_STARTTLS": "false",
            "LOADGATE_SMTP_FROM": "loadgate@example.com",
            "LOADGATE_NOTIFY": "email:team@example.com",
        }
        hostile = ROOT / "tests" / "data" / "hostile"
        res, run_dir = _run(
            tmp_path,
            "REQ-HOSTILE-001",
            hostile / "thresholds",
            "--notify",
            f"slack:{receiver.url}/{SECRET}",
            env=env,
            scenarios=hostile / "scenarios",
        )
    finally:
        box.close()
    assert res.code == 1, res.stderr
    (slack,) = receiver.to(f"/{SECRET}")
    texts = [b["text"]["text"] for b in slack["blocks"] if b.get("text") and b["text"]["type"] == "mrkdwn"]
    joined = "\n".join(texts)
    assert "<" not in joined and ">" not in joined  # no raw markup, link, mention; the report is a path here
    assert "Hostile strings stay inert: &lt;script&gt;alert(1)&lt;/script&gt;" in joined  # the title
    assert "• INCONCLUSIVE REQ-HOSTILE-001 `p99` of `GET &lt;/script&gt;&lt;!--`: " in joined  # a request name
    errors = next(t for t in texts if t.startswith("*Commonest errors*")).splitlines()[1:]
    assert errors and all(re.fullmatch(r"• \d+× `[^`]*`: `[^`]*`", e) for e in errors), errors  # code spans, whole
    assert any(
        "&lt;script&gt;alert(2)&lt;/script&gt;" in e or "&lt;img src=x onerror=alert(1)&gt;" in e for e in errors
    )
    ((_sender, rcpts, raw, _tls),) = box.messages
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert rcpts == ["team@example.com"] and "\n" not in msg["Subject"]
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html and "</script><!--" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<h3>Commonest errors</h3>" in html
    run = load(run_dir, "run.json")
    assert f"slack:{receiver.url}/[redacted]" in run["command_line"]
    assert _leaks(tmp_path / "reports", res) == []


def test_a_receiver_that_fails_or_hangs_never_changes_the_exit_code(tmp_path, receiver):
    receiver.answers[f"/flaky/{SECRET}"] = [500]
    receiver.answers[f"/hang/{SECRET}"] = "hang"
    res, run_dir = _run(
        tmp_path,
        "REQ-T-PASS",
        E2E / "thresholds",
        "--notify",
        f"{receiver.url}/flaky/{SECRET}",
        "--notify",
        f"{receiver.url}/hang/{SECRET}",
        "--notify-on",
        "pass",
        "--notify-timeout",
        "3s",
    )
    assert res.code == 0, res.stderr
    assert len(receiver.to(f"/flaky/{SECRET}")) == 2 and len(receiver.to(f"/hang/{SECRET}")) >= 1
    flaky, hang = load(run_dir, "run.json")["notifications"]  # in the order given
    assert flaky["target"] == hang["target"] == f"webhook {receiver.url}/[redacted]"
    assert (flaky["status"], flaky["tries"], flaky["error"]) == ("sent", 2, None)
    assert (
        hang["status"] == "failed"
        and hang["tries"] >= 1
        and ("no answer" in hang["error"] or "gave up" in hang["error"])
    )
    assert "notification to webhook" in res.stderr and "the verdict and exit code stand" in res.stderr
    assert run_cli("verify", str(run_dir)).code == 0
    again = run_cli(
        "notify",
        str(run_dir),
        "--notify",
        f"{receiver.url}/hang/{SECRET}",
        "--notify-on",
        "pass",
        "--notify-timeout",
        "2s",
    )
    assert again.code == 1, again.stderr  # for 'loadgate notify', delivering is the job
    last = load(run_dir, "run.json")["notifications"][-1]
    assert (last["by"], last["status"]) == ("notify", "failed")
    assert run_cli("verify", str(run_dir)).code == 0
    assert _leaks(tmp_path / "reports", res) == [] and _leaks(tmp_path / "reports", again) == []


def test_recovered_through_the_history_and_loadgate_notify_resends(tmp_path, receiver):
    notify = "notify:\n  - kind: webhook\n    url_env: NOTIFY_HOOK\n"
    good = _thresholds(tmp_path, "pass.yaml", "pass.yaml", notify, "good")
    strict = (good / "pass.yaml").read_text().replace('target: "<2s"\n    alert: ">5s"', 'alert: ">0.001ms"')
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pass.yaml").write_text(strict)
    env = {"NOTIFY_HOOK": f"{receiver.url}/hook/{SECRET}"}
    res, run_dir = _run(tmp_path, "REQ-T-PASS", good, env=env)
    assert res.code == 0 and receiver.posts == []  # a pass with no earlier record: nothing to say
    failed = run_cli("gate", str(run_dir), "--thresholds", str(bad), env=env)
    assert failed.code == 1, failed.stderr
    recovered = run_cli("gate", str(run_dir), "--thresholds", str(good), env=env)
    assert recovered.code == 0, recovered.stderr
    first, second = receiver.to(f"/hook/{SECRET}")
    assert (first["verdict"], first["sent_because"]) == ("fail", ["fail"])
    assert (second["verdict"], second["sent_because"], second["headline"]) == (
        "pass",
        ["recovered"],
        "PASS (recovered): REQ-T-PASS",
    )
    again = run_cli(
        "notify",
        str(run_dir),
        "--thresholds",
        str(good),
        "--report-url",
        "https://ci.example.com/jobs/7/artifacts/{run_id}/report.html",
        env=env,
    )
    assert again.code == 0, again.stderr
    third = receiver.to(f"/hook/{SECRET}")[2]
    assert third["sent_because"] == ["recovered"]
    assert third["links"]["report"] == f"https://ci.example.com/jobs/7/artifacts/{run_dir.name}/report.html"
    run = load(run_dir, "run.json")
    assert [(r["by"], r["because"], r["status"]) for r in run["notifications"]] == [
        ("gate", ["fail"], "sent"),
        ("gate", ["recovered"], "sent"),
        ("notify", ["recovered"], "sent"),
    ]
    assert run["audit"][-1]["command"].startswith("loadgate notify")
    verified = run_cli("verify", str(run_dir))
    assert verified.code == 0, verified.stdout
    before = (run_dir / "run.json").read_bytes()
    silent = run_cli(
        "notify",
        str(run_dir),
        "--thresholds",
        str(E2E / "thresholds"),
        "--notify",
        f"{receiver.url}/other/{SECRET}",
        "--notify-on",
        "fail,warn",
    )
    assert silent.code == 0 and "no notification called for (verdict pass)" in silent.stdout
    assert len(receiver.posts) == 3 and (run_dir / "run.json").read_bytes() == before  # nothing sent, nothing re-sealed
    assert _leaks(tmp_path / "reports", res) == []


def test_an_interrupted_run_notifies_inconclusive_with_the_reason(tmp_path, receiver):
    out = tmp_path / "reports"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_HOOK=f"{receiver.url}/hook/{SECRET}")
    folder = _thresholds(tmp_path, "pass.yaml", "pass.yaml", "notify:\n  - kind: slack\n    url_env: NOTIFY_HOOK\n")
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgate",
            "run",
            "--requirement",
            "REQ-T-PASS",
            "--duration",
            "60s",
            "--scenarios",
            str(E2E / "scenarios"),
            "--thresholds",
            str(folder),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until samples are being recorded
        found = list(out.glob("*/samples.arrows")) if out.exists() else []
        if found and found[0].stat().st_size > 2000:
            break
        time.sleep(0.2)
    else:
        cli.kill()
        pytest.fail("the run never started recording")
    cli.send_signal(signal.SIGINT)
    _stdout, stderr = cli.communicate(timeout=90)
    assert cli.returncode == 3, stderr
    (message,) = receiver.to(f"/hook/{SECRET}")
    assert message["text"] == "INCONCLUSIVE: REQ-T-PASS"
    assert "sent because: inconclusive" in message["blocks"][1]["text"]["text"]
    reasons = next(b for b in message["blocks"] if b.get("text", {}).get("text", "").startswith("*Reasons*"))
    assert "`interrupted by SIGINT`" in reasons["text"]["text"]
    assert load(run_dir_of(out), "run.json")["notifications"][0]["status"] == "sent"


def test_a_slowdown_against_the_baseline_sends_regressed_with_the_delta(tmp_path, receiver):
    base, base_dir = _run(tmp_path, "REQ-T-PASS", E2E / "thresholds", "--no-notify")
    assert base.code == 0, base.stderr
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--out",
        str(tmp_path / "reports"),
        "--target-latency-scale",
        "6",
        "--baseline",
        str(base_dir),
        "--notify",
        f"{receiver.url}/hook/{SECRET}",
        "--notify",
        f"slack:{receiver.url}/slack/{SECRET}",
        "--notify-on",
        "regressed",
    )
    assert res.code == 0, res.stderr  # slower, still within the alerts: only the comparison says so
    (hook,) = receiver.to(f"/hook/{SECRET}")
    assert hook["sent_because"] == ["regressed"] and hook["comparison"]["baseline"] == base_dir.name
    rows = [r for r in hook["comparison"]["requests"] if r["request_type"] is None and r["metric"] == "p50"]
    assert rows and rows[0]["status"] == "regression"
    (slack,) = receiver.to(f"/slack/{SECRET}")
    delta = next(b["text"]["text"] for b in slack["blocks"] if b.get("text", {}).get("text", "").startswith("*Against"))
    assert delta.startswith(f"*Against baseline* `{base_dir.name}`")
    assert re.search(
        r"• `REQ-T-PASS p50: [\d.]+ ms -&gt; [\d.]+ ms, \+[\d.]+% \(95% CI \+[\d.]+%\.\.\+[\d.]+%\): "
        r"regression`",
        delta,
    ), delta


def test_resource_usage_high_goes_to_its_own_channel(tmp_path, receiver):
    folder = tmp_path / "thresholds"
    folder.mkdir()
    (folder / "REQ-T-PASS.yaml").write_text(
        'requirement: REQ-T-PASS\ntitle: Resources\nthresholds:\n  - metric: p95\n    alert: ">5s"\n'
        '  - metric: memory\n    target: "<0.1%"\n'  # any machine uses more: a warning, the gate passes
        "notify:\n  - kind: slack\n    url_env: OPS_SLACK\n    on: [resources]\n"
        "  - kind: webhook\n    url_env: TEAM_HOOK\n    on: [fail]\n"
    )
    env = {"OPS_SLACK": f"{receiver.url}/ops/{SECRET}", "TEAM_HOOK": f"{receiver.url}/team/{SECRET}"}
    res, run_dir = _run(tmp_path, "REQ-T-PASS", folder, "--users", "3", "--duration", "3s", env=env)
    assert res.code == 0, res.stderr
    assert [p for p, _h, _b in receiver.posts] == [f"/ops/{SECRET}"]  # the team hears nothing: no fail
    (ops,) = receiver.to(f"/ops/{SECRET}")
    assert ops["text"] == "WARN: REQ-T-PASS" and "sent because: resources" in ops["blocks"][1]["text"]["text"]
    (line,) = ops["blocks"][3]["text"]["text"].splitlines()[1:]
    assert line.startswith("• WARN REQ-T-PASS `memory`: ") and line.endswith(
        f"target &lt;0.1% — {folder / 'REQ-T-PASS.yaml'}:6"
    )
