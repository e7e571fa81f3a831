"""child.json: what the CLI writes for its Locust children, and what a child reads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loadgate.run.capacity_search import CapacityPlan
from loadgate.run.drivers.capacity import Capacity
from loadgate.run.drivers.headless import Headless
from loadgate.run.drivers.ui import WebUi
from loadgate.run.launch import child_config, locust_cmd
from loadgate.run.options import RunOptions
from loadgate.shared.child import CONFIG_ENV, ChildConfig, child_env, read_child_config

ROOT = Path(__file__).resolve().parent.parent
OPTS = RunOptions(
    requirements=("REQ-A-1", "REQ-B-2"),
    users=4,
    spawn_rate=2.0,
    duration=30.0,
    warmup=1234567.0,
    host=None,
    scenarios="s",
    thresholds="t",
    out="reports-x",
    flush_interval=0.5,
    select="journeys",
)
RULES = [{"requirement": "REQ-A-1", "metric": "p95", "request": None, "op": ">", "value": 300.0, "text": ">300ms"}]


CAPACITY = Capacity(CapacityPlan(2, 8, 3.0, 0.25, 60.0), {})
UI = WebUi(8089, lambda run_dir: 0)


def test_each_driver_gets_its_settings_and_the_values_the_flags_used_to_carry(tmp_path):
    run = child_config(OPTS, Headless(), str(tmp_path), RULES)
    # the flags carried "{warmup:g}" and "{duration:g}": the same values, to the bit
    assert run == ChildConfig(
        ["REQ-A-1", "REQ-B-2"], "journeys", 0.5, float(f"{1234567.0:g}"), RULES, dir=str(tmp_path), duration=30.0
    )
    assert child_config(OPTS, CAPACITY, "d", []).duration is None  # the CLI ends a capacity run
    ui = child_config(OPTS, UI, "session", [])
    assert (ui.dir, ui.ui, ui.out, ui.duration) == (None, "session", "reports-x", None)
    for driver in (Headless(), CAPACITY, UI):
        for role in ("local", "master", "worker"):
            cmd = locust_cmd(OPTS, driver, ["f.py"], ["U"], "http://127.0.0.1:1", role, 5557)
            assert not [a for a in cmd if a.startswith("--loadgate-")], cmd  # Locust's own flags only


def test_each_driver_adds_its_part_of_locusts_command_line():
    def cmd(driver, role="local"):
        return locust_cmd(OPTS, driver, ["f.py"], ["U"], "http://127.0.0.1:1", role, 5557)

    headless, capacity, ui = cmd(Headless()), cmd(CAPACITY), cmd(UI)
    assert headless[headless.index("-u") : headless.index("-u") + 4] == ["-u", "4", "-r", "2"]
    assert "--run-time" in headless and "--headless" in headless
    assert "-u" not in capacity and "--run-time" not in capacity and "--headless" in capacity
    assert capacity[capacity.index("-f") + 1].endswith("capacity_shape.py")  # the shape sets the users
    assert not cmd(CAPACITY, "worker")[cmd(CAPACITY, "worker").index("-f") + 1].endswith("capacity_shape.py")
    assert "--headless" not in ui and ui[ui.index("--web-port") + 1] == "8089" and "--run-time" not in ui
    master = cmd(Headless(), "master")
    assert "--master" in master and master[master.index("--master-bind-port") + 1] == "5557"
    worker = cmd(Headless(), "worker")
    assert "--worker" in worker and "-u" not in worker and worker[-1] == "U"


def test_it_round_trips_and_a_worker_drops_the_run_directory_keys(tmp_path):
    cfg = child_config(OPTS, Headless(), str(tmp_path), RULES)
    path = cfg.write(str(tmp_path / "child.json"))
    assert ChildConfig.read(path) == cfg
    assert json.loads(Path(path).read_text())["rules"] == RULES
    worker = cfg.for_worker()
    assert (worker.dir, worker.duration, worker.ui) == (None, None, None)
    assert (worker.requirements, worker.select, worker.warmup, worker.rules) == (
        cfg.requirements,
        "journeys",
        cfg.warmup,
        RULES,
    )


def test_the_environment_names_the_file_and_without_one_the_defaults_and_loadgate_dir_apply(tmp_path):
    path = ChildConfig(["REQ-A-1"], dir="x").write(str(tmp_path / "child.json"))
    env = child_env(None, path)
    assert env[CONFIG_ENV] == path and read_child_config(env).requirements == ["REQ-A-1"]
    assert CONFIG_ENV not in child_env(None)  # a child started without one (the probe, the demo target)
    assert read_child_config({"LOADGATE_DIR": "/runs/a"}) == ChildConfig(dir="/runs/a")
    assert read_child_config({}) == ChildConfig()


def test_the_locust_process_takes_them_as_its_option_defaults_and_a_flag_still_wins(tmp_path):
    """The recorder's options in a real Locust parser, as the plugin registers them."""
    path = child_config(OPTS, Headless(), str(tmp_path), RULES).write(str(tmp_path / "child.json"))
    code = (
        "import json, sys\n"
        "from locust import argument_parser, events\n"
        "from loadgate.plugin import hooks\n"
        "events.init_command_line_parser.add_listener(hooks._add_arguments)\n"
        "parser = argument_parser.get_parser()\n"
        "o = parser.parse_args(sys.argv[1:])\n"
        "print(json.dumps({k: v for k, v in vars(o).items() if k.startswith('loadgate_')}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{CONFIG_ENV: path})
    env.pop("LOADGATE_OFFLOAD_ROWS", None)

    def options(*args):
        out = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    got = options()
    assert {
        k: got[k]
        for k in (
            "loadgate_dir",
            "loadgate_requirements",
            "loadgate_duration",
            "loadgate_warmup",
            "loadgate_flush",
            "loadgate_select",
            "loadgate_ui",
            "loadgate_out",
            "loadgate_rules",
        )
    } == {
        "loadgate_dir": str(tmp_path),
        "loadgate_requirements": "REQ-A-1,REQ-B-2",
        "loadgate_duration": 30.0,
        "loadgate_warmup": float(f"{1234567.0:g}"),
        "loadgate_flush": 0.5,
        "loadgate_select": "journeys",
        "loadgate_ui": None,
        "loadgate_out": "reports",
        "loadgate_rules": None,
    }  # out: a UI session's only
    assert options("--loadgate-select", "tasks", "--loadgate-flush", "2")["loadgate_select"] == "tasks"
