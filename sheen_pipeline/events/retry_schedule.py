"""When a failed webhook delivery goes again: soon while the receiver is otherwise up (it answered
2xx lately, or it only just started failing: a quick retry, no attempt of the schedule spent),
else on the schedule (Standard Webhooks' by default); the schedule's end is a dead delivery."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from sheen_pipeline.config import WebhookSettings

if TYPE_CHECKING:
    from sheen_pipeline.events.outbox import EndpointHealth

HEALTHY_WINDOW_S = 30.0  # a receiver that answered 2xx this recently is up: retry quickly
JUST_FAILING_S = 10.0  # a receiver failing for less than this may be up: retry quickly too


def after_failure(
    config: WebhookSettings, attempts: int, quick: int, health: EndpointHealth, now: float
) -> dict[str, Any]:
    """The delivery row's new values after a failed attempt (attempts of the schedule and
    quick retries spent so far), as the receiver's health was read."""
    jitter = 0.9 + random.random() / 5
    success = health.last_success_at
    answered_lately = success is not None and now - success < HEALTHY_WINDOW_S
    failing_for = 0.0 if health.failing_since is None else now - health.failing_since
    may_be_up = answered_lately or failing_for < JUST_FAILING_S
    if may_be_up and quick < config.quick_retries:
        return {"quick_retries": quick + 1, "next_attempt_at": now + config.quick_retry_s * jitter}
    counted = attempts + 1
    if counted >= len(config.schedule_s):
        return {"attempts": counted, "status": "dead"}
    return {"attempts": counted, "next_attempt_at": now + config.schedule_s[counted] * jitter}
