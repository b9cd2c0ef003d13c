"""Read what a plain-words request asks for: the business name, the kind of site, its sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

SiteKind = Literal["landing", "portfolio", "blog", "todo", "dashboard", "site"]

_KIND_KEYWORDS: list[tuple[SiteKind, tuple[str, ...]]] = [
    ("todo", ("todo", "to-do", "to do list", "task list", "checklist")),
    ("dashboard", ("dashboard", "analytics", "admin panel", "metrics", "kpi")),
    ("blog", ("blog", "articles", "posts", "journal")),
    ("portfolio", ("portfolio", "showcase", "my work", "resume", "résumé")),
    ("landing", ("landing", "homepage", "home page", "launch", "coming soon", "waitlist")),
]

_FEATURE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "signup_form": (
        "signup",
        "sign-up",
        "sign up",
        "newsletter",
        "waitlist",
        "subscribe",
        "register",
    ),
    "contact_form": ("contact", "get in touch", "enquir", "inquir", "booking", "reservation"),
    "menu": ("menu",),
    "pricing": ("pricing", "prices", "plans"),
    "gallery": ("gallery", "photos", "pictures", "images"),
    "testimonials": ("testimonial", "reviews"),
    "faq": ("faq", "questions"),
    "hours": ("hours", "opening times", "open times"),
}

_DEFAULT_NAMES: dict[SiteKind, str] = {
    "landing": "Your Business",
    "portfolio": "My Portfolio",
    "blog": "My Blog",
    "todo": "Todo List",
    "dashboard": "Dashboard",
    "site": "My Site",
}

_BUSINESS_WORDS: list[tuple[str, str]] = [
    ("coffee", "coffee shop"),
    ("café", "café"),
    ("cafe", "café"),
    ("bakery", "bakery"),
    ("pizza", "pizzeria"),
    ("restaurant", "restaurant"),
    ("yoga", "yoga studio"),
    ("gym", "gym"),
    ("salon", "salon"),
    ("book", "bookshop"),
    ("agency", "agency"),
    ("studio", "studio"),
    ("shop", "shop"),
    ("store", "store"),
]

_CAP_WORD = r"[A-Z][\w'&.\-]*"
_NAME_AFTER = re.compile(
    rf"\b(?:for|called|named)\s+((?:{_CAP_WORD})(?:\s+(?:{_CAP_WORD}|&|of|the|and|de|la))*)"
)
_QUOTED = re.compile(r"[\"“']([^\"”']{2,60})[\"”']")
_NOUN_AFTER = re.compile(
    r"\bfor\s+(?:a|an|the|my|our)\s+([a-z][a-z\s\-]{1,40}?)"
    r"(?=\s+(?:in|with|that|which|and|to|where|called|named|near)\b|[,.;!?]|$)"
)
_LOCATION = re.compile(rf"\bin\s+({_CAP_WORD}(?:\s+{_CAP_WORD})*)")
_TRAILING_JOINERS = {"of", "the", "and", "&", "de", "la"}


@dataclass(frozen=True)
class SiteBrief:
    name: str
    kind: SiteKind
    business: str | None
    location: str | None
    features: tuple[str, ...] = field(default=())

    @property
    def forms(self) -> tuple[str, ...]:
        return tuple(f for f in self.features if f.endswith("_form"))

    @property
    def tagline(self) -> str:
        what = self.business or {"portfolio": "portfolio", "blog": "blog"}.get(self.kind, "place")
        where = f" in {self.location}" if self.location else ""
        return f"{self.name}: your {what}{where}."


def _contains(text: str, needles: tuple[str, ...]) -> bool:
    return any(needle in text for needle in needles)


def _trim_joiners(words: list[str]) -> list[str]:
    while words and words[-1].lower() in _TRAILING_JOINERS:
        words.pop()
    return words


def read_brief(prompt: str) -> SiteBrief:
    lowered = prompt.lower()
    kind: SiteKind = next((k for k, words in _KIND_KEYWORDS if _contains(lowered, words)), "site")
    features = tuple(f for f, words in _FEATURE_KEYWORDS.items() if _contains(lowered, words))
    noun = _NOUN_AFTER.search(prompt)
    business = noun.group(1).strip() if noun else _guess_business(lowered)
    location_match = _LOCATION.search(prompt)
    location = location_match.group(1) if location_match else None
    return SiteBrief(
        name=_find_name(prompt, business, kind),
        kind=kind,
        business=business,
        location=location,
        features=features,
    )


def _guess_business(lowered: str) -> str | None:
    return next((label for word, label in _BUSINESS_WORDS if word in lowered), None)


def _find_name(prompt: str, business: str | None, kind: SiteKind) -> str:
    quoted = _QUOTED.search(prompt)
    if quoted:
        return quoted.group(1).strip()
    for match in _NAME_AFTER.finditer(prompt):
        words = _trim_joiners(match.group(1).split())
        if words:
            return " ".join(words)
    if business:
        return business.title()
    return _DEFAULT_NAMES[kind]
