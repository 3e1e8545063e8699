#!/usr/bin/env python
"""Load test of `nmt serve` on 127.0.0.1, against offline batched translation.

    python scripts/bench_serve.py --checkpoint RUN/checkpoints/best.pt \\
        [--input FILE | --split test_2016_flickr] [--clients 8] \\
        [--requests 400 | --seconds 30] [--lines-per-request 1] [--decoding greedy]

Starts `nmt serve` on a free localhost port, lets ``--clients`` concurrent
clients send real test sentences (``--lines-per-request`` per request) for a
fixed number of requests or a fixed time, and reports requests/s,
sentences/s, p50/p95/p99 latency and errors (which must be 0: the exit code is
1 otherwise).  Then, in the same run, the same sentences are translated once
offline by the function `nmt translate` calls, in one batched call, and the
served sentences/s are given as a ratio of that.  The figures go to this
script's section of docs/performance.md (``--out``), in the way
bench_translate.py writes its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import httpx
import torch
from _common import machine
from bench_translate import model_facts, update_section  # scripts/ is on sys.path

from nmt.commands.common import LoadedModel, load_model
from nmt.config import DecodingConfig, decoding_preset
from nmt.data.corpus import load_split
from nmt.translation import translate_nbest
from nmt.utils import pick_device

NAME = "bench_serve"
HEADING = (
    "## Serving: `nmt serve` under concurrent load vs offline batching (`scripts/bench_serve.py`)"
)


@dataclass
class Load:
    """What the clients saw."""

    requests: int
    sentences: int
    seconds: float
    latencies_ms: list[float]
    errors: list[str]

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies (ms)."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class Result:
    """One run: the setting, the load the clients saw and the offline figure."""

    args: argparse.Namespace
    loaded: LoadedModel
    source: str
    device: torch.device
    decoding: DecodingConfig
    load: Load
    offline_rate: float  # sentences/s
    offline_lines: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run dir")
    p.add_argument("--input", help="a file of source lines (default: --split of the model's data)")
    p.add_argument("--split", default="test_2016_flickr", help="split of the model's corpus")
    p.add_argument("--data-root", help="folder with the Multi30k files (default: $NMT_DATA_DIR)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--requests", type=int, help="stop after this many requests (default 400)")
    p.add_argument("--seconds", type=float, help="or: send requests for this long")
    p.add_argument("--lines-per-request", type=int, default=1)
    p.add_argument("--decoding", default="greedy", choices=["greedy", "beam"])
    p.add_argument("--batch-wait-ms", type=float, help="server key batch_wait_ms")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch CPU threads, server and offline")
    p.add_argument("--out", default="docs/performance.md", help="the Markdown file to update")
    args = p.parse_args(argv)
    if args.requests is not None and args.seconds is not None:
        p.error("--requests and --seconds exclude each other")
    if args.requests is None and args.seconds is None:
        args.requests = 400
    if min(args.clients, args.lines_per_request, args.requests or 1) < 1:
        p.error("--clients, --requests and --lines-per-request must be >= 1")
    return args


def source_lines(args: argparse.Namespace, loaded: LoadedModel) -> tuple[list[str], str]:
    if args.input:
        text = Path(args.input).read_text(encoding="utf-8")
        return [line for line in text.splitlines() if line.strip()], args.input
    cfg = loaded.train_config.data
    data = load_split(replace(cfg, root=args.data_root) if args.data_root else cfg, args.split)
    return list(data.src), data.src_path


def nmt_command() -> list[str]:
    script = Path(sys.executable).with_name("nmt")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "nmt"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(
    checkpoint: str | Path, overrides: list[str] | None = None, *, threads: int | None = None
) -> Iterator[str]:
    """`nmt serve` on a free port of 127.0.0.1 until the block ends; yields its URL."""
    port = free_port()
    command = [*nmt_command(), "serve", f"checkpoint={checkpoint}", "host=127.0.0.1"]
    command += [f"port={port}", *(overrides or [])]
    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(url, server, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_until_healthy(
    url: str, server: subprocess.Popen[bytes], log: IO[bytes], limit_s: float = 180
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"nmt serve exited with {server.returncode}:\n{output[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nmt serve did not answer {url}/health within {limit_s:.0f} s")


async def client_loop(
    client: httpx.AsyncClient, chunks: list[list[str]], state: dict[str, Any], load: Load
) -> None:
    """One client: take the next request, send it, record its latency, until done."""
    while True:
        index = state["next"]
        if state["limit"] is not None and index >= state["limit"]:
            return
        if state["deadline"] is not None and time.perf_counter() >= state["deadline"]:
            return
        state["next"] = index + 1
        lines = chunks[index % len(chunks)]
        start = time.perf_counter()
        try:
            response = await client.post("/translate", json={"text": lines})
            ok = response.status_code == 200 and len(response.json()["translations"]) == len(lines)
            if not ok:
                load.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            load.errors.append(f"{type(exc).__name__}: {exc}")
            ok = False
        load.latencies_ms.append((time.perf_counter() - start) * 1000)
        load.requests += 1
        load.sentences += len(lines) if ok else 0


async def send_load(url: str, chunks: list[list[str]], args: argparse.Namespace) -> Load:
    # idle connections are dropped before the server's 5 s keep-alive ends, so that
    # no request goes out on a connection the server is closing at that moment
    limits = httpx.Limits(
        max_connections=args.clients, max_keepalive_connections=args.clients, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        warm = Load(0, 0, 0.0, [], [])
        await asyncio.gather(
            *(
                client_loop(
                    client, chunks, {"next": 0, "limit": args.clients, "deadline": None}, warm
                )
                for _ in range(args.clients)
            )
        )
        load = Load(0, 0, 0.0, [], list(warm.errors))
        deadline = time.perf_counter() + args.seconds if args.seconds else None
        state = {"next": 0, "limit": args.requests, "deadline": deadline}
        start = time.perf_counter()
        await asyncio.gather(
            *(client_loop(client, chunks, state, load) for _ in range(args.clients))
        )
        load.seconds = time.perf_counter() - start
    return load


def offline(
    loaded: LoadedModel, lines: list[str], decoding: DecodingConfig, device: torch.device
) -> float:
    """Seconds that `nmt translate`'s function takes for ``lines`` in one batched call."""
    translate_nbest(loaded.model, lines[:8], loaded.pipeline, decoding, device)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    translate_nbest(loaded.model, lines, loaded.pipeline, decoding, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> Result:
    """The load test, then the offline run of the same sentences; writes the report."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    loaded = load_model(args.checkpoint, device)
    lines, source = source_lines(args, loaded)
    k = args.lines_per_request
    chunks = [lines[i : i + k] for i in range(0, len(lines) - k + 1, k)] or [lines[:k]]
    overrides = [f"device={args.device}", f"decoding={args.decoding}"]
    if args.batch_wait_ms is not None:
        overrides.append(f"batch_wait_ms={args.batch_wait_ms}")
    with running_server(args.checkpoint, overrides, threads=args.threads) as url:
        load = asyncio.run(send_load(url, chunks, args))
    sent = [line for chunk in chunks[: max(1, min(load.requests, len(chunks)))] for line in chunk]
    decoding = decoding_preset(args.decoding)
    rate = len(sent) / offline(loaded, sent, decoding, device)
    result = Result(args, loaded, source, device, decoding, load, rate, len(sent))
    report(result)
    return result


def table(r: Result) -> list[str]:
    load, served = r.load, r.load.sentences / r.load.seconds
    return [
        "| | requests/s | sentences/s | p50 (ms) | p95 (ms) | p99 (ms) | errors |",
        "|---|---|---|---|---|---|---|",
        f"| `nmt serve`, {r.args.clients} clients, {r.args.lines_per_request} line(s) per "
        f"request | {load.requests / load.seconds:.1f} | {served:.1f} | "
        f"{load.percentile(50):.0f} | {load.percentile(95):.0f} | {load.percentile(99):.0f} | "
        f"{len(load.errors)} |",
        f"| offline, one batched call (batch {r.decoding.batch_size}) | | "
        f"{r.offline_rate:.1f} | | | | |",
        "",
        f"Served / offline sentences/s: **{served / r.offline_rate:.2f}**",
    ]


def report(r: Result) -> None:
    rows = table(r)
    print("\n".join(rows))
    for error in r.load.errors[:5]:
        print(f"error: {error}", file=sys.stderr)
    args, load = r.args, r.load
    limit = "a fixed count" if args.requests else f"for {args.seconds:g} s"
    command = " ".join(["python scripts/bench_serve.py", *map(shlex.quote, sys.argv[1:])])
    entry = [
        f"### {r.loaded.path.name} ({r.loaded.train_config.model.arch}) on {r.device}, "
        f"{args.clients} clients, {args.lines_per_request} line(s) per request, {args.decoding}",
        "",
        f"- command: `{command}`",
        f"- model: {model_facts(r.loaded)}",
        f"- data: `{r.source}`; {load.requests} requests ({limit}), {load.sentences} "
        f"sentences in {load.seconds:.1f} s; offline: the first {r.offline_lines} of them",
        f"- machine: {machine(r.device)}; torch {torch.__version__}; "
        f"date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        *rows,
        "",
    ]
    setting = (r.source, r.device, args.clients, args.lines_per_request, args.decoding)
    key = " | ".join(map(str, (r.loaded.path.resolve(), *setting)))
    path = Path(args.out)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = update_section(text, key, "\n".join(entry), name=NAME, heading=HEADING)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    result = run(parse_args(argv))
    if result.load.errors:
        sys.exit(f"bench_serve: {len(result.load.errors)} request(s) failed")


if __name__ == "__main__":
    main()
