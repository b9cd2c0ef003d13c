"""Secrets typed into a prompt are redacted before anything stores it, in every common form:
keyword assignments with any affix, URLs with a password, and the token shapes of
detect-secrets' maintained rules (AWS, GitLab, Google, SendGrid, PEM private keys...)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from sheen_pipeline.events.runtime import dispatcher_for, stop_dispatchers
from sheen_pipeline.redaction import REDACTED, redact, redact_credentials
from sheen_pipeline.service import BuildService
from tests.support.builds import build
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for
from tests.support.webhooks import SECRET as WEBHOOK_SECRET

PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
# (how it is typed, the secret that must never be stored)
SECRET_FORMS = [
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG"),
    ("aws_secret_access_key = Zk3pQ9wLmN2xR7vT5yU1sA8dF4gH6jK0oP3iE9bC", "Zk3pQ9wLmN2xR7vT5yU1"),
    ("DATABASE_PASSWORD=hunter2hunter2", "hunter2hunter2"),
    ("client_secret=cs_9f8e7d6c5b4a", "cs_9f8e7d6c5b4a"),
    ("postgres://appuser:pw-Tr0ub4dor@db.internal:5432/app", "pw-Tr0ub4dor"),
    ("glpat-Xy7zQ2wE4rT6yU8iO0pA", "Xy7zQ2wE4rT6yU8iO0pA"),
    ("AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX"),
    (
        "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",
        "ngeVfQFYQlKU0ufo8x5d1A",
    ),
    (f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----", PEM_BODY),
    ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("sk-ant-api03-abcdefghijklmnop", "abcdefghijklmnop"),
]


@pytest.mark.parametrize(("typed", "secret"), SECRET_FORMS)
def test_each_secret_form_is_redacted(typed: str, secret: str) -> None:
    for text in (f"a shop; use {typed} please", f"config:\n{typed}\nthanks"):
        for redacted in (redact_credentials(text), redact(text)):
            assert secret not in redacted and REDACTED in redacted


@pytest.mark.parametrize(
    "content",
    [
        "a landing page for my password manager, with a signup form",
        "a page with a form: name, email and password fields",
        "a portfolio with a secret garden photo section",
    ],
)
def test_ordinary_prompts_are_left_alone(content: str) -> None:
    assert redact_credentials(content) == content


def test_no_secret_form_is_stored_or_sent_anywhere_a_build_keeps_its_prompt(
    sheen_home: Path, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = "\n".join(form for form, _ in SECRET_FORMS)
    monkeypatch.setenv("SHEEN_WEBHOOK_SECRET", WEBHOOK_SECRET)
    with Receiver() as receiver:
        monkeypatch.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        try:
            service = BuildService.from_env()
            prompt = f"a landing page for Blue Fern Coffee; settings:\n{typed}"
            outcome, _ = build(instance, service, prompt=prompt)
            dispatcher = dispatcher_for(service.settings, service.events)

            def completed_sent() -> bool:
                dispatcher.drain(2)
                return any(b"build_completed" in r.body for r in receiver.accepted())

            wait_for(completed_sent, 30, "the build's webhooks")
        finally:
            stop_dispatchers()
    assert outcome.status == "succeeded", outcome.error
    stored = [p for p in tmp_path.rglob("*") if p.is_file()]  # app database, Dagster's storage
    assert any(p.name == "sheen.db" for p in stored) and len(stored) > 3
    sent = [r.body for r in receiver.accepted()]
    assert any(b"Blue Fern Coffee" in body for body in sent)  # the prompt went out, redacted
    for _, secret in SECRET_FORMS:
        holding = [p.name for p in stored if secret.encode() in p.read_bytes()]
        assert holding == [], f"{secret!r} stored in {holding}"
        assert not [body for body in sent if secret.encode() in body]
