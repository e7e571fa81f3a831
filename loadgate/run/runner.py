"""``loadgate run``: resolve options, start Locust (and the demo target), collect the samples.

Locust runs as a child process with the recorder plugin loaded; this process never imports it.
After the child exits (or is stopped), the recorder's stream becomes ``samples.parquet`` and
``run.json`` says what ran. Analysis and the gate follow in :mod:`loadgate.evaluate`.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping

from loadgate.data import rundir
from loadgate.data.recorder_report import read_recorder_report
from loadgate.data.run_doc import RunDoc, write_run
from loadgate.errors import ConfigError, RunError
from loadgate.gate.thresholds import ThresholdFile
from loadgate.run.interrupt import Interrupt, Interrupted
from loadgate.shared.keys import INSECURE_NOTE
from loadgate.shared.live_rules import rules_from_thresholds
from loadgate.run.local_resources import LocalSampler
from loadgate.run.resource_watch import ResourceWatch
from loadgate.run.options import RunOptions
from loadgate.run.problems import lateness_problems, saturation_problems, worker_problems
from loadgate.run.processes import (
    CAPACITY_SHAPE,
    PLUGIN,
    DemoTarget,
    free_port,
    split_host_port,
    stop_process,
)
from loadgate.run.progress import Progress
from loadgate.shared.child import ChildConfig, child_env
from loadgate.shared.redact import redact
from loadgate.scenarios.catalog import Catalog
from loadgate.sources.collect import is_loopback

STOP_GRACE_S = 8.0  # SIGTERM -> Locust stopped; the contract allows 10 s in all


@dataclass
class RunRecord:
    """What the run left behind, for run.json and the gate."""

    run_dir: str
    problems: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    samples: int = 0
    interrupted: str | None = None
    aborted: str | None = None


def child_config(opts: RunOptions, run_dir: str, rules: list[dict]) -> ChildConfig:
    """The settings of the Locust child(ren) of a run (or of a UI session: ``run_dir`` is its folder)."""
    common = ChildConfig(list(opts.requirements), opts.select, float(opts.flush_interval), float(f"{opts.warmup:g}"),
                         rules)
    if opts.ui:  # each test makes its own run directory
        return replace(common, ui=run_dir, out=opts.out)
    duration = None if opts.capacity else float(f"{opts.duration:g}")  # capacity: the CLI ends the run
    return replace(common, dir=run_dir, duration=duration)


def _locust_cmd(opts: RunOptions, files: list[str], user_classes: list[str], host: str,
                run_dir: str, role: str, port: int | None) -> list[str]:
    """Locust's own command line for one child; loadgate's settings go in its child.json (:func:`child_config`)."""
    shape = [CAPACITY_SHAPE] if opts.capacity and role != "worker" else []
    cmd = [sys.executable, "-m", "locust", "-f", ",".join([*files, PLUGIN, *shape]), "--loglevel", "INFO"]
    if opts.select == "tasks":  # journeys: the chosen User classes run whole, untagged tasks included
        cmd += ["--tags", *opts.requirements]
    if role == "ui":  # run_dir is the session's folder; each test makes its own run directory
        return cmd + ["-u", str(opts.users), "-r", f"{opts.spawn_rate:g}", "--host", host,
                      "--web-host", "127.0.0.1", "--web-port", str(opts.ui_port), "--stop-timeout", "2", *user_classes]
    cmd.append("--headless")
    if role in ("local", "master") and opts.capacity:  # the shape sets users; the CLI ends the run
        cmd += ["--host", host, "--only-summary", "--stop-timeout", "2"]
    elif role in ("local", "master"):
        cmd += ["-u", str(opts.users), "-r", f"{opts.spawn_rate:g}", "--host", host,
                "--run-time", f"{int(opts.time_limit_s) + 1}s", "--only-summary", "--stop-timeout", "2"]
    if role == "master":
        bind_host, bind_port = split_host_port(opts.master_bind) if opts.master_bind else ("127.0.0.1", port)
        cmd += ["--master", "--expect-workers", str(opts.expect_workers or opts.workers),
                "--expect-workers-max-wait", f"{opts.worker_wait:g}",
                "--master-bind-host", bind_host, "--master-bind-port", str(bind_port)]
    if role == "worker":
        cmd += ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return cmd + user_classes


def execute(opts: RunOptions, catalog: Catalog, thresholds: Mapping[str, ThresholdFile],
            say: Callable[[str], None], worker_key: str | None = None, *, prometheus: str | None = None,
            drive: Callable | None = None) -> RunRecord:
    """Run Locust headless and leave samples.parquet and run.json in a new run directory.

    With ``worker_key`` the master and its workers talk over CURVE (:mod:`loadgate.plugin.worker_auth`).
    ``prometheus`` overrides the threshold files' server for resource alerts with abort_on_fail.
    ``drive(procs, opts, intr, rec, progress)`` replaces the plain wait for the end of the run
    (``loadgate capacity`` steers the user count from there).
    """
    started = time.time()
    run_dir = rundir.new_run_dir(opts.out, opts.requirements[0], started)
    rec = RunRecord(run_dir)
    files, users = catalog.select(list(opts.requirements))
    scenario_host = next((u.host for u in users if u.host), None)
    log_path = os.path.join(run_dir, rundir.LOCUST_LOG)
    # From here to the samples saved, SIGINT/SIGTERM is a flag: the run stops, its children are stopped and
    # what was recorded is saved whatever the moment. One that came after the run is raised then.
    with Interrupt() as intr:
        with open(log_path, "ab") as log, contextlib.ExitStack() as stack:
            host = opts.host or scenario_host
            embedded = host is None
            if embedded:
                target = stack.enter_context(DemoTarget(opts.latency_scale, log))
                host = target.url
                say(f"loadgate: no --host given and none in the scenario: started the embedded demo target at {host}")
            if drive is None:
                say(f"loadgate: running {', '.join(opts.requirements)} with {opts.users} users "
                    f"(spawn rate {opts.spawn_rate:g}/s, {opts.duration:g}s at full load, warmup {opts.warmup:g}s) "
                    f"against {host}; writing {run_dir}")
            rec.meta = run_meta(opts, files, thresholds, host, embedded, started)
            rec.meta["titles"] = {r: f.title for r, f in thresholds.items()}
            rec.meta["tasks"] = traceability(catalog, opts.requirements)
            write_run(run_dir, rec.meta)
            sampler = None
            if is_loopback(host) and any(t.resource is not None and t.resource.source == "local"
                                         for tf in thresholds.values() for t in tf.thresholds):
                sampler = stack.enter_context(LocalSampler(run_dir))  # this machine, once a second, for the whole run
            procs, pumps = start_locust(opts, files, [u.name for u in users], host, run_dir, log, worker_key,
                                        rules_from_thresholds(thresholds.values()))
            if drive is not None:
                drive(procs, opts, intr, rec, Progress(run_dir, opts, say))
            else:
                watch = stack.enter_context(ResourceWatch(run_dir, thresholds.values(), sampler, prometheus))
                _wait(procs, opts, intr, rec, Progress(run_dir, opts, say), watch)
            for t in pumps:
                t.join(5)
        collect(rec, opts)
    if intr.reason and not rec.interrupted and drive is None:
        late = Interrupted(intr.reason)
        late.run_dir, late.phase = run_dir, "saving the samples"
        raise late
    return rec


def traceability(catalog: Catalog, requirements) -> dict[str, list[str]]:
    """The tasks of each requirement as report.html lists them: ``file:line name (user class)``."""
    return {r: [f"{t.file}:{t.line or '?'} {t.name}" + ("" if t.name.startswith(f"{t.user_class}.")
                else f" (user {t.user_class})") for t in catalog.tasks_for(r)] for r in requirements}


def run_worker(master: str, files: list[str], say: Callable[[str], None], worker_key: str | None = None) -> int:
    """``loadgate worker``: a Locust worker with the recorder, joined to ``master``; its exit code."""
    try:
        host, port = split_host_port(master, 5557)
    except ValueError:
        raise ConfigError(f"--master {master}: expected HOST or HOST:PORT, like 10.0.0.5:5557") from None
    cmd = [sys.executable, "-m", "locust", "-f", ",".join([*files, PLUGIN]), "--worker",
           "--master-host", host, "--master-port", str(port), "--loglevel", "INFO"]
    say(f"loadgate worker: joining the master at {host}:{port} with {', '.join(files)}"
        + (" over CURVE (worker key)" if worker_key else ""))
    proc = subprocess.Popen(cmd, env=child_env(worker_key), stdin=subprocess.DEVNULL)
    with Interrupt() as intr:
        while proc.poll() is None:
            if intr.reason:
                say(f"loadgate worker: {intr.reason}; stopping")
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(0.2)
    return 0 if proc.wait() in (0, 1) else proc.returncode


def _pump(stream, log, lock: threading.Lock) -> None:
    """Copy a child's output to locust.log line by line, with secrets redacted."""
    for raw in iter(stream.readline, b""):
        line = redact(raw.decode("utf-8", "replace"))
        with lock, contextlib.suppress(OSError):  # a full disk: drop the line, keep draining (a child
            log.write(line.encode())             # blocked on a full pipe would never stop)
            log.flush()
    stream.close()


def start_locust(opts, files, user_classes, host, run_dir, log, worker_key=None,
                 rules: list[dict] | None = None) -> tuple[list[subprocess.Popen], list]:
    """The Locust process(es) of a run (or of a UI session: ``opts.ui``), their output pumped to ``log``;
    their settings and the live view's ``rules`` in ``run_dir``'s child.json."""
    config = child_config(opts, run_dir, rules or []).write(os.path.join(run_dir, rundir.CHILD))
    env = child_env(worker_key, config)
    lock = threading.Lock()
    pumps: list[threading.Thread] = []

    def spawn(cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True, cwd=os.getcwd())
        t = threading.Thread(target=_pump, args=(p.stdout, log, lock), daemon=True)
        t.start()
        pumps.append(t)
        return p
    if opts.ui:
        return [spawn(_locust_cmd(opts, files, user_classes, host, run_dir, "ui", None))], pumps
    if opts.expect_workers:
        return [spawn(_locust_cmd(opts, files, user_classes, host, run_dir, "master", None))], pumps
    if opts.workers == 1:
        return [spawn(_locust_cmd(opts, files, user_classes, host, run_dir, "local", None))], pumps
    port = free_port()
    master = spawn(_locust_cmd(opts, files, user_classes, host, run_dir, "master", port))
    return [master] + [spawn(_locust_cmd(opts, files, user_classes, host, run_dir, "worker", port))
                       for _ in range(opts.workers)], pumps


def _wait(procs, opts: RunOptions, intr: Interrupt, rec: RunRecord, progress: Progress,
          watch: ResourceWatch | None = None) -> None:
    main = procs[0]
    say = progress.say
    deadline = time.monotonic() + opts.time_limit_s + 60
    while main.poll() is None:
        progress.tick()
        if intr.reason:
            progress.done()
            say(f"loadgate: {intr.reason}; stopping Locust and keeping what was recorded")
            rec.interrupted = intr.reason
            stop_process(main, timeout=STOP_GRACE_S)
            break
        if watch is not None and watch.reason:  # a resource alert with abort_on_fail held over its window
            progress.done()
            say(f"loadgate: {watch.reason}; stopping Locust")
            rec.aborted = watch.reason
            stop_process(main, timeout=STOP_GRACE_S)
            break
        if time.monotonic() > deadline:
            rec.problems.append(f"Locust did not stop within {opts.time_limit_s + 60:.0f}s; it was killed")
            stop_process(main, timeout=STOP_GRACE_S)
            break
        time.sleep(0.2)
    progress.done()
    for p in procs[1:]:  # workers: their samples are confirmed by now; they quit when the master does
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            stop_process(p, timeout=2)
    for p in procs:
        stop_process(p, timeout=2)
    rec.meta["locust_exit_code"] = main.returncode


def collect(rec: RunRecord, opts: RunOptions) -> None:
    """Stream -> Parquet, recorder.json -> run.json, and the run's problems.

    On a full disk the samples that could be kept stay in the stream (``loadgate gate`` converts it later):
    run.json and the error then say how many of the requests Locust counted were lost."""
    rundir.release_space(rec.run_dir)  # left behind by a Locust that could not close its recorder
    stream = os.path.join(rec.run_dir, rundir.STREAM)
    unwritten: RunError | None = None
    if os.path.exists(stream):
        try:
            rec.samples = rundir.finalize_samples(rec.run_dir)
        except RunError as e:  # no room for samples.parquet: count what the stream keeps
            from loadgate.data.samples import stream_rows  # pyarrow: only when there is a stream

            unwritten, rec.samples = e, stream_rows(stream)
    recorder = read_recorder_report(rec.run_dir) or {}
    log_tail = _tail(os.path.join(rec.run_dir, rundir.LOCUST_LOG))
    if not recorder and "Gave up waiting for workers to connect" in log_tail:
        rec.problems.append(f"only some of the {opts.expect_workers or opts.workers} workers connected within "
                            f"{opts.worker_wait:g}s; start 'loadgate worker --master HOST:PORT' on each worker "
                            "machine and check it can reach the master")
    elif not recorder and not rec.interrupted:
        rec.problems.append(f"Locust crashed (exit code {rec.meta.get('locust_exit_code')}) before the "
                            f"recorder could close; see {rundir.LOCUST_LOG}")
    rec.aborted = recorder.get("aborted") or rec.aborted
    if recorder:
        _recorder_problems(rec, opts, recorder)
    rec.meta.update({
        "start": recorder.get("start") or rec.meta["start"],
        "ramp_up_done": recorder.get("ramp_up_done"),
        "end": recorder.get("end") or time.time(),
        "stop_reason": recorder.get("stop_reason") or rec.interrupted,
        "interrupted": rec.interrupted,
        "aborted": rec.aborted,
        "cpu": recorder.get("cpu"),
        "paced": recorder.get("paced"),
        "schedule": recorder.get("schedule"),
        "users_reached": recorder.get("users_reached"),
        "samples": rec.samples,
        "locust_requests": recorder.get("locust_requests"),
        "locust_failures": recorder.get("locust_failures"),
        "unanswered": recorder.get("unanswered"),
        "samples_lost": rundir.samples_lost(recorder, rec.samples) if recorder.get("write_error") else None,
        "write_error": recorder.get("write_error"),
        "worker_counts": recorder.get("workers"),
        "refused_workers": recorder.get("refused_workers") or [],
        "problems": rec.problems,
    })
    try:
        write_run(rec.run_dir, rec.meta)
    except OSError as e:
        raise RunError(f"{rec.run_dir}/{rundir.RUN}: cannot write ({e.strerror or e}); "
                       + "; ".join([*rec.problems, _keep_note(rec, stream if unwritten else None)])) from None
    for name in (rundir.RECORDER_META, rundir.PROGRESS):  # merged into run.json: no longer needed
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(rec.run_dir, name))
    if unwritten is not None:
        lost = [rundir.write_error_problem(recorder, rec.samples)] if recorder.get("write_error") else []
        raise RunError("; ".join([*lost, str(unwritten)])) from None


def _keep_note(rec: RunRecord, stream: str | None) -> str:
    where = stream or os.path.join(rec.run_dir, rundir.SAMPLES)
    return (f"the {rec.samples} samples recorded are kept in {where}: free some space, then run "
            f"'loadgate gate {rec.run_dir}'")


def _recorder_problems(rec: RunRecord, opts: RunOptions, recorder: dict) -> None:
    """The problems of a run that the recorder saw to its end."""
    if recorder.get("write_error"):
        rec.problems.append(rundir.write_error_problem(recorder, rec.samples))
    # a UI test has no planned user count; capacity: the user count changes by design (each step checks
    # users, saturation and lateness itself)
    if opts.ui or opts.capacity:
        pass
    elif recorder.get("ramp_up_done") is None and not rec.interrupted and not rec.aborted:
        rec.problems.append(f"ramp-up to {opts.users} users never completed "
                            f"(reached {recorder.get('users_reached', 0)})")
    elif (recorder.get("users_reached") or 0) < opts.users and not (rec.interrupted or rec.aborted or opts.capacity):
        rec.problems.append(f"users reached {recorder.get('users_reached')} < users requested {opts.users}")
    window_start = (recorder.get("ramp_up_done") or recorder.get("start") or 0) + opts.warmup
    if not opts.capacity:
        rec.problems.extend(saturation_problems(recorder.get("cpu") or {}, window_start,
                                                recorder.get("end") or time.time()))
        rec.problems.extend(lateness_problems(recorder.get("schedule") or {}, window_start,
                                              recorder.get("end") or time.time()))
    rec.problems.extend(worker_problems(recorder.get("workers") or {}, opts.allow_worker_loss))
    lost = (recorder.get("locust_requests") or 0) - rec.samples
    any_lost_worker = any((w or {}).get("lost") for w in (recorder.get("workers") or {}).values())
    if lost > 0 and not any_lost_worker and not recorder.get("write_error"):
        rec.problems.append(f"{lost} of {recorder['locust_requests']} requests Locust counted "
                            "were not recorded as samples")
    unanswered = recorder.get("unanswered") or {}
    if unanswered.get("requests"):  # failed samples already; the note names them for every reader (and why)
        rec.meta.setdefault("notes", []).append(unanswered_note(unanswered))
    if recorder.get("unhandled_exceptions"):
        first = (recorder.get("exceptions") or [""])[0]
        rec.problems.append(f"the scenario raised {recorder['unhandled_exceptions']} kind(s) of "
                            f"unhandled exception, first: {first}")


def unanswered_note(unanswered: Mapping) -> str:
    """The requests still unanswered when the run stopped, most frequent first (at most 5 named)."""
    by_request = sorted((unanswered.get("by_request") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    named = ", ".join(f"{redact(name)} x{n}" for name, n in by_request[:5]) + (", ..." if len(by_request) > 5 else "")
    n = unanswered["requests"]
    return (f"{n} request{'s' if n != 1 else ''} had no response when the run stopped ({named}): recorded as failed "
            f"samples ('no response before the run stopped'), timed from their start or the window's")


def _tail(path: str, size: int = 20000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_meta(opts: RunOptions, files: list[str], thresholds: Mapping[str, ThresholdFile], host: str,
              embedded: bool, started: float) -> RunDoc:
    hashes = {f: rundir.sha256_file(f) for f in files}
    return {
        "schema": "loadgate.run/1",
        "requirements": list(opts.requirements),
        "users": opts.users, "spawn_rate": opts.spawn_rate, "duration": opts.duration,
        "warmup": opts.warmup, "host": host, "embedded_target": embedded,
        "workers": opts.expect_workers or opts.workers, "remote_workers": bool(opts.expect_workers),
        "worker_auth": opts.worker_auth, "notes": [INSECURE_NOTE] if opts.worker_auth == "insecure" else [],
        "strict": opts.strict,
        "start": started, "ramp_up_done": None, "end": None,
        "versions": rundir.versions(), "git": rundir.git_commit(),
        "command_line": list(opts.command_line), "cwd": os.getcwd(),
        "scenario_files": hashes,
        "threshold_files": {tf.path: tf.sha256 for tf in thresholds.values()},  # as parsed, not re-read
        "options": asdict(opts),
    }
