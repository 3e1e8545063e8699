"""The FastAPI application: ``POST /translate``, ``GET /health``, ``GET /info``, the page at ``/``.

Every refusal is a JSON object ``{"error": "<one line naming the problem>",
"detail": [{"loc": [...], "msg": ...}]}`` with a 4xx status; only a bug
gives a 500, and the server keeps serving after either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from nmt.config import DecodingConfig, DecodingStrategy, ServeConfig, to_plain
from nmt.serve.batcher import MicroBatcher
from nmt.serve.schemas import (
    RequestError,
    TranslateRequest,
    TranslateResponse,
    check_lines,
    decoding_for,
    finite,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
STATIC = Path(__file__).parent / "static"


@dataclass
class Engine:
    """What the server serves.

    translate(lines, decoding, keep_attention) gives, per line, its n-best
    hypotheses, best first: objects with ``text``, ``score``, ``tokens``,
    ``src_tokens`` and ``attention`` (a (len(tokens), len(src_tokens)) tensor,
    or None).  info: facts about the model for ``/info``.  decoding: what a
    request that names no strategy gets (None: the server config's), and
    decoding_source where it came from.
    """

    translate: Callable[[list[str], DecodingConfig, bool], Sequence[Sequence[Any]]]
    info: dict[str, Any]
    decoding: DecodingConfig | None = None
    decoding_source: str = "command line"


async def read_body(request: Request, limit: int, idle_s: float) -> bytes:
    """The body, refused (413) when its Content-Length or the bytes read pass
    ``limit``, and given up (408) when no byte of it comes for ``idle_s``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body of {declared} bytes is over max_body_bytes={limit}")
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), idle_s)
        except StopAsyncIteration:
            break
        except ClientDisconnect:
            raise RequestError(499, "the client closed the connection") from None
        except TimeoutError:
            raise RequestError(
                408, f"request body: nothing arrived for body_timeout_s={idle_s:g} s"
            ) from None
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is over max_body_bytes={limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_request(body: bytes) -> TranslateRequest:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, f"request body is not UTF-8 (bad byte at offset {exc.start})"
        ) from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise RequestError(400, f"request body is not valid JSON: {exc.msg} ({where})") from None
    except ValueError as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "request body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestError(422, 'the request must be a JSON object such as {"text": "..."}')
    try:
        return TranslateRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestError(422, "; ".join(e["msg"] for e in field_errors(exc)), ()) from exc


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{"loc", "msg"}``, one per field, each message naming it."""
    found: dict[tuple[Any, ...], str] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            msg = f"unknown option {loc[-1]!r}"
        elif loc[:1] == ("text",) and len(loc) > 1 and loc[1] in ("str", "list[str]"):
            loc = ("text", *loc[2:])  # the member of `str | list[str]` pydantic tried
            msg = f"{_path(loc)} must be a string" if len(loc) > 1 else ""
            msg = msg or "text must be a string or a list of strings"
        else:
            msg = f"{_path(loc)}: {error['msg']}"
        found.setdefault(loc, msg)
    if any(loc[:1] == ("text",) and len(loc) > 1 for loc in found):
        found.pop(("text",), None)  # text is a list: its entries' errors say it all
    return [{"loc": list(loc), "msg": msg} for loc, msg in found.items()]


def _path(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def error_response(status: int, message: str, detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        detail = [{"loc": list(exc.loc), "msg": exc.message}] if exc.loc else []
        if isinstance(exc.__cause__, ValidationError):
            detail = field_errors(exc.__cause__)
        return error_response(exc.status, exc.message, detail)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, f"{request.url.path}: {exc.detail}", [])

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "the request does not validate", list(exc.errors()))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, f"internal error ({type(exc).__name__}); see the log", [])


def line_result(source: str, hyps: Sequence[Any], attention: bool) -> dict[str, Any]:
    """One line of the response: best translation, n-best list, tokens on request."""
    nbest = []
    for hyp in hyps:
        entry: dict[str, Any] = {"text": hyp.text, "score": finite(hyp.score)}
        if attention:
            weights = hyp.attention
            entry["tokens"] = list(hyp.tokens)
            entry["attention"] = (
                None if weights is None else weights.float().round(decimals=4).tolist()
            )
        nbest.append(entry)
    best = nbest[0] if nbest else {"text": "", "score": None}
    result = {"source": source, "translation": best["text"], "score": best["score"], "nbest": nbest}
    if attention:
        result["src_tokens"] = list(hyps[0].src_tokens) if hyps else []
    return result


def server_facts(cfg: ServeConfig, decoding_source: str) -> dict[str, Any]:
    """The limits, the default decoding and where it came from, and, per
    strategy, the options a request gets when it sets none."""
    limits = ("max_lines", "max_line_chars", "max_body_bytes", "max_beam_size", "max_n_best")
    defaults = {
        s.value: to_plain(decoding_for(TranslateRequest(text="", strategy=s.value), cfg))
        for s in DecodingStrategy
    }
    return {
        "limits": {key: getattr(cfg, key) for key in limits},
        "decoding": {
            "default": cfg.decoding.strategy.value,
            "source": decoding_source,
            "strategies": defaults,
        },
    }


async def unless_disconnected(request: Request, work: Awaitable[T], every_s: float = 0.05) -> T:
    """The result of ``work``, which is cancelled (and its job dropped by the
    batcher before decoding) when the client disconnects first."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=every_s)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            raise RequestError(499, "the client closed the connection")


async def answer_translate(
    request: Request, batcher: MicroBatcher, cfg: ServeConfig
) -> JSONResponse:
    """``POST /translate``: check, queue for the next batch, answer."""
    parsed = parse_request(await read_body(request, cfg.max_body_bytes, cfg.body_timeout_s))
    lines = parsed.lines()
    check_lines(lines, cfg)
    decoding = decoding_for(parsed, cfg)
    # samples depend on the batch they are drawn in: a sampling request goes alone
    alone = decoding.strategy == DecodingStrategy.sample
    key = None if alone else dataclasses.astuple(decoding)
    found: Sequence[Any] = []
    if lines:
        work = batcher.submit(lines, decoding, key, parsed.attention)
        found = await unless_disconnected(request, work)
    results = [line_result(s, h, parsed.attention) for s, h in zip(lines, found, strict=True)]
    return JSONResponse({"translations": results, "decoding": to_plain(decoding)})


def create_app(engine: Engine, cfg: ServeConfig) -> FastAPI:
    if engine.decoding is not None:
        cfg = dataclasses.replace(cfg, decoding=engine.decoding)
    batcher = MicroBatcher(
        engine.translate, wait_s=cfg.batch_wait_ms / 1000, max_lines=cfg.max_batch_lines
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(title="nmt", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher = batcher
    install_error_handlers(app)
    info = engine.info | server_facts(cfg, engine.decoding_source)
    schema = {"content": {"application/json": {"schema": TranslateRequest.model_json_schema()}}}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def model_info() -> dict[str, Any]:
        return info

    @app.post(
        "/translate",
        response_model=TranslateResponse,
        openapi_extra={"requestBody": schema | {"required": True}},
    )
    async def translate(request: Request) -> JSONResponse:
        return await answer_translate(request, batcher, cfg)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def run_server(app: FastAPI, cfg: ServeConfig) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM)."""
    import uvicorn

    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")
