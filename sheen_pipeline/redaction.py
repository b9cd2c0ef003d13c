"""Keeps secrets out of anything a person or a log may read."""

from __future__ import annotations

import re
from collections.abc import Iterable

from detect_secrets.plugins import keyword
from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

REDACTED = "[REDACTED]"

# detect-secrets' maintained rules for token shapes (each detector's denylist: where a rule has a
# group, only the group is the secret, e.g. the password of a URL with credentials).
_DETECTORS = (
    AWSKeyDetector,
    ArtifactoryDetector,
    AzureStorageKeyDetector,
    BasicAuthDetector,
    DiscordBotTokenDetector,
    GitHubTokenDetector,
    GitLabTokenDetector,
    JwtTokenDetector,
    MailchimpDetector,
    NpmDetector,
    OpenAIDetector,
    PypiTokenDetector,
    SendGridDetector,
    SlackDetector,
    SquareOAuthDetector,
    StripeDetector,
    TelegramBotTokenDetector,
    TwilioKeyDetector,
)
# Keywords as detect-secrets lists them, with any affix (AWS_SECRET_ACCESS_KEY, client_secret,
# DATABASE_PASSWORD), followed by = or : and a value.
_KEYWORDS = "|".join((*keyword.DENYLIST, "token", "access_?key", "credentials?"))
_CREDENTIALS = [
    re.compile(
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY"
        r"( BLOCK)?-----|\Z)",
        re.DOTALL,
    ),  # PEM private keys, whole blocks
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),  # Anthropic keys
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/]{8,}=*"),  # bearer tokens
    *(pattern for detector in _DETECTORS for pattern in detector.denylist),
    re.compile(rf"(?i)(\b\w*(?:{_KEYWORDS})\w*[\"']?\s*(?::=|=>|[=:])\s*[\"'`]?)[^\s,;'\"`]{{4,}}"),
]
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")


def _apply(patterns: Iterable[re.Pattern[str]], text: str) -> str:
    """Each match redacted: its first group when it has one (the secret within the match, or
    the keyword before it, kept), else all of it."""
    for pattern in patterns:
        text = pattern.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    if not match.re.groups or match.group(1) is None:
        return REDACTED
    if match.start(1) == match.start():  # a keyword or prefix kept before the secret
        return match.group(1) + REDACTED
    whole, start = match.group(0), match.start()
    return whole[: match.start(1) - start] + REDACTED + whole[match.end(1) - start :]


def redact_credentials(text: str) -> str:
    """Only what looks like a key, token or password: for text that is content, such as a
    prompt, where an email address may be part of what is asked for."""
    return _apply(_CREDENTIALS, text)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _apply((*_CREDENTIALS, _EMAIL), text)
