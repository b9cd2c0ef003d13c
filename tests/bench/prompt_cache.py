"""Benchmark: the share of input tokens served from the prompt cache for a 6-task build, against
a local server speaking the Anthropic Messages API that caches, as the API does, only prefixes of
at least 1024 tokens (4 characters a token). Two builds of different prompts in a row: the first
writes the cache, the second also reads the build-independent instructions the first cached.

    .venv/bin/python -m tests.bench.prompt_cache
"""

from __future__ import annotations

import json

from tests.bench.parallel import embedded_env
from tests.providers.conftest import llm_env
from tests.support.fake_llm import AnthropicWire, FakeLLMServer, PromptCache, six_tasks
from tests.support.processes import sheen

PROMPTS = (
    "a landing page for Blue Fern Coffee in Portland, with a signup form and a menu",
    "a landing page for Red Fern Tea in Seattle, with a signup form and opening hours",
)


def main() -> None:
    rows = []
    with FakeLLMServer(AnthropicWire(), default=six_tasks, prompt_cache=PromptCache()) as server:
        for prompt in PROMPTS:
            env = embedded_env(**llm_env("anthropic", server))
            result = sheen(env, "build", prompt, "--json")
            summary = json.loads(result.stdout.splitlines()[-1])
            assert summary["status"] == "succeeded", summary["error"]
            t = summary["tokens"]
            all_input = t["input"] + t["cache_read"] + t["cache_write"]
            rows.append(
                {
                    "build": len(rows) + 1,
                    "tasks": summary["task_count"],
                    "input": t["input"],
                    "cache_write": t["cache_write"],
                    "cache_read": t["cache_read"],
                    "cached_share": round(t["cache_read"] / all_input, 3),
                    "cost_usd": summary["cost_usd"],
                }
            )
    print("| build | tasks | input | cache write | cache read | share of input from cache | cost |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['build']} | {r['tasks']} | {r['input']} | {r['cache_write']} | "
            f"{r['cache_read']} | {r['cached_share']:.0%} | ${r['cost_usd']:.4f} |"
        )
    print(json.dumps({"benchmark": "prompt_cache", "builds": rows}))


if __name__ == "__main__":
    main()
