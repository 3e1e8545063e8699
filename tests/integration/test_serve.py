"""`nmt serve`'s app in process: translations as offline, batching of concurrent
requests, a 4xx JSON error for each kind of bad input (and service after it),
``/info`` from the checkpoint, the page's files."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_checkpoint import save_tiny_checkpoint

from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.commands.serve import make_engine
from nmt.config import DecodingConfig, ServeConfig, decoding_preset, to_dataclass
from nmt.serve.app import STATIC, Engine, create_app
from nmt.translation import translate_nbest

CPU = torch.device("cpu")
LINES = ["s1 s2 s3", "", "s4 s5 s6 s7", "   ", "s8 s9"]


@pytest.fixture
def attention_checkpoint(tmp_path: Path, trained_tiny_attention, tiny_pipeline, synthetic_corpus):
    model, model_cfg = trained_tiny_attention
    path = tmp_path / "run" / "checkpoints" / "best.pt"
    return save_tiny_checkpoint(path, model, model_cfg, tiny_pipeline, synthetic_corpus.root)


@pytest.fixture
def engine(attention_checkpoint: Path) -> Engine:
    return make_engine(ServeConfig(checkpoint=str(attention_checkpoint), device="cpu"))  # type: ignore[arg-type]


def serve_config(**overrides: Any) -> ServeConfig:
    return ServeConfig(checkpoint="unused", **overrides)


def call(app: Any, *requests: dict[str, Any]) -> list[httpx.Response]:
    """Send the requests at once (concurrently) to the app; the responses, in order."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://nmt") as client:
            return list(await asyncio.gather(*(client.request(**r) for r in requests)))

    return asyncio.run(send())


def post(body: Any) -> dict[str, Any]:
    return {"method": "POST", "url": "/translate", "json": body}


def offline(trained_tiny_attention, tiny_pipeline, lines: list[str], decoding: DecodingConfig):
    model, _ = trained_tiny_attention
    return translate_nbest(model, lines, tiny_pipeline, decoding, CPU, keep_attention=True)


def test_translations_match_offline_with_tokens_and_attention(
    engine: Engine, trained_tiny_attention, tiny_pipeline
) -> None:
    (response,) = call(create_app(engine, serve_config()), post({"text": LINES, "attention": True}))
    assert response.status_code == 200, response.text
    lines = response.json()["translations"]
    expected = offline(trained_tiny_attention, tiny_pipeline, LINES, DecodingConfig())
    assert [line["source"] for line in lines] == LINES  # count and order kept
    assert [line["translation"] for line in lines] == [t[0].text for t in expected]
    assert lines[1]["translation"] == "" and lines[3]["translation"] == ""
    assert any(line["translation"] for line in lines)
    for line, hyps in zip(lines, expected, strict=True):
        best = line["nbest"][0]
        assert best["tokens"] == hyps[0].tokens and line["src_tokens"] == hyps[0].src_tokens
        if hyps[0].tokens:
            weights = torch.tensor(best["attention"])
            assert weights.shape == (len(hyps[0].tokens), len(hyps[0].src_tokens))
            assert torch.allclose(weights.sum(-1), torch.ones(len(weights)), atol=1e-3)
            assert line["score"] == pytest.approx(hyps[0].score, abs=1e-5)


def test_one_text_with_beam_nbest_and_no_attention_by_default(
    engine: Engine, trained_tiny_attention, tiny_pipeline
) -> None:
    body = {"text": "s3 s1 s4", "strategy": "beam", "beam_size": 4, "n_best": 3}
    (response,) = call(create_app(engine, serve_config()), post(body))
    assert response.status_code == 200, response.text
    data = response.json()
    # a strategy other than the server's starts from its preset (configs/decoding/beam.yaml)
    decoding = replace(decoding_preset("beam"), beam_size=4, n_best=3)
    assert data["decoding"]["length_penalty"] == decoding.length_penalty == 0.6
    (expected,) = offline(trained_tiny_attention, tiny_pipeline, ["s3 s1 s4"], decoding)
    (line,) = data["translations"]
    assert [h["text"] for h in line["nbest"]] == [t.text for t in expected]
    scores = [h["score"] for h in line["nbest"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert "src_tokens" not in line and "attention" not in line["nbest"][0]


def test_sampling_is_seeded_and_gives_n_samples(engine: Engine) -> None:
    app = create_app(engine, serve_config())
    body = {"text": ["s1 s2", "s5 s6 s7"], "strategy": "sample", "n_best": 4, "seed": 7}
    first, second = call(app, post(body), post(body))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert all(len(line["nbest"]) == 4 for line in first.json()["translations"])


def counting(engine: Engine) -> tuple[Engine, list[int]]:
    """The engine, with the line count of each decode call recorded."""
    sizes: list[int] = []

    def translate(lines: list[str], decoding: DecodingConfig, attention: bool) -> Any:
        sizes.append(len(lines))
        return engine.translate(lines, decoding, attention)

    return Engine(translate, engine.info), sizes


def test_concurrent_requests_are_decoded_in_one_batch(
    engine: Engine, trained_tiny_attention, tiny_pipeline
) -> None:
    counted, sizes = counting(engine)
    app = create_app(counted, serve_config(batch_wait_ms=500))
    texts = [["s1 s2 s3"], ["s4", "s5 s6"], ["s7 s8"], [""], ["s9 s10 s11 s1"], ["s2"]]
    responses = call(app, *(post({"text": t}) for t in texts))
    assert sizes == [7]  # one model call for the six requests' seven lines
    expected = offline(trained_tiny_attention, tiny_pipeline, sum(texts, []), DecodingConfig())
    got = [line["translation"] for r in responses for line in r.json()["translations"]]
    assert got == [t[0].text for t in expected]


def test_batches_group_by_options_and_respect_the_size_limit(engine: Engine) -> None:
    counted, sizes = counting(engine)
    app = create_app(counted, serve_config(batch_wait_ms=500, max_batch_lines=3))
    requests = [post({"text": f"s{i}"}) for i in range(1, 5)]
    requests += [post({"text": "s5", "strategy": "beam"}), post({"text": "s6", "strategy": "beam"})]
    responses = call(app, *requests)
    assert all(r.status_code == 200 for r in responses)
    assert sorted(sizes) == [1, 2, 3]  # 3 greedy (full), then 1 greedy + 2 beam, by options


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("not JSON", {"content": b'{"text": '}, 400, "not valid JSON"),
    ("not UTF-8", {"content": b'{"text": "s1 \xff"}'}, 400, "not UTF-8"),
    ("NaN", {"content": b'{"text": "s1", "top_p": NaN}'}, 400, "NaN"),
    ("not an object", {"json": ["s1"]}, 422, "JSON object"),
    ("no text", {"json": {"strategy": "beam"}}, 422, "text"),
    ("text a number", {"json": {"text": 5}}, 422, "text must be a string or a list"),
    ("a line a number", {"json": {"text": ["s1", 3]}}, 422, "text[1] must be a string"),
    ("int as string", {"json": {"text": "s1", "beam_size": "5"}}, 422, "beam_size"),
    ("bool as int", {"json": {"text": "s1", "n_best": True}}, 422, "n_best"),
    ("attention not bool", {"json": {"text": "s1", "attention": "yes"}}, 422, "attention"),
    ("unknown option", {"json": {"text": "s1", "beam": 5}}, 422, "unknown option 'beam'"),
    ("unknown strategy", {"json": {"text": "s1", "strategy": "top"}}, 422, "strategy"),
    ("too many lines", {"json": {"text": ["s1"] * 5}}, 422, "max_lines=4"),
    ("too long a line", {"json": {"text": ["s1", "s2 " * 30]}}, 422, "max_line_chars=50"),
    ("line break", {"json": {"text": "s1\ns2"}}, 422, "line break"),
    ("beam_size 0", {"json": {"text": "s1", "strategy": "beam", "beam_size": 0}}, 422, "beam_size"),
    ("beam_size over", {"json": {"text": "s1", "beam_size": 9}}, 422, "max_beam_size=8"),
    ("n_best over", {"json": {"text": "s1", "n_best": 99}}, 422, "max_n_best=16"),
    (
        "n_best > beam",
        {"json": {"text": "s1", "strategy": "beam", "beam_size": 2, "n_best": 3}},
        422,
        "decoding.n_best=3 needs decoding.beam_size >= n_best",
    ),
    ("n_best greedy", {"json": {"text": "s1", "n_best": 2}}, 422, "n_best"),
    ("top_p 0", {"json": {"text": "s1", "strategy": "sample", "top_p": 0.0}}, 422, "top_p"),
    ("seed < 0", {"json": {"text": "s1", "strategy": "sample", "seed": -1}}, 422, "seed"),
    ("body over", {"json": {"text": "s1 " * 500}}, 413, "max_body_bytes=1024"),
    ("lone surrogate", {"content": b'{"text": "s1 \\ud800"}'}, 422, "text[0] holds a lone"),
    ("infinite", {"content": b'{"text": "s1", "temperature": 1e400}'}, 422, "finite"),
    ("nested deep", {"content": b"[" * 100000 + b"]" * 100000}, 413, "max_body_bytes"),
    ("length_penalty", {"json": {"text": "s1", "length_penalty": 1e300}}, 422, "length_penalty"),
]


@pytest.mark.parametrize(("name", "send", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_request_is_a_4xx_naming_it_and_service_goes_on(
    engine: Engine, name: str, send: dict[str, Any], status: int, message: str
) -> None:
    cfg = serve_config(max_lines=4, max_line_chars=50, max_body_bytes=1024, max_beam_size=8)
    app = create_app(engine, cfg)
    bad, good = call(app, {"method": "POST", "url": "/translate", **send}, post({"text": "s1"}))
    assert bad.status_code == status, bad.text
    assert bad.headers["content-type"] == "application/json"
    assert message in bad.json()["error"]
    assert good.status_code == 200 and good.json()["translations"][0]["translation"]


async def chunks(total: int) -> AsyncIterator[bytes]:
    yield b'{"text": "'
    for _ in range(total // 100):
        yield b"s1 " * 33 + b"s"
    yield b'"}'


@pytest.mark.parametrize("headers", [{}, {"content-length": "20"}], ids=["chunked", "lying"])
def test_oversized_body_is_refused_by_the_bytes_read(engine: Engine, headers) -> None:
    """No Content-Length (chunked) or one that is too small: the bytes read count."""
    app = create_app(engine, serve_config(max_body_bytes=1024))
    (bad,) = call(
        app, {"method": "POST", "url": "/translate", "content": chunks(5000), "headers": headers}
    )
    assert bad.status_code == 413 and "max_body_bytes=1024" in bad.json()["error"]


OPTIONS = ["strategy", "beam_size", "n_best", "length_penalty", "temperature", "top_k", "top_p"]
OPTIONS += ["seed", "replace_unk", "attention", "bogus"]
VALUES = st.one_of(
    st.sampled_from(["greedy", "beam", "sample"]),
    st.integers(-3, 20),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, width=32),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
)
TEXTS = st.one_of(
    st.text(max_size=40), st.lists(st.text(max_size=20), max_size=5), st.integers(), st.none()
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TEXTS, options=st.dictionaries(st.sampled_from(OPTIONS), VALUES, max_size=4))
def test_no_request_is_a_server_error(engine: Engine, text: Any, options: dict[str, Any]) -> None:
    """Whatever the values, the answer is a translation or a 4xx naming the problem."""
    app = create_app(engine, serve_config(max_lines=4, max_line_chars=30))
    body = json.dumps({"text": text, **options}).encode()  # Infinity where a float is inf
    (response,) = call(app, {"method": "POST", "url": "/translate", "content": body})
    assert response.status_code in (200, 400, 413, 422), response.text
    data = response.json()
    if response.status_code == 200:
        lines = [text] if isinstance(text, str) else text
        assert [line["source"] for line in data["translations"]] == lines
    else:
        assert data["error"]


def test_json_nested_past_pythons_recursion_limit_is_a_400(engine: Engine) -> None:
    body = b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    request = {"method": "POST", "url": "/translate", "content": body}
    (bad,) = call(create_app(engine, serve_config()), request)
    assert bad.status_code == 400 and "nested too deeply" in bad.json()["error"]


def test_field_errors_are_listed_with_their_location(engine: Engine) -> None:
    app = create_app(engine, serve_config())
    (bad,) = call(app, post({"text": ["s1", 2], "beam_size": "x", "extra": 1}))
    data = bad.json()
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in data["detail"]} == {("text", 1), ("beam_size",), ("extra",)}
    assert "text[1]" in data["error"] and "unknown option 'extra'" in data["error"]


def test_unknown_routes_and_methods_are_json_4xx(engine: Engine) -> None:
    missing, method = call(
        create_app(engine, serve_config()),
        {"method": "GET", "url": "/nowhere"},
        {"method": "GET", "url": "/translate"},
    )
    assert missing.status_code == 404 and "/nowhere" in missing.json()["error"]
    assert method.status_code == 405 and "error" in method.json()


def test_a_bug_is_a_500_and_the_server_goes_on(engine: Engine) -> None:
    calls = []

    def flaky(lines: list[str], decoding: DecodingConfig, attention: bool) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return engine.translate(lines, decoding, attention)

    app = create_app(Engine(flaky, engine.info), serve_config())
    (first,) = call(app, post({"text": "s1"}))
    (second,) = call(app, post({"text": "s1"}))
    assert first.status_code == 500 and "RuntimeError" in first.json()["error"]
    assert second.status_code == 200


def test_empty_list_gives_no_lines(engine: Engine) -> None:
    (response,) = call(create_app(engine, serve_config()), post({"text": []}))
    assert response.status_code == 200 and response.json()["translations"] == []


def test_health_and_info(attention_checkpoint: Path, trained_tiny_attention) -> None:
    """/info reads step, epoch and val scores from the checkpoint, test BLEU with
    its signature from the run's summary.json."""
    data = load_checkpoint(attention_checkpoint)
    data["trainer_state"] = {"epoch": 3, "step": 120}
    data["val_metrics"] = {"val_bleu": 41.5, "val_loss": 1.25, "val_ppl": 3.49}
    save_checkpoint(data, attention_checkpoint)
    signature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.0"
    summary = {"test": {"test": {"bleu": 40.25, "signature": signature, "chrf": 60.0}}}
    (attention_checkpoint.parents[1] / "summary.json").write_text(json.dumps(summary))
    engine = make_engine(ServeConfig(checkpoint=str(attention_checkpoint), device="cpu"))  # type: ignore[arg-type]
    health, info = call(
        create_app(engine, serve_config(max_lines=7)),
        {"method": "GET", "url": "/health"},
        {"method": "GET", "url": "/info"},
    )
    assert health.json() == {"status": "ok"}
    facts = info.json()
    model, _ = trained_tiny_attention
    assert facts["architecture"] == "bahdanau" and facts["data"] == "files"
    assert facts["parameters"] == sum(p.numel() for p in model.parameters())
    assert (facts["step"], facts["epoch"]) == (120, 3)
    assert facts["val"] == {"bleu": 41.5, "loss": 1.25, "ppl": 3.49, "signature": None}
    assert facts["test"]["test"]["bleu"] == 40.25
    assert facts["test"]["test"]["signature"] == signature
    assert facts["limits"]["max_lines"] == 7
    assert facts["decoding"]["default"] == "greedy"
    assert facts["decoding"]["strategies"]["beam"]["length_penalty"] == 0.6


def test_info_of_a_bare_checkpoint_has_nulls(tmp_path: Path, attention_checkpoint: Path) -> None:
    copy = tmp_path / "elsewhere.pt"
    copy.write_bytes(attention_checkpoint.read_bytes())
    engine = make_engine(ServeConfig(checkpoint=str(copy), device="cpu"))  # type: ignore[arg-type]
    assert (engine.info["step"], engine.info["val"]["bleu"], engine.info["test"]) == (
        None,
        None,
        {},
    )


def test_page_and_its_files_are_served_with_nothing_from_elsewhere(engine: Engine) -> None:
    page, script, style = call(
        create_app(engine, serve_config()),
        {"method": "GET", "url": "/"},
        {"method": "GET", "url": "/static/app.js"},
        {"method": "GET", "url": "/static/style.css"},
    )
    assert page.status_code == script.status_code == style.status_code == 200
    assert 'id="heatmap"' in page.text and 'src="/static/app.js"' in page.text
    for path in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", path.read_text()), path


def test_serve_config_composes_with_localhost_default() -> None:
    cfg = to_dataclass({"checkpoint": "x.pt"}, ServeConfig)
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8000)
    with pytest.raises(ValueError, match="max_lines"):
        ServeConfig(checkpoint="x", max_lines=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["checkpoint=/nowhere/none.pt"],
            "nmt serve: error: no checkpoint at /nowhere/none.pt: not found",
        ),
        (["checkpoint=x.pt", "port=0"], "nmt serve: error: port=0 must be in [1, 65535]"),
        (["checkpoint=x.pt", "max_lines=-1"], "nmt serve: error: max_lines=-1 must be >= 1"),
    ],
)
def test_cli_refuses_bad_settings_in_one_line(args: list[str], message: str) -> None:
    script = Path(sys.executable).with_name("nmt")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "nmt"]
    result = subprocess.run([*command, "serve", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == message
