"""Authenticated, encrypted master/worker channel: ZeroMQ CURVE on Locust's own sockets.

Locust's master (a ROUTER socket) and workers (DEALER sockets) speak ZeroMQ with no authentication.
When ``$LOADGATE_WORKER_KEY`` is set in a Locust child, :func:`install` wraps
``locust.rpc.zmqrpc.BaseSocket.__init__`` so that every socket is made a CURVE server or client right
after Locust creates it and before it binds or connects. Both key pairs derive from the shared secret
(SHA-256 of a label and the secret), so a worker needs the secret both to know the master's public
key and to own the one worker key the master's ZAP handler lets in. A worker without the key (plain
ZMTP) or with another key fails the handshake: libzmq drops the connection before Locust sees a
single message, so nothing it sends can reach the recorder. The socket monitor names each refused
peer (its address, why, how often it tried) in :data:`REFUSED`, which the recorder puts in run.json.

Imported only in the Locust child processes (zmq, gevent), through the recorder plugin.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time

import gevent
import zmq.green as zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from loadgate.plugin.compat import wrap_socket_init
from loadgate.shared.keys import ENV_WORKER_KEY

log = logging.getLogger("loadgate.plugin.worker_auth")

REFUSED: list[dict] = []  # master: {"address", "reason", "attempts", "first", "last"} per refused peer and reason
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_FAILED = {zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL}
_WHY = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "no worker key (an unencrypted connection)",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "wrong worker key",
}


def keypairs(secret: str) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """((master public, master secret), (worker public, worker secret)), Z85-encoded, derived from ``secret``."""
    pairs = []
    for role in (b"master", b"worker"):
        sec = z85.encode(hashlib.sha256(b"loadgate worker channel/1 " + role + b"\0" + secret.encode()).digest())
        pairs.append((zmq.curve_public(sec), sec))
    return pairs[0], pairs[1]


def install(environ=os.environ) -> bool:
    """Put CURVE on every Locust socket of this process when the worker key is set; True if it did."""
    secret = environ.get(ENV_WORKER_KEY)
    if not secret:
        return False
    master, worker = keypairs(secret)

    def keyed(wrapper, sock_type) -> None:
        if sock_type == zmq.ROUTER:  # the master's server socket, before it binds
            _serve(wrapper.socket, master, worker[0])
        else:  # a worker's client socket, before it connects
            wrapper.socket.curve_serverkey = master[0]
            wrapper.socket.curve_publickey, wrapper.socket.curve_secretkey = worker

    return wrap_socket_init(keyed, "_loadgate_curve")


def _serve(sock, master: tuple[bytes, bytes], worker_public: bytes) -> None:
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = master
    sock.zap_domain = b"loadgate"
    zap = sock.context.socket(zmq.REP)
    zap.bind(ZAP_ENDPOINT)  # the ZAP handler must exist before the first peer connects
    monitor = sock.get_monitor_socket(
        zmq.EVENT_ACCEPTED
        | zmq.EVENT_DISCONNECTED
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    )
    gevent.spawn(_zap_loop, zap, z85.decode(worker_public))
    gevent.spawn(_monitor_loop, monitor)


def _zap_loop(zap, allowed: bytes) -> None:
    """ZAP (RFC 27): a CURVE peer is let in only with the worker public key of the shared secret."""
    while True:
        frames = zap.recv_multipart()
        version, request_id, _domain, _address, _identity, mechanism, *credentials = frames
        ok = mechanism == b"CURVE" and credentials == [allowed]
        zap.send_multipart(
            [
                version,
                request_id,
                b"200" if ok else b"400",
                b"OK" if ok else b"not the run's worker key",
                b"worker" if ok else b"",
                b"",
            ]
        )


def _peer(fd: int) -> str | None:
    """The remote address of a just-accepted connection (its file descriptor, from the monitor)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as s:
            return str(s.getpeername()[0])
    except (OSError, IndexError):  # already closed again: the address is lost, the refusal is not
        return None


def _monitor_loop(monitor) -> None:
    """Accepted -> (handshake failed) -> disconnected, per connection: record each refused peer."""
    peers: dict[int, str | None] = {}
    failed: str | None = None
    while True:
        event = recv_monitor_message(monitor)
        kind, value = event["event"], event["value"]
        if kind == zmq.EVENT_ACCEPTED:
            peers[value] = _peer(value)
        elif kind in _FAILED:
            if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                failed = "worker key not allowed"
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                failed = _WHY.get(value, f"handshake failed (ZeroMQ protocol error {value:#x})")
            else:  # the peer hung up mid-handshake (value is an errno): a plain worker often does
                failed = "handshake broken off (no worker key, or not a loadgate worker)"
        elif kind == zmq.EVENT_DISCONNECTED:
            address = peers.pop(value, None)
            if failed is not None:
                refuse(address or "unknown address", failed)
                failed = None


def refuse(address: str, reason: str) -> None:
    now = time.time()
    for entry in REFUSED:
        if entry["address"] == address and entry["reason"] == reason:
            entry["attempts"] += 1
            entry["last"] = now
            return
    REFUSED.append({"address": address, "reason": reason, "attempts": 1, "first": now, "last": now})
    log.warning("loadgate: refused a worker at %s: %s", address, reason)
