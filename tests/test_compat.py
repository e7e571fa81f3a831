"""Each Locust internal loadgate relies on (loadgate/plugin/compat.py), against the installed Locust.

When a Locust release moves one, the test of that touchpoint fails with a message that names the
internal and what of loadgate's depends on it. Each test uses the real thing: a real event hook, a
real worker runner class, a real socket, Locust's own wait-time functions and HTTP clients.
"""

from __future__ import annotations

import inspect
import os

import gevent.monkey
import pytest

# Importing Locust monkey-patches the whole pytest process with gevent, which breaks other tests that
# share the process; none of these needs patched I/O (as in test_recorder.py).
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    import locust

    from loadgate.plugin import compat
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


def test_importing_locust_here_patched_nothing():
    assert not gevent.monkey.is_anything_patched()


def _why(internal: str, use: str) -> str:
    return f"{internal} is gone or changed: loadgate's {use} reads it (loadgate/plugin/compat.py)"


def test_the_request_event_keeps_its_listeners_in_a_list_named__handlers():
    from locust.event import Events

    hook = Events().request
    assert isinstance(getattr(hook, "_handlers", None), list), _why(
        "locust.event.EventHook._handlers", "recorder (swapping its request listener in place)"
    )

    def first(**_kw): ...
    def second(**_kw): ...
    def swapped(**_kw): ...

    hook.add_listener(first)
    hook.add_listener(second)
    assert compat.replace_listener(hook, first, swapped)
    assert hook._handlers == [swapped, second]
    fired = []
    hook._handlers[:] = [lambda **kw: fired.append(kw)]
    hook.fire(name="x")
    assert fired == [{"name": "x"}], _why("locust.event.EventHook.fire over _handlers", "recorder")
    assert not compat.replace_listener(hook, first, swapped)


def test_a_worker_can_send_its_stats_now_through__send_stats():
    from locust.runners import WorkerRunner

    method = getattr(WorkerRunner, "_send_stats", None)
    assert callable(method), _why(
        "locust.runners.WorkerRunner._send_stats",
        "worker accounting (the last request count before the recorder's 'done')",
    )
    assert list(inspect.signature(method).parameters) == ["self"], _why(
        "the signature of WorkerRunner._send_stats(self)", "worker accounting"
    )

    class Runner:
        sent = 0

        def _send_stats(self):
            self.sent += 1

    runner = Runner()
    assert compat.send_worker_stats(runner) and runner.sent == 1
    assert not compat.send_worker_stats(object())


def test_every_locust_socket_is_made_in_basesocket___init___with_its_type(monkeypatch):
    zmq = pytest.importorskip("zmq")
    from locust.rpc import zmqrpc

    init = zmqrpc.BaseSocket.__init__
    assert list(inspect.signature(init).parameters)[:2] == ["self", "sock_type"], _why(
        "locust.rpc.zmqrpc.BaseSocket.__init__(self, sock_type)", "worker channel (CURVE keys on every socket)"
    )
    monkeypatch.setattr(zmqrpc.BaseSocket, "__init__", init)  # restored after the test
    seen = []
    assert compat.wrap_socket_init(lambda wrapper, sock_type: seen.append((wrapper.socket, sock_type)), "_t_mark")
    assert compat.wrap_socket_init(lambda *_: seen.append("twice"), "_t_mark")  # once only
    server = zmqrpc.Server("127.0.0.1", 0)
    try:
        assert [t for _, t in seen] == [zmq.ROUTER], _why(
            "zmqrpc.Server -> BaseSocket.__init__(zmq.ROUTER)", "worker channel"
        )
        assert isinstance(seen[0][0], zmq.Socket), _why("BaseSocket.socket", "worker channel")
    finally:
        server.close()


def test_constant_pacing_keeps_its_period_in_a_closure_cell_named_wait_time():
    from locust import constant_pacing, constant_throughput

    for fn, period in ((constant_pacing(2.5), 2.5), (constant_throughput(4), 0.25)):
        assert compat.locust_pacing_period(fn) == period, _why(
            "the closure cell 'wait_time' of locust.user.wait_time.constant_pacing.<locals>.wait_time_func",
            "pacing (recognising Locust's paced users to record their schedule)",
        )
    assert compat.locust_pacing_period(locust.between(1, 2)) is None
    assert compat.locust_pacing_period(lambda self: 1.0) is None


@pytest.mark.parametrize("client", ["locust.clients.HttpSession", "locust.contrib.fasthttp.FastHttpSession"])
def test_a_request_in_flight_is_found_in_the_client_s_request_frame(client):
    module, _, name = client.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    code = cls.request.__code__
    assert code in compat.client_codes(), _why(f"{client}.request", "in-flight accounting (its frame)")
    local_names = set(code.co_varnames)
    for local in compat.REQUEST_LOCALS:
        assert local in local_names, _why(
            f"the local variable {local!r} of {client}.request", "in-flight accounting (a request cut off at stop)"
        )


def test_the_traceback_of_a_stopped_call_leads_to_its_frame():
    def request(start_time, method, url, name):
        raise KeyboardInterrupt  # stands for the GreenletExit a stopped user gets

    def task():
        request(1.5, "GET", "http://h/x", "/x")

    try:
        task()
    except KeyboardInterrupt as e:
        frames, local = compat.interrupted_call(e, frozenset({request.__code__}))
    assert [f.f_code.co_name for f in frames][-2:] == ["task", "request"]
    assert local == {"start_time": 1.5, "method": "GET", "url": "http://h/x", "name": "/x"}


def test_the_user_count_is_the_size_of_the_runner_s_user_greenlet_set():
    from locust import User, constant
    from locust.env import Environment
    from locust.runners import LocalRunner

    class Idle(User):
        wait_time = constant(1)

    env = Environment(user_classes=[Idle])
    runner = env.create_local_runner()
    greenlets = compat.user_greenlet_set(runner)
    assert isinstance(runner, LocalRunner) and isinstance(greenlets, set), _why(
        "locust.runners.Runner.user_greenlets.greenlets (the set Runner.user_count measures)",
        "recorder (the user count of each request)",
    )
    assert len(greenlets) == runner.user_count == 0
    runner.quit()


def test_a_master_knows_its_workers_with_their_heartbeat_countdown():
    from locust.runners import HEARTBEAT_LIVENESS, WorkerNode, WorkerNodes

    nodes = WorkerNodes()
    nodes["w1"] = WorkerNode("w1", heartbeat_liveness=HEARTBEAT_LIVENESS)
    assert compat.HEARTBEAT_TOP == HEARTBEAT_LIVENESS

    class Master:
        clients = nodes

    clients = compat.worker_clients(Master())
    assert [(c.id, c.heartbeat) for c in clients] == [("w1", HEARTBEAT_LIVENESS)], _why(
        "locust.runners.MasterRunner.clients.all / WorkerNode.id, .heartbeat, .state",
        "worker watch (when the master last heard from a lost worker)",
    )
    assert clients[0].state is not None


def test_a_task_queued_on_the_user_s_default_taskset_runs_next_and_then_the_wait_comes():
    from locust import User, task
    from locust.env import Environment
    from locust.exception import StopUser

    ran: list[str] = []

    class Pool(User):
        def wait_time(self):
            ran.append("wait")
            return 0

        def on_start(self):
            assert compat.schedule_next(self, lambda user: ran.append(f"handed {type(user).__name__}")), _why(
                "locust.User._taskset_instance.schedule_task", "open model (a pool user runs the start's task)"
            )

        @task
        def own(self):
            ran.append("own")
            raise StopUser()

    Pool(Environment(user_classes=[Pool])).run()
    assert ran == ["handed Pool", "wait", "own"], _why(
        "locust.TaskSet.run (a queued task runs before Locust picks one; the wait follows each task)",
        "open model (a pool user waits for a start after each iteration)",
    )
    assert not compat.schedule_next(object(), lambda user: None)
