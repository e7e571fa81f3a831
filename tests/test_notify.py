"""Notifications without a load run: the notify: entries and their errors, --notify values, each format's
payload and escaping, and delivery to real receivers on loopback (HTTP, SMTP, SMTP with STARTTLS)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import E2E, run_cli
from loadgate.errors import ConfigError
from loadgate.gate.thresholds import load_threshold_file
from loadgate.notify import slack, teams, webhook
from loadgate.notify import email as mail
from loadgate.notify.deliver import deliver
from loadgate.notify.message import build
from loadgate.notify.targets import parse_cli, redact_argv, resolve
from notify_receivers import Mailbox, Receiver, self_signed

HOSTILE = [
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "<!channel> <@U123> <https://evil.example|click>",
    "*bold* _it_ [link](https://evil.example) {{DATE(2017-02-14T06:00:00Z)}}",
    "&lt;already escaped&gt; & <b>",
    "line\nbreak\u2028sep",
]
SECRET = "T000SECRET/B000/XXXXtoken1234"

BASE = """requirement: REQ-N-1
title: "Checkout stays fast <b>&</b>"
thresholds:
  - metric: p95
    alert: ">500ms"
"""


def _file(tmp_path: Path, notify: str) -> Path:
    p = tmp_path / "REQ-N-1.yaml"
    p.write_text(BASE + notify)
    return p


# --- notify: in threshold files --------------------------------------------------------------------


def test_notify_entries_parse_with_their_defaults_and_on_read_as_a_word(tmp_path):
    tf = load_threshold_file(
        _file(
            tmp_path,
            """notify:
  - kind: slack
    url_env: SLACK_PERF
  - kind: teams
    url_env: $TEAMS_URL
    on: [resources]
  - kind: email
    host: smtp.example.com
    from: perf@example.com
    to: [team@example.com, ops@example.com]
    username_env: SMTP_USER
    password_env: SMTP_PASSWORD
    on: fail, regressed
""",
        )
    )
    slack_e, teams_e, mail_e = tf.notify
    assert (slack_e.kind, slack_e.url_env, slack_e.on) == ("slack", "SLACK_PERF", ("fail", "inconclusive", "recovered"))
    assert (teams_e.url_env, teams_e.on) == ("TEAMS_URL", ("resources",))
    assert (mail_e.host, mail_e.port, mail_e.starttls, mail_e.to, mail_e.on) == (
        "smtp.example.com",
        587,
        True,
        ("team@example.com", "ops@example.com"),
        ("fail", "regressed"),
    )
    assert slack_e.source.endswith("REQ-N-1.yaml:7")


@pytest.mark.parametrize(
    "notify, where, says",
    [
        (
            "notify:\n  - kind: slack\n    url: https://hooks.slack.com/services/T/B/X\n",
            ":8: notify[0].url:",
            "a secret does not belong in a threshold file",
        ),
        ("notify:\n  - kind: slak\n    url_env: X\n", ":7: notify[0].kind:", "did you mean 'slack'?"),
        ("notify:\n  - kind: slack\n    url_env: X\n    on: [fial]\n", ":9: notify[0].on:", "did you mean 'fail'?"),
        ("notify:\n  - kind: webhook\n", ":7: notify[0].url_env: missing", "environment variable"),
        (
            "notify:\n  - kind: slack\n    url_env: https://hooks.slack.com/x\n",
            ":8: notify[0].url_env:",
            "not the secret itself",
        ),
        (
            "notify:\n  - kind: email\n    host: smtp.example.com\n    from: a@example.com\n",
            ":7: notify[0].to: missing",
            "recipient",
        ),
        (
            "notify:\n  - kind: email\n    host: smtp.example.com\n    from: a@example.com\n    to: b@example.com\n"
            "    username_env: U\n    password_env: P\n    starttls: false\n",
            ":13: notify[0].starttls:",
            "clear text",
        ),
        (
            "notify:\n  - kind: email\n    host: h\n    from: a@example.com\n    to: b@example.com\n    password: hunter2\n",
            ":11: notify[0].password:",
            "password_env",
        ),
        ("notify: slack\n", ":6: notify:", "non-empty list"),
    ],
)
def test_a_bad_notify_entry_is_one_line_with_file_line_key_and_fix(tmp_path, notify, where, says):
    with pytest.raises(ConfigError) as e:
        load_threshold_file(_file(tmp_path, notify))
    assert where in str(e.value) and says in str(e.value) and "\n" not in str(e.value)
    assert "hunter2" not in str(e.value)


def test_check_reports_a_bad_notify_entry_at_its_line(tmp_path):
    folder = tmp_path / "thresholds"
    folder.mkdir()
    (folder / "REQ-T-PASS.yaml").write_text(
        (E2E / "thresholds" / "pass.yaml").read_text()
        + "notify:\n  - kind: slack\n    url_env: SLACK_URL\n    on: [fial]\n"
    )
    res = run_cli("check", "--scenarios", str(E2E / "scenarios"), "--thresholds", str(folder))
    assert res.code == 2
    assert f"error: {folder / 'REQ-T-PASS.yaml'}:17: notify[0].on: 'fial' is not an outcome" in res.stdout


def test_check_warns_of_an_unset_secret_and_rejects_a_bad_loadgate_notify(tmp_path):
    folder = tmp_path / "thresholds"
    shutil.copytree(E2E / "thresholds", folder)
    (folder / "pass.yaml").unlink()
    (folder / "REQ-T-PASS.yaml").write_text(
        (E2E / "thresholds" / "pass.yaml").read_text()
        + "notify:\n  - kind: teams\n    url_env: LOADGATE_TEST_UNSET_URL\n"
    )
    args = ("check", "--scenarios", str(E2E / "scenarios"), "--thresholds", str(folder))
    res = run_cli(*args)
    assert res.code == 0, res.stdout
    assert (
        f"warning: {folder / 'REQ-T-PASS.yaml'}:15: notify teams: $LOADGATE_TEST_UNSET_URL is not set here"
        in res.stdout
    ) and "1 warning(s)" in res.stdout
    bad = run_cli(*args, env={"LOADGATE_NOTIFY": f"hooks.slack.com/services/{SECRET}"})
    assert bad.code == 2 and "error: $LOADGATE_NOTIFY: --notify hooks.slack.com/[redacted]: not a URL" in bad.stdout
    assert "SECRET" not in bad.stdout + bad.stderr


# --- --notify values ---------------------------------------------------------------------------------


def test_notify_values_name_a_url_an_environment_variable_or_recipients(monkeypatch):
    assert parse_cli("https://hooks.slack.com/services/T/B/X").kind == "slack"
    assert parse_cli("https://prod-1.westeurope.logic.azure.com/workflows/x").kind == "teams"
    assert parse_cli("teams:https://example.com/hook").kind == "teams"
    assert parse_cli("https://ci.example.com/hook").kind == "webhook"
    e = parse_cli("slack:$SLACK_URL", ("pass",))
    assert (e.kind, e.url_env, e.on) == ("slack", "SLACK_URL", ("pass",))
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.com/services/" + SECRET)
    t = resolve(e)
    assert t.url.endswith(SECRET) and t.label == "slack https://hooks.slack.com/[redacted] ($SLACK_URL)"
    monkeypatch.setenv("PLAIN", "teams:https://example.com/" + SECRET)
    assert resolve(parse_cli("PLAIN")).kind == "teams"
    monkeypatch.setenv("LOADGATE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LOADGATE_SMTP_FROM", "perf@example.com")
    m = parse_cli("email:a@example.com,b@example.com")
    assert (m.kind, m.host, m.to, m.port) == ("email", "127.0.0.1", ("a@example.com", "b@example.com"), 587)
    with pytest.raises(ConfigError, match="not a URL, an environment variable"):
        parse_cli("hooks.slack.com/services/x")
    monkeypatch.delenv("SLACK_URL")
    assert "is not set here" in resolve(e).problem


def test_a_bad_notify_flag_stops_the_run_before_it_starts(tmp_path):
    common = (
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--out",
        str(tmp_path / "out"),
    )
    res = run_cli(*common, "--notify", f"hooks.slack.com/services/{SECRET}")
    assert res.code == 2 and res.error_lines == [
        "loadgate run: error: --notify hooks.slack.com/[redacted]: not a URL, an environment variable's name or "
        "email:ADDRESSES; expected https://hooks.slack.com/…, slack:SLACK_WEBHOOK_URL, teams:$TEAMS_URL or "
        "email:team@example.com (kinds: slack, teams, webhook, email)"
    ]
    assert "SECRET" not in res.stderr and not (tmp_path / "out").exists()
    res = run_cli(*common, "--notify", "SLACK_URL", "--notify-on", "fail,recoverd")
    assert (
        res.code == 2 and "argument --notify-on: 'recoverd' is not an outcome (did you mean 'recovered'?)" in res.stderr
    )


def test_the_recorded_command_line_hides_notify_urls():
    argv = [
        "run",
        "--notify",
        "https://hooks.slack.com/services/" + SECRET,
        "--notify=teams:https://x.example/" + SECRET + "?sig=abc",
        "--notify",
        "SLACK_URL",
        "--requirement",
        "REQ-A",
    ]
    shown = " ".join(redact_argv(argv))
    assert "SECRET" not in shown and "sig=" not in shown
    assert "https://hooks.slack.com/[redacted]" in shown and "teams:https://x.example/[redacted]" in shown
    assert "SLACK_URL" in shown and "REQ-A" in shown


# --- formats -------------------------------------------------------------------------------------


def _message(report_url=None):
    verdict = {
        "verdict": "fail",
        "exit_code": 1,
        "strict": False,
        "reasons": ["interrupted by SIGINT: " + HOSTILE[0], "p95 crossed"],
        "thresholds": [
            {
                "requirement": "REQ-N-1",
                "metric": "p95",
                "request": f"GET {h}",
                "target": None,
                "alert": ">500ms",
                "value": 612.34,
                "unit": "ms",
                "status": "fail",
                "reason": "p95 crossed",
                "source": "thresholds/REQ-N-1.yaml:9",
            }
            for h in HOSTILE
        ],
    }
    run = {
        "requirements": ["REQ-N-1"],
        "start": 100.0,
        "ramp_up_done": 102.0,
        "end": 130.0,
        "users": 50,
        "git": {"commit": "0123456789abcdef0123", "dirty": True},
    }
    comparison = {
        "baseline": "20260101T000000Z-REQ-N-1",
        "requests": [
            {
                "requirement": "REQ-N-1",
                "request_type": None,
                "name": None,
                "metric": "p95",
                "baseline": 400.0,
                "candidate": 612.34,
                "change": 0.53,
                "ci": [0.4, 0.6],
                "status": "regression",
                "change_kind": "relative",
            },
            {
                "requirement": "REQ-N-1",
                "request_type": "GET",
                "name": HOSTILE[2],
                "metric": "p50",
                "baseline": 1.0,
                "candidate": 2.0,
                "change": 1.0,
                "ci": [0.9, 1.1],
                "status": "regression",
                "change_kind": "relative",
            },
        ],
    }
    return build(
        "/runs/20260102T000000Z-REQ-N-1",
        verdict,
        run,
        comparison,
        {"REQ-N-1": "Checkout <b>&</b>"},
        {"REQ-N-1": "fail"},
        ["REQ-N-1"],
        ["fail", "regressed"],
        report_url,
    )


def _strings(doc):
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)
    elif isinstance(doc, str):
        yield doc


def test_slack_blocks_say_everything_and_escape_mrkdwn():
    m = _message("https://ci.example.com/artifacts/{run_id}/report.html")
    p = slack.payload(m)
    assert p["text"] == "FAIL: REQ-N-1"
    header, verdict, facts, breached, delta, reasons, context = p["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "FAIL: REQ-N-1"}}
    assert "*Verdict:* FAIL (exit 1) · sent because: fail, regressed" in verdict["text"]["text"]
    assert "*REQ-N-1* Checkout &lt;b&gt;&amp;&lt;/b&gt; (fail)" in verdict["text"]["text"]
    assert [f["text"] for f in facts["fields"]] == [
        "*Duration*\n30s, 28s at full load",
        "*Users*\n50",
        "*Commit*\n0123456789ab (uncommitted changes)",
        "*Run*\n20260102T000000Z-REQ-N-1",
    ]
    lines = breached["text"]["text"].splitlines()
    assert lines[0] == "*Thresholds not met*" and len(lines) == 1 + len(HOSTILE)
    assert lines[1] == (
        "• FAIL REQ-N-1 `p95` of `GET &lt;script&gt;alert(1)&lt;/script&gt;`: 612.3 ms, alert &gt;500ms"
        " — thresholds/REQ-N-1.yaml:9"
    )
    assert "REQ-N-1 p95: 400.0 ms -&gt; 612.3 ms, +53.0% (95% CI +40.0%..+60.0%): regression" in delta["text"]["text"]
    assert "interrupted by SIGINT" in reasons["text"]["text"]
    assert context["elements"][0]["text"] == (
        "Report: <https://ci.example.com/artifacts/20260102T000000Z-REQ-N-1/report.html|report.html>"
    )
    for text in _strings({k: v for k, v in p.items()}):
        body = text.replace("<https://ci.example.com/artifacts/20260102T000000Z-REQ-N-1/report.html|report.html>", "")
        assert "<" not in body and ">" not in body, body  # no link, mention or <!channel> can form
        assert "https://evil" not in body and "\n\u2028" not in body
    for line in lines[1:]:  # untrusted request names sit in code spans, whole
        assert re.search(r" of `[^`]*`: ", line), line


def test_teams_card_keeps_untrusted_text_out_of_markdown():
    p = teams.payload(_message())
    (attachment,) = p["attachments"]
    assert (p["type"], attachment["contentType"]) == ("message", "application/vnd.microsoft.card.adaptive")
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    blocks = card["body"]
    assert blocks[0]["text"] == "FAIL: REQ-N-1" and blocks[0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in blocks[2]["facts"]}
    assert facts == {
        "Verdict": "FAIL \\(exit 1\\)",
        "Sent because": "fail, regressed",
        "Duration": "30s, 28s at full load",
        "Users": "50",
        "Commit": "0123456789ab \\(uncommitted changes\\)",
        "Run": "20260102T000000Z-REQ-N-1",
    }
    runs = [i["text"] for b in blocks if b["type"] == "RichTextBlock" for i in b["inlines"]]
    assert any("GET <script>alert(1)</script>: 612.3 ms, alert >500ms — thresholds/REQ-N-1.yaml:9" in r for r in runs)
    assert any("[link](https:\u200b//evil.example) {\u200b{DATE(" in r for r in runs)  # literal: no link, no function
    for b in blocks:
        if b["type"] == "TextBlock":  # Markdown: only our own words, escaped
            assert not any(h.split()[0] in b["text"] for h in HOSTILE), b
    assert (
        "actions" not in card and blocks[-1]["text"] == "Report: /runs/20260102T000000Z-REQ-N-1/report.html"
    )  # a path
    linked = teams.card(_message("https://ci.example.com/{run_id}/report.html"))
    assert linked["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open the report",
            "url": "https://ci.example.com/20260102T000000Z-REQ-N-1/report.html",
        }
    ]


def test_webhook_document_carries_the_verdict_and_comparison_as_json():
    m = _message("https://ci.example.com/r")
    p = webhook.payload(m)
    assert p["schema"] == "loadgate.notification/1" and p["sent_because"] == ["fail", "regressed"]
    assert p["verdict_document"]["thresholds"][0]["request"] == f"GET {HOSTILE[0]}"  # JSON: as it came
    assert p["comparison"]["baseline"] == "20260101T000000Z-REQ-N-1"
    assert p["links"] == {"report": "https://ci.example.com/r", "report_is_url": True}
    assert p["breached"][0]["source"] == "thresholds/REQ-N-1.yaml:9"
    json.dumps(p, allow_nan=False)


# --- delivery to real receivers --------------------------------------------------------------------


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _hook(receiver, path, kind="webhook"):
    return resolve(parse_cli(f"{kind}:{receiver.url}{path}"))


def test_a_500_is_retried_once_then_delivered(receiver):
    receiver.answers[f"/{SECRET}"] = [500]
    a = deliver(_hook(receiver, f"/{SECRET}", "slack"), slack.payload(_message()), budget=10)
    assert (a.status, a.tries, a.error) == ("sent", 2, None)
    assert len(receiver.to(f"/{SECRET}")) == 2 and receiver.to(f"/{SECRET}")[1]["text"] == "FAIL: REQ-N-1"


def test_a_429_is_retried_after_its_retry_after_unless_that_is_beyond_the_budget(receiver):
    receiver.answers["/busy"] = [429]
    a = deliver(_hook(receiver, "/busy"), {"x": 1}, budget=10)
    assert (a.status, a.tries) == ("sent", 2) and len(receiver.to("/busy")) == 2
    receiver.answers["/busy"], receiver.retry_after = [429], "30"
    b = deliver(_hook(receiver, "/busy"), {"x": 1}, budget=5)
    assert (b.status, b.tries) == (
        "failed",
        1,
    ) and b.error == "HTTP 429: server error (retry after 30s: beyond the time left)"


def test_a_client_error_is_not_retried_and_its_secret_is_scrubbed(receiver):
    receiver.answers[f"/{SECRET}"] = [404]
    a = deliver(_hook(receiver, f"/{SECRET}"), {"x": 1}, budget=10)
    assert (a.status, a.tries) == ("failed", 1) and a.error.startswith("HTTP 404")
    dead = resolve(parse_cli(f"webhook:http://127.0.0.1:9/{SECRET}"))  # the discard port: nothing listens
    b = deliver(dead, {"x": 1}, budget=2)
    assert b.status == "failed" and b.tries >= 1 and "SECRET" not in b.error and "token" not in b.error


def test_a_receiver_that_never_answers_is_given_up_within_the_budget(receiver):
    receiver.answers[f"/{SECRET}"] = "hang"
    a = deliver(_hook(receiver, f"/{SECRET}"), {"x": 1}, budget=2)
    assert a.status == "failed" and a.tries >= 1 and "no answer" in a.error and SECRET not in a.error


def _received(mailbox, n=1):
    assert len(mailbox.messages) == n
    sender, rcpts, raw, tls = mailbox.messages[-1]
    return sender, rcpts, email.message_from_bytes(raw, policy=email.policy.default), tls


def _mail_target(monkeypatch, port, *, starttls, ca=None):
    monkeypatch.setenv("LOADGATE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LOADGATE_SMTP_PORT", str(port))
    monkeypatch.setenv("LOADGATE_SMTP_FROM", "loadgate@example.com")
    monkeypatch.setenv("LOADGATE_SMTP_STARTTLS", "true" if starttls else "false")
    if ca:
        monkeypatch.setenv("LOADGATE_SMTP_CA_FILE", str(ca))
    return resolve(parse_cli("email:team@example.com,ops@example.com"))


def test_email_reaches_a_real_smtp_server_with_escaped_html(monkeypatch):
    box = Mailbox()
    try:
        target = _mail_target(monkeypatch, box.port, starttls=False)
        a = deliver(target, mail.build(_message(), target.entry.sender, target.entry.to), budget=10)
        assert (a.status, a.tries) == ("sent", 1)
        sender, rcpts, msg, tls = _received(box)
    finally:
        box.close()
    assert (sender, rcpts, tls) == ("loadgate@example.com", ["team@example.com", "ops@example.com"], False)
    assert (
        msg["Subject"] == "[loadgate] FAIL: REQ-N-1 — Checkout <b>&</b>"
        and msg["To"] == "team@example.com, ops@example.com"
    )
    text = msg.get_body(("plain",)).get_content()
    assert (
        "- REQ-N-1 p95 of GET <script>alert(1)</script>: 612.3 ms, alert >500ms (fail) at thresholds/REQ-N-1.yaml:9"
        in text
    )
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html and "<b>&</b>" not in html and "<!channel>" not in html
    assert "GET &lt;script&gt;alert(1)&lt;/script&gt;" in html and "Checkout &lt;b&gt;&amp;&lt;/b&gt;" in html
    assert "https://evil" not in html and "<code>/runs/20260102T000000Z-REQ-N-1/report.html</code>" in html


def test_email_over_starttls_with_a_self_signed_certificate(monkeypatch, tmp_path):
    cert, key = self_signed(tmp_path)
    box = Mailbox(tls=(cert, key))
    try:
        untrusted = _mail_target(monkeypatch, box.port, starttls=True)  # the system's CAs: refused
        a = deliver(untrusted, mail.build(_message(), "loadgate@example.com", ("team@example.com",)), budget=10)
        assert (a.status, a.tries) == ("failed", 1) and "STARTTLS failed" in a.error
        trusted = _mail_target(monkeypatch, box.port, starttls=True, ca=cert)
        b = deliver(trusted, mail.build(_message(), "loadgate@example.com", ("team@example.com",)), budget=10)
        assert (b.status, b.tries) == ("sent", 1)
        _sender, _rcpts, msg, tls = _received(box)
    finally:
        box.close()
    assert tls and msg["Subject"].startswith("[loadgate] FAIL")


# --- which outcomes hold ------------------------------------------------------------------------


def _t(req, status, **extra):
    return {"requirement": req, "metric": "p95", "status": status, **extra}


def test_each_requirement_has_its_own_outcome_and_a_run_problem_reaches_all():
    from loadgate.notify.select import holding, outcomes

    run = {"requirements": ["REQ-A", "REQ-B"]}
    verdict = {
        "verdict": "fail",
        "strict": False,
        "thresholds": [
            _t("REQ-A", "pass"),
            _t("REQ-B", "fail"),
            _t("REQ-A", "warn"),
            _t("REQ-A", "fail", metric="cpu", resource_source="local"),
        ],
    }
    assert outcomes(verdict, run) == {"REQ-A": "fail", "REQ-B": "fail"}
    verdict["thresholds"].pop()
    assert outcomes(verdict, run) == {"REQ-A": "warn", "REQ-B": "fail"}
    assert outcomes({**verdict, "strict": True}, run) == {"REQ-A": "fail", "REQ-B": "fail"}
    assert outcomes({**verdict, "verdict": "inconclusive"}, {**run, "interrupted": "interrupted by SIGINT"}) == {
        "REQ-A": "inconclusive",
        "REQ-B": "inconclusive",
    }
    assert outcomes(verdict, {**run, "problems": ["load generator saturated"]}) == {
        "REQ-A": "inconclusive",
        "REQ-B": "fail",
    }
    mine, before = outcomes(verdict, run), {"REQ-A": "fail", "REQ-B": "fail"}
    on = ("fail", "warn", "recovered", "resources", "regressed", "pass")
    assert holding(on, ["REQ-A"], False, verdict, run, None, mine, before) == ["warn", "recovered"]
    assert holding(on, ["REQ-A", "REQ-B"], True, verdict, run, None, mine, before) == ["fail"]
    cpu = {
        **verdict,
        "thresholds": [*verdict["thresholds"], _t("REQ-A", "warn", metric="cpu", resource_source="local")],
    }
    assert holding(("resources",), ["REQ-A"], False, cpu, run, None, mine, {}) == ["resources"]
    assert holding(("resources",), ["REQ-B"], False, cpu, run, None, mine, {}) == []
    slower = {"requests": [{"requirement": "REQ-B", "request_type": None, "status": "regression"}]}
    assert holding(("regressed",), ["REQ-B"], False, verdict, run, slower, mine, {}) == ["regressed"]
    assert holding(("regressed",), ["REQ-A"], False, verdict, run, slower, mine, {}) == []
