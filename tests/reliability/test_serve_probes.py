"""Issue 20's probes of `nmt serve`: clients that hang up, bodies that stall,
and what /info says of an ensemble.  One server (an ensemble of two copies of
the lab's model) serves them all."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from reliability_lab import Lab, Outcome, environ, nmt_command, probe

LONG = {"text": ["s1 s2 s3 s4 s5 s6"] * 1000, "strategy": "beam", "beam_size": 16}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(lab: Lab) -> int:
    """The port of the lab's server, started on first use."""
    if "server" not in lab.memo:
        copy = lab.root / "serve_copy.pt"
        shutil.copyfile(lab.best, copy)
        port = _free_port()
        keys = ["max_lines=1000", "max_beam_size=16", "batch_wait_ms=0"]  # body_timeout_s: 10 s
        args = [*nmt_command(), "serve", f"checkpoint=[{lab.best},{copy}]", f"port={port}", *keys]
        log = (lab.root / "serve.log").open("wb")
        proc = subprocess.Popen(args, cwd=lab.root, env=environ(), stdout=log, stderr=log)
        lab.memo["server"] = (proc, port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
    return int(lab.memo["server"][1])


def _post(port: int, body: dict[str, Any]) -> tuple[float, int]:
    """Seconds a /translate request took, and its status."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/translate",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        return time.perf_counter() - began, response.status


def _raw(port: int, body: bytes, declared: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        "POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


@probe(
    "serve: 6 clients send 1000-line beam-16 requests and hang up; then a 2-line request",
    "the 2-line request does not wait for the abandoned work (under 2x one long request)",
    slow=True,
)
def test_serve_drops_abandoned_work(lab: Lab) -> Outcome:
    port = _server(lab)
    _post(port, {"text": ["s1"]})  # warm up
    one, _ = _post(port, LONG)
    body = json.dumps(LONG).encode()
    for _ in range(6):
        sock = _raw(port, body, len(body))
        time.sleep(0.05)
        sock.close()
    took, status = _post(port, {"text": ["s1 s2", "s3"]})
    ok = status == 200 and took < 2 * one
    return Outcome(ok, None, "", f"one long request {one:.2f} s; the short one after {took:.2f} s")


@probe(
    "serve: a request that declares 100 body bytes, sends 10 and goes idle",
    "an answer (408) once body_timeout_s (10 s) has passed, not a connection held forever",
    slow=True,
)
def test_serve_idle_body_times_out(lab: Lab) -> Outcome:
    port = _server(lab)
    sock = _raw(port, b'{"text": [', 100)
    sock.settimeout(15)
    try:
        answer = sock.recv(200).decode(errors="replace")
    except TimeoutError:
        answer = ""
    finally:
        sock.close()
    first = answer.splitlines()[0] if answer else "no answer in 15 s"
    return Outcome(" 408 " in first, None, first, "")


@probe(
    "serve checkpoint=[a.pt,b.pt]: GET /info",
    "the ensemble described as one (each member's own step and scores), no absolute path",
    slow=True,
)
def test_serve_ensemble_info(lab: Lab) -> Outcome:
    port = _server(lab)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=30) as response:
        info = json.loads(response.read())
    members = info.get("ensemble") or []
    described = all(isinstance(m, dict) and "step" in m for m in members) and len(members) == 2
    shown = [str(m.get("checkpoint") if isinstance(m, dict) else m) for m in members]
    relative = not any(Path(p).is_absolute() for p in shown)
    ok = described and relative and info.get("step") is None and info.get("checkpoint") is None
    return Outcome(ok, None, "", f"members {shown}; top-level step {info.get('step')}")


def test_zz_stop_server(lab: Lab) -> None:
    """Not a probe: stops the server the probes above started."""
    if "server" in lab.memo:
        proc, _ = lab.memo.pop("server")
        proc.terminate()
        proc.wait(timeout=30)
