"""HTML pages of offline sites. Every piece of prompt text passes through html.escape."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sheen_pipeline.providers.offline.assets import script_json
from sheen_pipeline.providers.offline.brief import SiteBrief
from sheen_pipeline.providers.offline.plans import (
    DASHBOARD_PATH,
    FORMS_PATH,
    POST_PATH,
    STYLES_PATH,
    TODO_PATH,
)

_MENUS = {
    "coffee": ["Espresso", "Flat white", "Pour-over of the day", "Cold brew", "Almond croissant"],
    "bakery": ["Sourdough loaf", "Cinnamon roll", "Seeded rye", "Fruit tart"],
    "pizza": ["Margherita", "Marinara", "Funghi", "Seasonal special"],
    "restaurant": ["Starters", "Mains", "Desserts", "Drinks"],
}


def _e(text: str) -> str:
    return escape(text, quote=True)


@dataclass(frozen=True)
class _Section:
    section_id: str
    title: str
    body: str

    @property
    def html(self) -> str:
        return (
            f'<section id="{self.section_id}">\n<h2>{_e(self.title)}</h2>\n{self.body}\n</section>'
        )

    @property
    def link(self) -> str:
        return f'<a href="#{self.section_id}">{_e(self.title)}</a>'


def _section(section_id: str, title: str, body: str) -> _Section:
    return _Section(section_id, title, body)


def _form(kind: str, brief: SiteBrief) -> _Section:
    if kind == "signup_form":
        title, button = "Sign up", "Sign up"
        fields = (
            '<label>Name <input name="name" required minlength="2" placeholder=" " '
            'autocomplete="name"></label>\n'
            '<label>Email <input name="email" type="email" required placeholder=" " '
            'autocomplete="email"></label>'
        )
        intro = f"Be the first to hear news from {brief.name}."
    else:
        title, button = "Contact", "Send message"
        fields = (
            '<label>Name <input name="name" required minlength="2" placeholder=" "></label>\n'
            '<label>Email <input name="email" type="email" required placeholder=" "></label>\n'
            '<label>Message <textarea name="message" required minlength="10" rows="4" '
            'placeholder=" "></textarea></label>'
        )
        intro = f"Questions for {brief.name}? Send us a note."
    body = (
        f"<p>{_e(intro)}</p>\n"
        f'<form data-validate id="{kind.replace("_", "-")}" novalidate>\n{fields}\n'
        f'<button type="submit">{button}</button>\n'
        '<p class="form-status" role="status" aria-live="polite"></p>\n</form>'
    )
    return _section(kind.replace("_form", ""), title, body)


def _cards(items: list[tuple[str, str]]) -> str:
    cards = "\n".join(f'<div class="card"><h3>{_e(t)}</h3><p>{_e(d)}</p></div>' for t, d in items)
    return f'<div class="cards">\n{cards}\n</div>'


def _menu_items(brief: SiteBrief) -> list[str]:
    subject = f"{brief.business or ''} {brief.name}".lower()
    return next((items for key, items in _MENUS.items() if key in subject), _MENUS["restaurant"])


def _feature_sections(brief: SiteBrief) -> list[_Section]:
    where = f" in {brief.location}" if brief.location else ""
    sections = []
    if "menu" in brief.features:
        sections.append(
            _section(
                "menu",
                "Menu",
                _cards([(i, f"Made fresh at {brief.name}.") for i in _menu_items(brief)]),
            )
        )
    if "pricing" in brief.features:
        sections.append(
            _section(
                "pricing",
                "Pricing",
                _cards(
                    [
                        ("Starter", "Everything you need to begin."),
                        ("Plus", "More of what you love, for regulars."),
                        ("Pro", f"The full {brief.name} experience."),
                    ]
                ),
            )
        )
    if "gallery" in brief.features:
        sections.append(
            _section(
                "gallery",
                "Gallery",
                _cards([(f"{brief.name} #{n}", "A moment worth sharing.") for n in (1, 2, 3)]),
            )
        )
    if "testimonials" in brief.features:
        sections.append(
            _section(
                "testimonials",
                "What people say",
                _cards(
                    [
                        ("A regular", f"{brief.name} is the best part of my week."),
                        ("A newcomer", f"So glad I found {brief.name}{where}."),
                    ]
                ),
            )
        )
    if "hours" in brief.features:
        sections.append(
            _section(
                "hours",
                "Opening hours",
                "<p>Monday to Friday 7:00-18:00<br>Saturday and Sunday 8:00-16:00</p>",
            )
        )
    if "faq" in brief.features:
        sections.append(
            _section(
                "faq",
                "Questions",
                f"<dl><dt>Where is {_e(brief.name)}?</dt><dd>{_e(brief.location or 'Online, for now.')}</dd></dl>",
            )
        )
    return sections


def _kind_sections(brief: SiteBrief) -> list[_Section]:
    if brief.kind == "todo":
        return [
            _section(
                "todos",
                "Your list",
                (
                    '<form id="todo-form" novalidate>\n<label>New item <input id="todo-input" required '
                    'minlength="1" maxlength="200" placeholder=" "></label>\n'
                    '<button type="submit">Add</button>\n'
                    '<p class="form-status" id="todo-status" role="status" aria-live="polite"></p>\n'
                    '</form>\n<ul id="todo-list" class="todo-list"></ul>'
                ),
            )
        ]
    if brief.kind == "dashboard":
        series = [
            {"label": m, "value": v}
            for m, v in (
                ("Jan", 42),
                ("Feb", 55),
                ("Mar", 61),
                ("Apr", 58),
                ("May", 73),
                ("Jun", 80),
            )
        ]
        return [
            _section(
                "metrics",
                "This quarter",
                _cards([("Visitors", "12,480"), ("Sign-ups", "1,032"), ("Conversion", "8.3%")]),
            ),
            _section(
                "trend",
                "Monthly trend",
                (
                    f'<script type="application/json" id="metrics-data">{script_json({"series": series})}</script>\n'
                    '<svg id="chart" class="chart" viewBox="0 0 400 200" width="400" height="200" role="img" '
                    'aria-label="Monthly trend"></svg>'
                ),
            ),
        ]
    if brief.kind == "blog":
        return [
            _section(
                "posts",
                "Latest posts",
                (
                    f'<article class="card"><h3><a href="{POST_PATH}">Welcome to {_e(brief.name)}</a></h3>'
                    "<p>Why we started, and what comes next.</p></article>"
                ),
            )
        ]
    if brief.kind == "portfolio":
        return [
            _section(
                "work",
                "Selected work",
                _cards(
                    [
                        ("Project one", "A recent piece, start to finish."),
                        ("Project two", "A collaboration worth showing."),
                        ("Project three", "An experiment that became a favourite."),
                    ]
                ),
            )
        ]
    what = brief.business or "team"
    where = f" in {brief.location}" if brief.location else ""
    return [_section("about", "About", f"<p>{_e(brief.name)} is a {_e(what)}{_e(where)}.</p>")]


def _scripts(brief: SiteBrief) -> list[str]:
    scripts = [FORMS_PATH] if brief.forms else []
    scripts += {"todo": [TODO_PATH], "dashboard": [DASHBOARD_PATH]}.get(brief.kind, [])
    return scripts


def _page(title: str, header: str, body: str, stylesheet: str, scripts: list[str]) -> str:
    script_tags = "".join(f'\n<script src="{s}" defer></script>' for s in scripts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<link rel="stylesheet" href="{stylesheet}">{script_tags}
</head>
<body>
{header}
<main>
{body}
</main>
<footer><p>&copy; {_e(title)}</p></footer>
</body>
</html>
"""


def index_page(brief: SiteBrief) -> str:
    sections = (
        _kind_sections(brief) + _feature_sections(brief) + [_form(f, brief) for f in brief.forms]
    )
    links = "".join(section.link for section in sections)
    header = (
        f'<header class="hero">\n<h1>{_e(brief.name)}</h1>\n<p>{_e(brief.tagline)}</p>\n'
        f"<nav>{links}</nav>\n</header>"
    )
    body = "\n".join(section.html for section in sections)
    return _page(brief.name, header, body, STYLES_PATH, _scripts(brief))


def post_page(brief: SiteBrief) -> str:
    header = f'<header class="hero">\n<h1>Welcome to {_e(brief.name)}</h1>\n<nav><a href="../index.html">Home</a></nav>\n</header>'
    body = (
        f"<article>\n<p>{_e(brief.tagline)}</p>\n<p>This is the first post of {_e(brief.name)}. "
        "Here we will share what we make, what we learn and what is next.</p>\n</article>"
    )
    return _page(f"Welcome to {brief.name}", header, body, f"../{STYLES_PATH}", [])


def add_metadata(page: str, brief: SiteBrief) -> str:
    """modify_file: add description and Open Graph tags to an existing page's head."""
    tags = (
        f'<meta name="description" content="{_e(brief.tagline)}">\n'
        f'<meta property="og:title" content="{_e(brief.name)}">\n'
        f'<meta property="og:description" content="{_e(brief.tagline)}">\n'
    )
    if 'name="description"' in page:
        return page
    return page.replace("</head>", tags + "</head>", 1)
