"""Delivery: tries with a timeout each and a backoff between them, within a bounded total time.

A try that fails for a reason that may pass (no connection, a timeout, HTTP 5xx, 408 or 429, an SMTP 4xx
reply) is retried after 0.5 s, 1 s, 2 s … (or a 429's Retry-After); one that will not (another 4xx, a refused login) is not. Each
delivery runs in its own thread and is given up after its budget whatever the network does, so that a
receiver that never answers cannot hold the CLI. Errors are described in our own words, never with the
library's text (which carries the URL), and scrubbed of the target's secrets.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import requests

from loadgate.notify.targets import Target

BUDGET_S = 20.0  # a delivery's whole time: tries and waits
TRY_MAX_S = 5.0  # one try at most (and at most half the budget)
MAX_TRIES = 4
FIRST_WAIT_S = 0.5


@dataclass
class Attempt:
    status: str = "failed"  # sent | failed
    tries: int = 0
    error: str | None = None


class _Retry(Exception):
    """A failure worth another try; ``wait``: the receiver's own Retry-After, in seconds."""

    def __init__(self, what: str, wait: float = 0.0) -> None:
        super().__init__(what)
        self.wait = wait


class _GiveUp(Exception):
    """A failure another try would repeat."""


def _loop(send: Callable[[float], None], budget: float, attempt: Attempt) -> None:
    deadline = time.monotonic() + budget
    wait = FIRST_WAIT_S
    while attempt.tries < MAX_TRIES:
        left = deadline - time.monotonic()
        if left <= 0.05:
            break
        attempt.tries += 1
        try:
            send(min(TRY_MAX_S, budget / 2, left))
            attempt.status, attempt.error = "sent", None
            return
        except _GiveUp as e:
            attempt.error = str(e)
            return
        except _Retry as e:
            attempt.error = str(e)
            if e.wait > deadline - time.monotonic():  # asked to come back after our budget: no use waiting
                attempt.error += f" (retry after {e.wait:g}s: beyond the time left)"
                return
            pause = min(max(wait, e.wait), deadline - time.monotonic())
        if pause <= 0:
            break
        time.sleep(pause)
        wait *= 2


def _post(url: str, body: dict) -> Callable[[float], None]:
    def send(timeout: float) -> None:
        try:
            r = requests.post(url, json=body, timeout=(min(timeout, 3.0), timeout), allow_redirects=False)
        except requests.Timeout:
            raise _Retry(f"no answer within {timeout:.1f}s") from None
        except requests.ConnectionError:
            raise _Retry("cannot connect") from None
        except requests.RequestException as e:
            raise _GiveUp(f"cannot send ({type(e).__name__})") from None
        if 200 <= r.status_code < 300:
            return
        text = " ".join(r.text[:200].split())
        what = f"HTTP {r.status_code}" + (f": {text}" if text else "")
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise _Retry(what, _retry_after(r.headers.get("Retry-After")))
        raise _GiveUp(what)

    return send


def _retry_after(value: str | None) -> float:
    """Seconds of a Retry-After header (a number; an HTTP date is ignored), at most a minute."""
    try:
        return min(60.0, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0


def _smtp(target: Target, message: EmailMessage) -> Callable[[float], None]:
    e = target.entry

    def send(timeout: float) -> None:
        try:
            with smtplib.SMTP(e.host or "", e.port or 0, timeout=timeout) as smtp:
                smtp.ehlo()
                if e.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=e.ca_file))
                    smtp.ehlo()
                if target.username:
                    smtp.login(target.username, target.password or "")
                smtp.send_message(message, from_addr=e.sender, to_addrs=list(e.to))
        except smtplib.SMTPAuthenticationError as err:
            raise _GiveUp(f"SMTP login refused ({err.smtp_code})") from None
        except smtplib.SMTPNotSupportedError:
            raise _GiveUp("the SMTP server does not offer STARTTLS") from None
        except smtplib.SMTPRecipientsRefused:
            raise _GiveUp("the SMTP server refused every recipient") from None
        except smtplib.SMTPResponseException as err:
            what = f"SMTP {err.smtp_code}: {err.smtp_error.decode('utf-8', 'replace')[:200] if isinstance(err.smtp_error, bytes) else err.smtp_error}"
            raise (_Retry if 400 <= err.smtp_code < 500 else _GiveUp)(what) from None
        except ssl.SSLError as err:
            raise _GiveUp(f"STARTTLS failed ({err.reason or 'TLS error'}); check ca_file") from None
        except (socket.timeout, TimeoutError):
            raise _Retry(f"no answer within {timeout:.1f}s") from None
        except (smtplib.SMTPException, OSError) as err:
            raise _Retry(f"cannot talk to {e.host}:{e.port} ({type(err).__name__})") from None

    return send


def deliver(target: Target, body: dict | EmailMessage, budget: float = BUDGET_S) -> Attempt:
    """Send ``body`` (a JSON document, or an email) to ``target``; never raises, never exceeds ``budget`` (much)."""
    attempt = Attempt()
    if target.problem:
        attempt.error = target.problem
        return attempt
    send = _smtp(target, body) if isinstance(body, EmailMessage) else _post(target.url or "", body)

    def run() -> None:
        try:
            _loop(send, budget, attempt)
        except Exception as e:  # a bug must not take the verdict's exit code with it
            attempt.error = f"unexpected {type(e).__name__}"

    worker = threading.Thread(target=run, name=f"notify-{target.kind}", daemon=True)
    worker.start()
    worker.join(budget + 1.0)
    if worker.is_alive():
        attempt.status, attempt.error = "failed", f"gave up after {budget:g}s ({attempt.error or 'no answer'})"
    attempt.error = target.scrub(attempt.error) if attempt.error else None
    return attempt
