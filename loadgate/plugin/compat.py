"""Every place loadgate relies on a Locust (or CPython) internal that Locust does not promise to keep.

Each function here names the internal it reads or patches, and what of loadgate's depends on it;
``tests/test_compat.py`` checks each one against the installed Locust and fails with that name when a
release moves it. Nothing else in loadgate touches these internals. (The C listener's own use of
CPython's C API is its build's business: ``tests/test_rowpack.py``.)

Public Locust API (``events``, ``User``, ``LoadTestShape``, ``runner.send_message`` /
``register_message``, ``parsed_options``) is used where it is needed and is not listed here.
"""

from __future__ import annotations

from typing import Any, Callable

from locust.runners import HEARTBEAT_LIVENESS, Runner

# --- the request event's listener list ----------------------------------------------------------------


def replace_listener(hook, old: Callable, new: Callable) -> bool:
    """Put ``new`` where ``old`` is in the listeners of a Locust event hook (``EventHook._handlers``), in its
    place in the order; False if ``old`` is not there.

    The recorder swaps its request listener once the run's User classes are known (attributed, paced):
    removing and adding would move it behind listeners that were added after it."""
    handlers = hook._handlers
    if old not in handlers:
        return False
    handlers[handlers.index(old)] = new
    return True


# --- the worker's stats report ------------------------------------------------------------------------


def send_worker_stats(runner) -> bool:
    """Send a worker's request stats to its master now (``WorkerRunner._send_stats``), not at the next
    3-second report: the worker's last count then reaches the master before the recorder's "done", so
    the master's request count is complete when it checks it against the samples. False if it cannot."""
    send_stats = getattr(runner, "_send_stats", None)
    if send_stats is None:
        return False
    send_stats()
    return True


# --- the worker channel's sockets ---------------------------------------------------------------------


def wrap_socket_init(after: Callable[[Any, int], None], mark: str) -> bool:
    """Call ``after(socket_wrapper, sock_type)`` at the end of every ``locust.rpc.zmqrpc.BaseSocket.__init__``
    (before the master binds or a worker connects: where CURVE keys must be set); once, marked ``mark``.
    True if it wraps it (now or before)."""
    from locust.rpc import zmqrpc  # noqa: PLC0415 - with zmq: only when a worker key asks for it

    if getattr(zmqrpc.BaseSocket.__init__, mark, False):
        return True
    original = zmqrpc.BaseSocket.__init__

    def init(self, sock_type, *args, **kwargs):
        original(self, sock_type, *args, **kwargs)
        after(self, sock_type)

    setattr(init, mark, True)
    zmqrpc.BaseSocket.__init__ = init
    return True


# --- Locust's constant_pacing -------------------------------------------------------------------------


def locust_pacing_period(wait_time: Any) -> float | None:
    """The period of Locust's own ``constant_pacing`` / ``constant_throughput`` wait time (read from the
    closure cell ``wait_time`` of ``constant_pacing.<locals>.wait_time_func``), None for anything else or
    when the closure no longer holds it. :mod:`loadgate.pacing` swaps these for its recording drop-ins."""
    fn = getattr(wait_time, "__func__", wait_time)
    if (
        getattr(fn, "__module__", None) == "locust.user.wait_time"
        and getattr(fn, "__qualname__", "") == "constant_pacing.<locals>.wait_time_func"
    ):
        try:
            value = fn.__closure__[fn.__code__.co_freevars.index("wait_time")].cell_contents
        except (AttributeError, IndexError, TypeError, ValueError):
            return None
        return float(value) if isinstance(value, (int, float)) and value > 0 else None
    return None


# --- a request in flight when its user was stopped ----------------------------------------------------

# The local variables of the client's request method that the in-flight accounting reads.
REQUEST_LOCALS = ("start_time", "method", "url", "name")


def client_codes() -> frozenset:
    """The code of the Locust client calls whose frame holds a waiting request's start time
    (``HttpSession.request``, ``FastHttpSession.request``)."""
    codes = set()
    try:
        from locust.clients import HttpSession  # noqa: PLC0415 - Locust's child process only

        codes.add(HttpSession.request.__code__)
    except (ImportError, AttributeError):  # pragma: no cover - a Locust without it
        pass
    try:
        from locust.contrib.fasthttp import FastHttpSession  # noqa: PLC0415

        codes.add(FastHttpSession.request.__code__)
    except (ImportError, AttributeError):  # pragma: no cover - a Locust without geventhttpclient
        pass
    return frozenset(codes)


def interrupted_call(exc: BaseException, codes: frozenset) -> tuple[list, dict | None]:
    """(the frames of ``exc``'s traceback, outermost first; the local variables of the innermost client call,
    one of ``codes``, that it interrupted, or None). ``exc`` is the GreenletExit that stopped a user, seen
    in its ``on_stop``."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    call = next((f for f in reversed(frames) if f.f_code in codes), None)
    return frames, (None if call is None else call.f_locals)


# --- the runner's users -------------------------------------------------------------------------------


def user_greenlet_set(runner) -> set | None:
    """The set of user greenlets whose size ``Runner.user_count`` is (``runner.user_greenlets.greenlets``),
    when the runner computes its count that way; else None (then ``runner.user_count`` is read)."""
    greenlets = getattr(getattr(runner, "user_greenlets", None), "greenlets", None)
    if type(runner).user_count is Runner.user_count and isinstance(greenlets, set):
        return greenlets
    return None


# --- the master's view of its workers -----------------------------------------------------------------
# ``runner.clients.all``, each with ``id``, ``state`` and ``heartbeat`` (a countdown Locust resets to
# HEARTBEAT_LIVENESS at each heartbeat it hears): when the master last heard from each worker.


HEARTBEAT_TOP = HEARTBEAT_LIVENESS  # a worker's countdown right after a heartbeat (locust.runners.HEARTBEAT_LIVENESS)


def worker_clients(runner) -> list:
    """The master's worker nodes (``MasterRunner.clients.all``)."""
    return list(runner.clients.all)


# --- the task a user runs next ------------------------------------------------------------------------


def schedule_next(user, task) -> bool:
    """Queue ``task`` as the next one ``user`` runs (``user._taskset_instance.schedule_task``: the
    ``DefaultTaskSet`` that ``User.run`` makes, whose loop picks a task only when its queue is empty).
    The open model's pool users run the task of the start they were handed. False if it cannot."""
    taskset = getattr(user, "_taskset_instance", None)
    if taskset is None or not callable(getattr(taskset, "schedule_task", None)):
        return False
    taskset.schedule_task(task)
    return True
