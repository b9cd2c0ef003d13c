"""The HTTP API over a real server on loopback: signed ingress, status, events, live stream."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster import DagsterInstance

from sheen_pipeline.api.app import create_app
from sheen_pipeline.api.protocol import HeaderTimeoutProtocol
from sheen_pipeline.config import Settings
from sheen_pipeline.runs.local import BuildOutcome
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.engines import engine_for
from tests.api.conftest import SECRET, Api
from tests.support.builds import PROMPT, build
from tests.support.processes import sheen_cli_env, sheen_here
from tests.support.server import serving
from tests.support.spending import spend
from tests.support.waiting import wait_for


def test_signed_request_is_accepted_and_stored(api: Api, sheen_home: Path) -> None:
    response = api.post({"prompt": "  a blog about tea ", "project_id": "tea", "user_id": "u1"})
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "pending"
    assert answer["status_url"] == f"/api/builds/{answer['build_id']}"
    (stored,) = api.requests.recent(10)
    request_id, build_id = stored.request_id, stored.build_id
    assert (request_id, build_id) == (answer["request_id"], answer["build_id"])
    assert stored.status == "pending" and stored.prompt == "a blog about tea"
    assert (stored.project_id, stored.user_id) == ("tea", "u1")
    status = api.get(answer["status_url"], token=answer["read_token"], timeout=10).json()
    assert status["status"] == "pending" and status["request_id"] == request_id


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "wrong-secret"}, "signature does not match"),
        ({"now": 1_000_000_000}, "outside the tolerance window"),
    ],
)
def test_bad_signatures_are_refused(api: Api, kwargs: dict[str, object], reason: str) -> None:
    response = api.post({"prompt": "a site"}, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert reason in response.json()["error"]
    assert api.queued() == 0


def test_unsigned_request_is_refused(api: Api) -> None:
    response = requests.post(f"{api.base}/api/builds", json={"prompt": "a site"}, timeout=10)
    assert response.status_code == 401 and "missing" in response.json()["error"]


def test_oversized_body_is_refused(api: Api) -> None:
    response = api.post({"prompt": "x" * 30_000})
    assert response.status_code == 413


def test_the_largest_valid_request_fits_the_body_limit(api: Api) -> None:
    """2,000 emoji sent with standard JSON escapes (12 bytes each): 24 kB, and valid."""
    body = json.dumps({"prompt": "\N{PARTY POPPER}\N{GRINNING FACE}" * 1000, "user_id": "u" * 64})
    assert len(body) > 24_000
    response = api.post({}, raw=body.encode())
    assert response.status_code == 202, response.text


def test_a_client_dribbling_its_headers_is_cut_off(sheen_home: Path) -> None:
    """One header line every half second never completes a request: the connection is closed
    once the header deadline passes, while the client is still sending."""

    class QuickHeaders(HeaderTimeoutProtocol):
        header_timeout_s = 1.0

    with serving(create_app(Settings.from_env()), http=QuickHeaders) as base:
        port = int(base.rsplit(":", 1)[1])
        assert requests.get(f"{base}/healthz", timeout=10).status_code in (200, 503)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            closed = threading.Event()

            def read_until_closed() -> None:
                with contextlib.suppress(OSError):
                    while connection.recv(1024):
                        pass
                closed.set()

            threading.Thread(target=read_until_closed, daemon=True).start()
            for line in range(40):  # 20 s of dribbling at most
                if closed.wait(0.5):
                    break
                with contextlib.suppress(OSError):
                    connection.sendall(f"X-Slow-{line}: y\r\n".encode())
            assert closed.is_set(), "the server kept a dribbling connection open"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"prompt": "   "}, "prompt: must not be empty"),
        ({"prompt": "x" * 2001}, "prompt: must be at most 2000 characters"),
        ({"prompt": "a site", "user_id": "../root"}, "user_id: may contain only letters"),
        ({"prompt": "a site", "admin": True}, "admin: unknown field"),
        ({"prompt": "a site\u0000<script>"}, "prompt: must not contain control characters (U+0000"),
        ({"prompt": "a site\u001b[31m"}, "prompt: must not contain control characters (U+001B"),
        ({}, "prompt: Field required"),
        (["a list"], "body: must be a JSON object"),
    ],
)
def test_invalid_bodies_name_the_field(api: Api, payload: object, error: str) -> None:
    response = api.post(payload)
    assert response.status_code == 422
    assert error in response.json()["error"]


def test_not_json_is_refused(api: Api) -> None:
    response = api.post(None, raw=b"{not json")
    assert response.status_code == 422 and "not valid JSON" in response.json()["error"]


def test_too_many_requests_from_one_user(api: Api) -> None:
    statuses = [api.post({"prompt": "a site", "user_id": "busy"}).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    assert api.post({"prompt": "a site", "user_id": "other"}).status_code == 202
    assert api.queued() == 4


def test_unknown_build_is_404(api: Api) -> None:
    for path in ("", "/events", "/stream"):
        assert api.get(f"/api/builds/bnothere{path}", timeout=10).status_code == 404


def test_reads_need_the_api_token_or_the_builds_own_read_token(api: Api) -> None:
    mine = api.post({"prompt": "a blog about tea", "user_id": "u1"}).json()
    theirs = api.post({"prompt": "a blog about coffee", "user_id": "u2"}).json()
    for path in ("", "/events", "/stream"):
        url = f"/api/builds/{mine['build_id']}{path}"
        for token in (None, "", "wrong", theirs["read_token"], SECRET):
            refused = api.get(url, token=token, timeout=10)
            assert refused.status_code == 401, (path, token)
            assert refused.headers["www-authenticate"].startswith("Bearer")
        own = api.get(url, token=mine["read_token"], stream=path == "/stream", timeout=10)
        operator = api.get(url, stream=path == "/stream", timeout=10)
        assert own.status_code == operator.status_code == 200, path
        own.close()
        operator.close()
    in_query = api.get(
        f"/api/builds/{mine['build_id']}",
        token=None,
        params={"token": mine["read_token"]},
        timeout=10,
    )
    assert in_query.status_code == 200  # for EventSource, which cannot send headers
    assert api.get("/api/builds/bnothere", token=mine["read_token"], timeout=10).status_code == 401
    front = requests.get(f"{api.base}/", timeout=10)
    assert front.status_code == 200 and mine["build_id"] not in front.text  # no public list
    assert len(mine["build_id"]) == 33  # 128 random bits: preview URLs cannot be guessed


def build_in_thread(instance: DagsterInstance) -> tuple[threading.Thread, list[BuildOutcome]]:
    outcomes: list[BuildOutcome] = []
    service = BuildService.from_env()

    def work() -> None:
        outcomes.append(build(instance, service)[0])

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcomes


def sse_events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Parsed SSE frames, as they arrive: the event's payload plus the frame's id."""
    frame: dict[str, str] = {}
    for line in response.iter_lines(chunk_size=None, decode_unicode=True):
        if line:
            key, _, value = line.partition(": ")
            frame[key] = value
            continue
        if "data" in frame:
            yield {"frame_id": int(frame["id"]), **json.loads(frame["data"])}
        frame = {}


def any_build_id(settings: Settings) -> str | None:
    with engine_for(settings.database_url).connect() as conn:
        return conn.exec_driver_sql("select build_id from build_events limit 1").scalar()


def test_stream_is_live_and_resumes_after_reconnect(
    api: Api, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, sheen_home: Path
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:GatedOfflineProvider")
    monkeypatch.setenv("SHEEN_TEST_GATE_TASK", "index_page")
    thread, outcomes = build_in_thread(instance)
    build_id = wait_for(lambda: any_build_id(Settings.from_env()), 60, "the build to start")

    first: list[dict[str, Any]] = []
    with api.get(f"/api/builds/{build_id}/stream", stream=True, timeout=60) as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(live):
            first.append(event)
            if event["type"] == "task_started" and event["data"]["task_id"] == "index_page":
                break
    assert outcomes == []  # the build is held at index_page: these events arrived live
    assert first[0]["type"] == "build_started"

    (sheen_home / "gate-open").touch()
    resume = {"Last-Event-ID": str(first[-1]["seq"])}
    url = f"/api/builds/{build_id}/stream"
    with api.get(url, headers=resume, stream=True, timeout=60) as reconnected:
        rest = list(sse_events(reconnected))
    thread.join(timeout=120)
    assert outcomes and outcomes[0].status == "succeeded"
    assert rest[-1]["type"] == "build_completed"
    streamed = [e["seq"] for e in first + rest]
    assert streamed == sorted(set(streamed))  # nothing twice, nothing out of order
    assert all(e["frame_id"] == e["seq"] for e in first + rest)
    stored = api.get(f"/api/builds/{build_id}/events", timeout=10).json()
    assert [e["seq"] for e in stored["events"]] == streamed  # nothing missed across the reconnect
    after_the_end = {"Last-Event-ID": str(rest[-1]["seq"])}
    with api.get(url, headers=after_the_end, stream=True, timeout=10) as late:
        assert list(sse_events(late)) == []  # closed at once, not held open

    page = api.get(
        f"/api/builds/{build_id}/events",
        params={"since": streamed[2], "limit": 3},
        timeout=10,
    ).json()
    assert [e["seq"] for e in page["events"]] == streamed[3:6]
    assert page["next_cursor"] == streamed[5]
    status = api.get(f"/api/builds/{build_id}", timeout=10).json()
    assert status["status"] == "succeeded" and status["preview_url"].endswith(f"/p/{build_id}/")
    assert status["usage"]["cost_usd"] == "0"


def test_sheen_events_prints_a_finished_build(tmp_path: Path) -> None:
    env = sheen_cli_env(tmp_path)
    built = sheen_here(env, "build", PROMPT, "--json")
    build_id = json.loads(built.stdout.splitlines()[-1])["build_id"]
    result = sheen_here(env, "events", build_id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("planning") and "build completed: http://127.0.0.1:" in lines[-1]
    followed = sheen_here(env, "events", build_id, "--follow", "--json")
    assert json.loads(followed.stdout.splitlines()[-1])["type"] == "build_completed"
    assert sheen_here(env, "events", "bnothere").returncode == 1
    unknown = sheen_here(env, "events", "bnothere", "--follow")  # fails at once, never waits
    assert unknown.returncode == 1 and "no build bnothere" in unknown.stderr


def test_a_request_over_budget_is_refused_with_402_and_the_figures(
    sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_INGRESS_SECRET", SECRET)
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"users": {"ann": {"day": 0.5}}}))
    settings = Settings.from_env()
    spend(settings, user_id="ann", usd="0.5")
    with serving(create_app(settings)) as base:
        api = Api(base)
        refused = api.post({"prompt": "a site", "user_id": "ann"})
        allowed = api.post({"prompt": "a site", "user_id": "bob"})
    assert refused.status_code == 402
    assert refused.json()["budget"] == "user ann per day"
    assert (refused.json()["limit_usd"], refused.json()["spent_usd"]) == ("0.5", "0.500000")
    assert allowed.status_code == 202
    assert api.queued() == 1


def test_402_predicts_a_request_whose_planning_would_not_fit(
    sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spent is under the limit, but not by what planning may cost at its worst (a priced
    model: Sonnet's price, 4096-token answers, a plan call and two re-asks); a model without a
    price is refused under a budget, naming SHEEN_PRICES."""
    monkeypatch.setenv("SHEEN_INGRESS_SECRET", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"users": {"ann": {"day": 0.5}}}))
    settings = Settings.from_env()
    spend(settings, user_id="ann", usd="0.4")
    with serving(create_app(settings)) as base:
        refused = Api(base).post({"prompt": "a site", "user_id": "ann"})
    assert refused.status_code == 402
    needed = Decimal(refused.json()["needed_usd"])
    assert Decimal("0.1") < needed and refused.json()["spent_usd"] == "0.400000"
    monkeypatch.setenv("SHEEN_MODEL", "claude-unpriced-1")
    with serving(create_app(Settings.from_env())) as base:
        unpriced = Api(base).post({"prompt": "a site", "user_id": "ann"})
    assert unpriced.status_code == 402 and "SHEEN_PRICES" in unpriced.json()["error"]


def test_a_repeated_request_returns_the_first_answer_and_makes_no_second_build(
    api: Api,
) -> None:
    payload = {"prompt": "a blog about tea", "user_id": "u1"}
    first = api.post(payload, message_id="msg_once")
    again = api.post(payload, message_id="msg_once")  # the main app retried after a timeout
    other = api.post(payload, message_id="msg_twice")
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == first.json()
    assert other.json()["build_id"] != first.json()["build_id"]
    assert api.queued() == 2


def _send_part_of_a_body(base: str) -> socket.socket:
    """A POST that promises 100 bytes of body and sends 10."""
    host, port = base.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    conn.sendall(
        b"POST /api/builds HTTP/1.1\r\nHost: sheen\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"prompt":'
    )
    return conn


@pytest.fixture
def quick_ingress(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SHEEN_INGRESS_SECRET", SECRET)
    monkeypatch.setenv("SHEEN_INGRESS_BODY_TIMEOUT_S", "0.5")
    with serving(create_app(Settings.from_env())) as base:
        yield base


def test_a_slow_body_is_answered_408_at_its_deadline(quick_ingress: str) -> None:
    with _send_part_of_a_body(quick_ingress) as conn:
        answer = conn.recv(4096)  # the server answers without waiting for the rest
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"body not received within 0.5 s" in answer


def test_a_client_that_hangs_up_mid_body_is_one_log_line(
    quick_ingress: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _send_part_of_a_body(quick_ingress).close()

    def logged() -> bool:
        return any("ingress_client_disconnected" in r.getMessage() for r in caplog.records)

    wait_for(logged, 30, "the hang-up to be logged")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []  # no stack trace
    assert requests.get(f"{quick_ingress}/healthz", timeout=10).json()["status"] == "ok"
