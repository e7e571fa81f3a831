"""Deployment as code: the Kubernetes manifests, the Compose file and the image recipe.

No cluster or Docker engine is needed: the manifests are validated against the Kubernetes API
schemas that ``kubernetes-validate`` ships (strict: unknown fields are errors), the Compose file
against the compose-spec JSON schema vendored in tests/data/compose-spec.json, and the commands in
both are parsed by loadgate's own argument parser, so they can't drift from the CLI. Each check is
also run on a deliberately broken copy, to show it fails.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

kv = pytest.importorskip("kubernetes_validate.utils", reason="pip install -e '.[test]' (kubernetes-validate)")

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
K8S_VERSION = "1.30.0"
NOT_IN_KUSTOMIZATION = {"report-reader.yaml"}  # applied by hand after the Job, to copy reports out
REQ_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
# Flags of distributed runs that the manifests use; the CLI parser must know them for the command checks.
NEEDED_FLAGS = {"run": {"--expect-workers", "--master-bind", "--worker-wait"}, "worker": {"--master", "--scenarios"}}


# --- helpers ---------------------------------------------------------------------------------------


def k8s_errors(path: Path) -> list[str]:
    """Every schema error of every document in ``path``; a kind with no schema is an error too."""
    errors = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        name = f"{path.name}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as e:
            errors.append(f"{name}: {'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}")
        except kv.SchemaNotFoundError as e:
            errors.append(f"{name}: {e.message}")
    return errors


def compose_errors(path: Path) -> list[str]:
    """Errors of a Compose file against compose-spec, plus its service constraint (image or build)."""
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    doc = yaml.safe_load(path.read_text())
    errors = [
        f"{'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}"
        for e in jsonschema.Draft201909Validator(schema).iter_errors(doc)
    ]
    service_rule = {"$ref": "#/definitions/constraints/service", "definitions": schema["definitions"]}
    for name, service in ((doc or {}).get("services") or {}).items():
        errors += [
            f"services.{name}: {e.message}" for e in jsonschema.Draft201909Validator(service_rule).iter_errors(service)
        ]
    return errors


def manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> dict[tuple[str, str], dict]:
    """(kind, name) -> document, over every manifest."""
    out = {}
    for path in manifests():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def broken_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"{source.name} no longer contains {old!r}: update this negative test"
    bad = tmp_path / source.name
    bad.write_text(text.replace(old, new, 1))
    return bad


def cli_parser() -> argparse.ArgumentParser:
    """loadgate's parser, or a skip while the flags the manifests use are not in the CLI yet."""
    from loadgate.cli import build_parser

    parser = build_parser()
    subs = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"loadgate {cmd} {flag}"
        for cmd, flags in NEEDED_FLAGS.items()
        for flag in sorted(flags)
        if cmd not in subs or flag not in subs[cmd]._option_string_actions
    ]
    if missing:
        pytest.skip(f"the CLI has no {', '.join(missing)} yet")
    return parser


def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and ${VAR?error}, over ``env``."""
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        have = env.get(name)
        if op in (":-", "-"):
            return have if have or (op == "-" and have is not None) else arg
        if op in (":?", "?") and not have:
            raise AssertionError(f"compose needs ${name}: {arg}")
        return have or ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", one, value)


def container(doc: dict) -> dict:
    pod = doc["spec"]["template"]["spec"] if doc["kind"] != "Pod" else doc["spec"]
    (c,) = pod["containers"]
    return c


def mounts_by_volume(doc: dict) -> dict[str, tuple[str, dict]]:
    """volume source name (ConfigMap or claim) -> (mount path, volume), for the pod's one container."""
    pod = doc["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for m in container(doc)["volumeMounts"]:
        v = volumes[m["name"]]
        source = (v.get("configMap") or {}).get("name") or (v.get("persistentVolumeClaim") or {}).get("claimName")
        out[source or m["name"]] = (m["mountPath"], v)
    return out


# --- Kubernetes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schema(path):
    assert k8s_errors(path) == []


@pytest.mark.parametrize(
    "source, old, new, expected",
    [
        (
            "worker-deployment.yaml",
            "  replicas: 4",
            "  replicas: four",
            "spec.replicas: 'four' is not of type 'integer'",
        ),
        ("master-job.yaml", "          args:", "          arguments:", "'arguments' was unexpected"),
        ("master-service.yaml", "kind: Service", "kind: Servise", "Couldn't find schema for kind Servise"),
        ("master-job.yaml", "  backoffLimit: 0", "  backoffLimit: 0\n  retries: 2", "'retries' was unexpected"),
    ],
    ids=["wrong-type", "unknown-container-field", "misspelt-kind", "unknown-spec-field"],
)
def test_broken_manifest_is_rejected(tmp_path, source, old, new, expected):
    errors = k8s_errors(broken_copy(tmp_path, K8S / source, old, new))
    assert any(expected in e for e in errors), errors


def test_kustomization_lists_every_manifest_and_the_image():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert (kust["apiVersion"], kust["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    listed = kust["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in manifests()} - NOT_IN_KUSTOMIZATION
    images = {
        c["image"].split(":")[0]
        for doc in resources().values()
        if doc["kind"] in ("Job", "Deployment", "Pod")
        for c in [container(doc)]
    }
    assert images == {i["name"] for i in kust["images"]}


def test_configmaps_are_the_repository_scenarios_and_thresholds():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_configmaps", ROOT / "deploy" / "render_configmaps.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    expected = render.render(str(ROOT / "scenarios"), str(ROOT / "thresholds"))
    assert (K8S / "configmaps.yaml").read_text() == expected, (
        "deploy/kubernetes/configmaps.yaml is out of date: run python deploy/render_configmaps.py"
    )


def test_requirement_annotations_name_the_requirements_run():
    docs = resources()
    job = docs[("Job", "loadgate-master")]
    args = container(job)["args"]
    reqs = [args[i + 1] for i, a in enumerate(args) if a == "--requirement"]
    assert reqs and all(REQ_ID.match(r) for r in reqs)
    thresholds = docs[("ConfigMap", "loadgate-thresholds")]["data"]
    for r in reqs:
        assert f"{r}.yaml" in thresholds and f"requirement: {r}" in thresholds[f"{r}.yaml"]
    for key in [("Job", "loadgate-master"), ("Deployment", "loadgate-worker"), ("Service", "loadgate-master")]:
        doc = docs[key]
        assert doc["metadata"]["annotations"]["loadgate.io/requirements"] == ",".join(reqs), key
        if "template" in doc["spec"]:
            assert doc["spec"]["template"]["metadata"]["annotations"]["loadgate.io/requirements"] == ",".join(reqs)


def test_master_and_worker_commands_are_true_to_the_cli():
    parser = cli_parser()
    docs = resources()
    job, workers = docs[("Job", "loadgate-master")], docs[("Deployment", "loadgate-worker")]
    service = docs[("Service", "loadgate-master")]

    master = parser.parse_args(container(job)["args"])
    assert master.command == "run"
    assert master.expect_workers == workers["spec"]["replicas"], "--expect-workers must equal the worker replicas"
    bind_host, bind_port = master.master_bind.rsplit(":", 1)
    assert bind_host == "0.0.0.0"  # the explicit way to listen beyond loopback, for the workers
    (port,) = service["spec"]["ports"]
    assert int(bind_port) == port["port"]
    assert port["targetPort"] in [p["name"] for p in container(job)["ports"] if p["containerPort"] == int(bind_port)]
    assert master.host.startswith(("http://", "https://"))  # remote workers can't reach the embedded target
    mounts = mounts_by_volume(job)
    assert master.scenarios == mounts["loadgate-scenarios"][0]
    assert master.thresholds == mounts["loadgate-thresholds"][0]
    assert master.out == mounts["loadgate-reports"][0]

    worker = parser.parse_args(container(workers)["args"])
    assert worker.command == "worker"
    assert worker.master == f"{service['metadata']['name']}:{port['port']}"
    assert worker.scenarios == mounts_by_volume(workers)["loadgate-scenarios"][0]

    labels = job["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items()), "the Service must select the master"
    worker_labels = workers["spec"]["template"]["metadata"]["labels"]
    assert not all(worker_labels.get(k) == v for k, v in service["spec"]["selector"].items())


def test_master_and_workers_take_the_worker_key_from_one_secret():
    """The master listens beyond loopback (0.0.0.0 for the Service), so both sides need the shared worker key;
    it comes from a Secret the operator creates, never from a value in the repository."""
    parser = cli_parser()
    docs = resources()
    refs = []
    for key in [("Job", "loadgate-master"), ("Deployment", "loadgate-worker")]:
        env = {e["name"]: e for e in container(docs[key]).get("env") or []}
        assert "value" not in env["LOADGATE_WORKER_KEY"], key
        refs.append(env["LOADGATE_WORKER_KEY"]["valueFrom"]["secretKeyRef"])
    assert refs[0] == refs[1] and refs[0]["name"] == "loadgate-worker-key"
    assert ("Secret", "loadgate-worker-key") not in docs
    master = parser.parse_args(container(docs[("Job", "loadgate-master")])["args"])
    assert not master.insecure_workers


def test_pods_run_as_the_image_user_without_privileges():
    uid = int(re.findall(r"^USER\s+(\d+)", DOCKERFILE.read_text(), re.M)[-1])
    for doc in resources().values():
        if doc["kind"] not in ("Job", "Deployment", "Pod"):
            continue
        pod = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        c = container(doc)
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["resources"]["requests"] and c["resources"]["limits"]


# --- Compose ---------------------------------------------------------------------------------------


def test_vendored_compose_schema_is_a_valid_schema():
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft201909Validator.check_schema(schema)


def test_compose_file_validates_against_compose_spec():
    assert compose_errors(COMPOSE) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "      replicas: ${LOADGATE_WORKERS:-4}",
            "      replica: ${LOADGATE_WORKERS:-4}",
            "deploy: 'replica' does not match",
        ),
        ("  read_only: true", "  read_only: true\n  restart_policy: always", "'restart_policy' does not match"),
        (
            "  image: ${LOADGATE_IMAGE:-loadgate:0.1.0}\n  build:\n    context: ../..\n    dockerfile: deploy/Dockerfile\n",
            "",
            "is not valid under any of the given schemas",
        ),
    ],
    ids=["misspelt-key", "unknown-service-key", "neither-image-nor-build"],
)
def test_broken_compose_file_is_rejected(tmp_path, old, new, expected):
    errors = compose_errors(broken_copy(tmp_path, COMPOSE, old, new))
    assert any(expected in e for e in errors), errors


def test_compose_commands_are_true_to_the_cli():
    parser = cli_parser()
    doc = yaml.safe_load(COMPOSE.read_text())
    env = {"LOADGATE_HOST": "http://sut.test:8080", "LOADGATE_WORKER_KEY": "k" * 64}
    services = interpolate(doc["services"], env)
    for name in ("master", "worker"):  # the master binds 0.0.0.0 in its container: both sides need the shared key
        assert services[name]["environment"]["LOADGATE_WORKER_KEY"] == "k" * 64
    with pytest.raises(AssertionError, match="LOADGATE_WORKER_KEY"):
        interpolate(doc["services"], {"LOADGATE_HOST": "http://sut.test:8080"})  # no silent default for the key
    master = parser.parse_args(services["master"]["command"])
    worker = parser.parse_args(services["worker"]["command"])
    assert (master.command, worker.command) == ("run", "worker")
    assert master.expect_workers == int(services["worker"]["deploy"]["replicas"])
    assert master.master_bind.endswith(":5557") and worker.master == "master:5557"
    assert services["master"]["ports"] == ["127.0.0.1:5557:5557"]  # loopback unless the user asks
    assert master.out == "/reports" and "reports:/reports" in services["master"]["volumes"]
    mounted = {v.split(":")[1] for v in services["worker"]["volumes"]}
    assert worker.scenarios in mounted and master.scenarios in {v.split(":")[1] for v in services["master"]["volumes"]}
    with pytest.raises(AssertionError, match="LOADGATE_HOST"):
        interpolate(doc["services"]["master"]["command"], {})  # no silent default for the system under test


# --- image -----------------------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_loadgate_image():
    text = DOCKERFILE.read_text()
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.lstrip().startswith("#")]
    instructions = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(op == "RUN" and "pip install ." in arg for op, arg in instructions)
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    last_run = max(i for i, (op, _) in enumerate(instructions) if op == "RUN")
    assert max(i for i, (op, _) in enumerate(instructions) if op == "USER") > last_run
    assert json.loads(dict(instructions)["ENTRYPOINT"]) == ["loadgate"]
    for op, arg in instructions:  # every file the image copies exists in the build context (the repo root)
        if op == "COPY":
            sources = [s for s in arg.split()[:-1] if not s.startswith("--") and "*" not in s]
            assert all((ROOT / s).exists() for s in sources), arg


def test_dockerignore_keeps_what_the_image_copies():
    patterns = [
        l.strip()
        for l in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
        if l.strip() and not l.startswith("#")
    ]
    assert patterns[0] == "*"
    kept = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert {"pyproject.toml", "loadgate", "scenarios", "thresholds"} <= kept
