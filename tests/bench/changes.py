"""Benchmark: a one-file follow-up change against a from-scratch build of the same 5-task landing
page, both through `sheen build` against a local model server that takes LATENCY seconds per call
and counts output tokens as its answers' length / 4, deploying to a Cloudflare API stand-in and
checking the preview in Chromium. Reports the wall time from request to checked preview, the model
calls, the files uploaded, and the output tokens of the change's one-line edit of a 300-line
stylesheet against the same file re-emitted whole.

    .venv/bin/python -m tests.bench.changes [--latency 5]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Any

from sheen_pipeline.config import Settings
from sheen_pipeline.store.deployments import DeploymentStore
from tests.bench.parallel import embedded_env
from tests.providers.conftest import llm_env
from tests.support.fake_cloudflare import ACCOUNT, TOKEN, fake_cloudflare
from tests.support.fake_llm import (
    AnthropicWire,
    FakeLLMServer,
    Recorded,
    Reply,
    Usage,
    offline_answer,
)
from tests.support.processes import sheen

PROMPT = "a landing page for Blue Fern Coffee in Portland, with a signup form and a menu"
CHANGE = "make the header dark green"
STYLESHEET_LINES = 300
CHARS_PER_TOKEN = 4


def padded_stylesheet(reply: Reply) -> Reply:
    """The stylesheet task's answer grown to STYLESHEET_LINES lines of real rules."""
    answer = json.loads(reply.text)
    for file in answer.get("files", []):
        if file["path"] == "styles.css":
            lines = file["content"].splitlines()
            extra = [f".note-{n} {{ margin: {n % 7}px 0; }}" for n in range(STYLESHEET_LINES)]
            file["content"] = "\n".join([*lines, *extra][:STYLESHEET_LINES]) + "\n"
    return replace(reply, text=json.dumps(answer))


class SlowModel:
    """offline_answer after `latency` seconds, with output tokens counted from the answer."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.output_tokens: list[int] = []  # of each answer, in order

    def __call__(self, request: Recorded) -> Reply:
        time.sleep(self.latency)
        reply = padded_stylesheet(offline_answer(request))
        self.output_tokens.append(tokens(reply.text))
        return replace(reply, usage=Usage(output=self.output_tokens[-1]))


def tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def timed_build(env: dict[str, str], *args: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = sheen(env, "build", *args, "--project-id", "bench", "--json")
    elapsed = time.monotonic() - started
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded", summary["error"]
    return summary, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=5.0)
    args = parser.parse_args()
    model = SlowModel(args.latency)
    with FakeLLMServer(AnthropicWire(), default=model) as server, fake_cloudflare() as cf:
        _fake, cf_url = cf
        env = embedded_env(
            **llm_env("anthropic", server),
            SHEEN_DEPLOY_TARGET="cloudflare",
            CLOUDFLARE_API_TOKEN=TOKEN,
            CLOUDFLARE_ACCOUNT_ID=ACCOUNT,
            SHEEN_CLOUDFLARE_BASE_URL=cf_url,
            SHEEN_PREVIEW_CHECKS="on",
        )
        deployments = DeploymentStore(Settings.from_env(env).database_url)
        rows = []
        for label, build_args in (
            ("from scratch", (PROMPT,)),
            ("change", ("--from", "latest", CHANGE)),
        ):
            asked_before = len(server.requests)
            summary, elapsed = timed_build(env, *build_args)
            deployed = deployments.get(summary["build_id"])
            assert deployed is not None
            rows.append(
                {
                    "build": label,
                    "wall_s": round(elapsed, 1),
                    "calls": len(server.requests) - asked_before,
                    "uploaded_files": deployed.uploaded_files,
                    "output_tokens": summary["tokens"]["output"],
                    "cost_usd": summary["cost_usd"],
                }
            )
        edit, whole = model.output_tokens[-1], whole_file_tokens(server.requests[-1])
    scratch, change = rows
    ratio = change["wall_s"] / scratch["wall_s"]
    print(f"latency per call: {args.latency:g} s; a {STYLESHEET_LINES}-line stylesheet")
    print("| build | wall time | model calls | files uploaded | output tokens | cost |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['build']} | {r['wall_s']} s | {r['calls']} | {r['uploaded_files']} | "
            f"{r['output_tokens']} | ${r['cost_usd']:.6f} |"
        )
    print(f"change / from scratch wall time: {ratio:.2f}x (goal <= 0.40x)")
    print(
        f"one-line edit of the stylesheet: {edit} output tokens, the file whole: "
        f"{whole} ({edit / whole:.1%}; goal <= 10%)"
    )
    print(
        json.dumps(
            {
                "benchmark": "changes",
                "latency_s": args.latency,
                "builds": rows,
                "wall_ratio": round(ratio, 3),
                "edit_output_tokens": edit,
                "whole_file_output_tokens": whole,
            }
        )
    )


def whole_file_tokens(edit_request: Recorded) -> int:
    """What the same task's answer costs when it re-emits the stylesheet whole."""
    edit = json.loads(offline_answer(edit_request).text)["edits"][0]
    current = edit_request.text.split('<file path="styles.css">\n', 1)[1].split("\n</file>")[0]
    new = current.replace(edit["search"], edit["replace"], 1)
    return tokens(json.dumps({"files": [{"path": "styles.css", "content": new}]}))


if __name__ == "__main__":
    main()
