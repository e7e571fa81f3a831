"""Evidence that holds: run.json's manifest, ``loadgate verify``, Ed25519 signatures, the audit log.

One real, signed run against the embedded demo target; every tampering test works on a copy of it.
"""

from __future__ import annotations

import json
import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import E2E, load, run_cli, run_dir_of
from loadgate.data.signing import key_id, load_public_key, public_raw

SCEN, THR = str(E2E / "scenarios"), str(E2E / "thresholds")


def _write_key(path, key=None):
    key = key or Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pub = path.with_suffix(".pub")
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path, pub


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """(run directory of a real signed run, private key file, public key file)."""
    base = tmp_path_factory.mktemp("signed")
    key, pub = _write_key(base / "signing.pem")
    out = base / "reports"
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        SCEN,
        "--thresholds",
        THR,
        "--out",
        str(out),
        "--users",
        "3",
        "--duration",
        "3s",
        "--signing-key",
        str(key),
    )
    assert res.code == 0, res.stderr
    return run_dir_of(out), key, pub


@pytest.fixture
def copy(signed, tmp_path):
    """A copy of the signed run directory, free to tamper with."""
    run_dir = tmp_path / signed[0].name
    shutil.copytree(signed[0], run_dir)
    return run_dir


def test_a_real_run_ends_run_json_with_its_manifest_and_verifies(signed):
    run_dir, _key, _pub = signed
    run = load(run_dir, "run.json")
    assert list(run)[-1] == "manifest"
    manifest = run["manifest"]
    names = {p.name for p in run_dir.iterdir()} - {"run.json"}
    assert set(manifest["files"]) == names and {"samples.parquet", "report.html", "junit.xml"} <= names
    (entry,) = run["audit"]
    assert entry["command"].startswith("loadgate run --requirement REQ-T-PASS") and entry["signed_by"]
    res = run_cli("verify", str(run_dir))
    assert res.code == 0, res.stdout + res.stderr
    assert (
        f"intact: {len(names)} files and run.json match the manifest (evidence sha256 {manifest['evidence']}); "
        f"signed by Ed25519 key {entry['signed_by']}; pass --public-key" in res.stdout
    )


def test_the_report_shows_the_manifest_digest_and_the_signature(signed):
    run_dir, _key, _pub = signed
    manifest = load(run_dir, "run.json")["manifest"]
    html = (run_dir / "report.html").read_text()
    assert f"sha256 {manifest['evidence']} of every file of the run directory but this report" in html
    assert f"yes, Ed25519 key {manifest['signature']['key_id']}" in html


def test_a_signed_run_verifies_with_its_public_key(signed):
    run_dir, _key, pub = signed
    res = run_cli("verify", str(run_dir), "--public-key", str(pub))
    assert res.code == 0, res.stdout + res.stderr
    assert "(--public-key)" in res.stdout


def test_a_wrong_public_key_is_exit_1(signed, tmp_path):
    run_dir, _key, _pub = signed
    _other, other_pub = _write_key(tmp_path / "other.pem")
    res = run_cli("verify", str(run_dir), "--public-key", str(other_pub))
    assert res.code == 1
    kid = load(run_dir, "run.json")["manifest"]["signature"]["key_id"]
    assert res.stdout.splitlines() == [
        f"{run_dir}: signature: made with key {kid}, not with the --public-key "
        f"{key_id(public_raw(load_public_key(str(other_pub))))}"
    ]


def test_one_flipped_byte_in_the_samples_is_named(copy):
    path = copy / "samples.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    res = run_cli("verify", str(copy))
    assert res.code == 1
    assert res.stdout.splitlines() == [f"{copy}: samples.parquet: changed"]
    assert "does not match its manifest (1 problem(s))" in res.stderr


def test_an_edited_verdict_is_exit_1(copy):
    verdict = load(copy, "verdict.json")
    verdict["thresholds"][0]["value"] = 1.0  # a nicer p95 than was measured
    (copy / "verdict.json").write_text(json.dumps(verdict, indent=2) + "\n")
    res = run_cli("verify", str(copy))
    assert res.code == 1 and f"{copy}: verdict.json: changed" in res.stdout.splitlines()


def test_a_deleted_junit_and_an_added_file_are_named(copy):
    (copy / "junit.xml").unlink()
    (copy / "extra.txt").write_text("not from loadgate")
    res = run_cli("verify", str(copy))
    assert res.code == 1
    assert res.stdout.splitlines() == [
        f"{copy}: extra.txt: added after the manifest was written",
        f"{copy}: junit.xml: missing",
    ]


def test_an_edited_run_json_is_exit_1(copy):
    run = load(copy, "run.json")
    run["users"] = 1000
    (copy / "run.json").write_text(json.dumps(run, indent=2))
    res = run_cli("verify", str(copy))
    assert res.code == 1 and "run.json: changed (its content besides the manifest)" in res.stdout


def test_a_rewritten_manifest_without_the_key_breaks_the_signature(copy):
    """Whoever edits a file and recomputes the hashes still cannot sign: the old signature no longer holds."""
    from loadgate.data import manifest as m

    (copy / "verdict.json").write_text('{"verdict": "pass"}\n')
    run = load(copy, "run.json")
    files = m.file_hashes(str(copy))
    body = m.run_json_digest(run)
    run["manifest"].update(files=files, run_json=body, **dict(zip(("evidence", "digest"), m.digests(files, body))))
    (copy / "run.json").write_text(json.dumps(run, indent=2))
    res = run_cli("verify", str(copy))
    kid = run["manifest"]["signature"]["key_id"]
    assert res.code == 1
    assert res.stdout.splitlines() == [
        f"{copy}: signature: does not hold for key {kid}: the manifest was edited after it was signed"
    ]  # the hashes match: only the signature catches it   # the hashes match: only the signature catches it


def test_not_a_run_directory_is_exit_2(tmp_path):
    res = run_cli("verify", str(tmp_path))
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate verify: error: {tmp_path}: not a run directory (no run.json); pass a "
        "folder written by 'loadgate run', e.g. reports/20260101T120000Z-REQ-PERF-001"
    ]


def test_a_run_json_without_manifest_is_exit_1(copy):
    run = load(copy, "run.json")
    del run["manifest"]
    (copy / "run.json").write_text(json.dumps(run))
    res = run_cli("verify", str(copy))
    assert res.code == 1 and "run.json: has no manifest" in res.stdout


def test_gate_and_report_reseal_and_log_themselves(copy, signed):
    _run_dir, key, pub = signed
    res = run_cli("gate", str(copy), "--thresholds", THR, "--signing-key", str(key))
    assert res.code == 0, res.stderr
    res = run_cli("report", str(copy), env={"LOADGATE_SIGNING_KEY": key.read_text()})
    assert res.code == 0, res.stderr
    audit = load(copy, "run.json")["audit"]
    assert [e["command"].split()[:2] for e in audit] == [
        ["loadgate", "run"],
        ["loadgate", "gate"],
        ["loadgate", "report"],
    ]
    assert "verdict.json" in audit[1]["rewrote"] and audit[2]["rewrote"] == ["report.html"]
    assert all(e["by"] and e["at"] and "found" not in e for e in audit)
    assert run_cli("verify", str(copy), "--public-key", str(pub)).code == 0
    html = (copy / "report.html").read_text()
    assert html.count("<dt>Written by</dt>") == 3 and load(copy, "run.json")["manifest"]["evidence"] in html


def test_an_unsigned_regate_fails_a_check_with_the_public_key(copy, signed):
    res = run_cli("gate", str(copy), "--thresholds", THR, env={"LOADGATE_SIGNING_KEY": ""})
    assert res.code == 0, res.stderr
    assert run_cli("verify", str(copy)).code == 0  # intact, but nobody vouches for it
    res = run_cli("verify", str(copy), "--public-key", str(signed[2]))
    assert res.code == 1 and "the manifest is not signed, but --public-key expects a signature" in res.stdout


def test_a_regate_does_not_launder_an_edit(copy, signed):
    """Thinned-out samples (the slowest tenth dropped), then 'loadgate gate' with the key: the new manifest covers
    the edit, the audit log keeps it."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = copy / "samples.parquet"
    table = pq.read_table(path)
    limit = pc.quantile(table.column("response_time_ms"), q=0.9)[0].as_py()
    pq.write_table(table.filter(pc.less_equal(table.column("response_time_ms"), limit)), path)
    (copy / "verdict.json").write_text("{}")  # regenerated by gate: not an edit that survives
    res = run_cli("gate", str(copy), "--thresholds", THR, "--signing-key", str(signed[1]))
    assert res.code == 0, res.stderr
    gate = load(copy, "run.json")["audit"][-1]
    assert gate["found"] == {"samples.parquet": "changed", "verdict.json": "changed"}
    res = run_cli("verify", str(copy), "--public-key", str(signed[2]))
    assert res.code == 1
    assert res.stdout.splitlines() == [
        f"{copy}: samples.parquet: was changed before '{gate['command']}' by "
        f"{gate['by']} re-sealed the run; the manifest has covered the edit since"
    ]
    assert (copy / "report.html").read_text().count("found before: samples.parquet changed, verdict.json changed") == 1


@pytest.mark.parametrize("damage", ["truncated", "a-page-overwritten"])
def test_report_on_damaged_samples_is_exit_2_naming_them_and_reseals_nothing(copy, damage):
    samples = copy / "samples.parquet"
    data = samples.read_bytes()
    if damage == "truncated":
        samples.write_bytes(data[: len(data) // 2])
    else:  # the footer reads, a data page's checksum does not hold
        samples.write_bytes(data[:100] + b"X" * 40 + data[140:])
    run_json, report = (copy / "run.json").read_bytes(), (copy / "report.html").read_bytes()
    res = run_cli("report", str(copy))
    assert res.code == 2, res.stdout + res.stderr
    assert res.error_lines[0].startswith(f"loadgate report: error: {samples}: truncated or corrupt Parquet file")
    assert (copy / "run.json").read_bytes() == run_json and (copy / "report.html").read_bytes() == report
    verify = run_cli("verify", str(copy))  # the damage is still named: nothing re-sealed over it
    assert verify.code == 1 and f"{copy}: samples.parquet: changed" in verify.stdout


def test_report_elsewhere_leaves_the_run_directory_alone(copy, tmp_path):
    before = (copy / "run.json").read_bytes()
    res = run_cli("report", str(copy), "-o", str(tmp_path / "copy.html"))
    assert res.code == 0, res.stderr
    assert (copy / "run.json").read_bytes() == before and run_cli("verify", str(copy)).code == 0


@pytest.mark.parametrize(
    "env, flag, expected",
    [
        (
            {"LOADGATE_SIGNING_KEY": "/etc/signing.pem"},
            [],
            "loadgate gate: error: $LOADGATE_SIGNING_KEY: expected the PEM text of an Ed25519 private key "
            "('-----BEGIN PRIVATE KEY-----…'); for a key file use --signing-key FILE",
        ),
        (
            {},
            ["--signing-key", "/nonexistent/k.pem"],
            "loadgate gate: error: --signing-key /nonexistent/k.pem: cannot read it (No such file or directory); create one "
            "with 'openssl genpkey -algorithm ed25519 -out signing.pem' (public half: 'openssl pkey -in signing.pem "
            "-pubout -out signing.pub')",
        ),
    ],
    ids=["env-not-pem", "missing-file"],
)
def test_a_bad_signing_key_is_exit_2_and_changes_nothing(copy, env, flag, expected):
    before = (copy / "run.json").read_bytes()
    res = run_cli("gate", str(copy), "--thresholds", THR, *flag, env=env)
    assert res.code == 2 and res.error_lines == [expected]
    assert (copy / "run.json").read_bytes() == before


def test_an_rsa_key_is_refused(tmp_path, copy):
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    res = run_cli("report", str(copy), "--signing-key", str(path))
    assert res.code == 2 and "a RSAPrivateKey key, expected Ed25519" in res.error_lines[0]


def test_an_insecure_worker_note_is_a_reason_that_changes_no_status(copy):
    """What --insecure-workers leaves in run.json reaches the verdict's reasons; the verdict stays pass."""
    run = load(copy, "run.json")
    from loadgate.shared.keys import INSECURE_NOTE

    run["notes"] = [INSECURE_NOTE]
    (copy / "run.json").write_text(json.dumps(run, indent=2))
    res = run_cli("gate", str(copy), "--thresholds", THR)
    assert res.code == 0, res.stderr
    verdict = load(copy, "verdict.json")
    assert verdict["verdict"] == "pass" and verdict["reasons"] == [INSECURE_NOTE]
    assert load(copy, "run.json")["audit"][-1]["found"] == {"run.json": "changed"}


def test_the_audit_block_escapes_what_it_shows(signed):
    """Commands, user names and refused workers' reasons are shown as text, never as markup."""
    from loadgate.outputs.report import build_report

    run_dir = signed[0]
    run = load(run_dir, "run.json")
    run["audit"][0]["command"] = "loadgate gate <script>alert(1)</script>"
    run["refused_workers"] = [{"address": "<img src=x onerror=alert(2)>", "reason": "wrong worker key", "attempts": 3}]
    run["worker_auth"] = "curve"
    html = build_report(
        str(run_dir), verdict=load(run_dir, "verdict.json"), summary=load(run_dir, "summary.json"), run=run
    )
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;: wrong worker key (3 attempts)" in html
    assert "authenticated and encrypted (CURVE, shared worker key)" in html
