"""The offline provider's follow-ups: a change request in plain words becomes edits of the base's
files, deterministically, so a second version can be made without a key. It understands: change
a colour, rename the site, add a section about a subject, remove a section (or the form), and
change a text ("change 'X' to 'Y'"); several joined by "and" or commas."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sheen_pipeline.models import Task, TaskInput, TaskType
from sheen_pipeline.providers.base import BaseVersion
from sheen_pipeline.providers.offline.assets import script_json

CHANGE_MARKER = "offline-change:"  # task.input.context of a task this module planned

COLOURS = {
    "dark green": "#1f5f3a",
    "green": "#2e7d32",
    "light green": "#a5d6a7",
    "dark blue": "#1a237e",
    "navy": "#1b2a49",
    "blue": "#1565c0",
    "light blue": "#90caf9",
    "teal": "#00695c",
    "red": "#c62828",
    "dark red": "#7f1d1d",
    "orange": "#e65100",
    "yellow": "#f9a825",
    "purple": "#5e35b1",
    "pink": "#d81b60",
    "brown": "#5d4037",
    "black": "#111111",
    "white": "#ffffff",
    "gray": "#555555",
    "grey": "#555555",
}
# What a colour request names, and the stylesheet's custom property it sets.
COLOUR_TARGETS = {
    "header": "--primary",
    "hero": "--primary",
    "site": "--primary",
    "page": "--primary",
    "headings": "--primary",
    "theme": "--primary",
    "main colour": "--primary",
    "main color": "--primary",
    "background": "--background",
    "accent": "--accent",
    "buttons": "--accent",
    "button": "--accent",
    "links": "--accent",
    "text": "--text",
}
STYLESHEETS = ("styles.css", "src/styles.css")
PAGES = ("src/App.jsx", "index.html")  # where sections live: the React app, else the page
FORM_SCRIPT = "js/forms.js"

_COLOUR_WORDS = "|".join(sorted(map(re.escape, COLOURS), key=len, reverse=True))
_TARGET_WORDS = "|".join(sorted(map(re.escape, COLOUR_TARGETS), key=len, reverse=True))
_COLOUR = re.compile(
    rf"(?:make|turn|change|paint|set|colou?r)\s+(?:the\s+)?(?P<target>{_TARGET_WORDS})"
    rf"(?:\s+colou?r)?\s+(?:to\s+|into\s+)?(?P<colour>{_COLOUR_WORDS}|#[0-9a-f]{{6}})\b",
    re.IGNORECASE,
)
_RENAME = re.compile(
    r"(?:rename|call)\s+(?:the\s+)?(?:site|page|app|it|business|shop)\s+(?:to\s+)?"
    r"[\"'“]?(?P<name>[^\"'”]+?)[\"'”]?\s*$",
    re.IGNORECASE,
)
_TEXT = re.compile(
    r"(?:change|replace)\s+[\"'“](?P<old>[^\"'”]+)[\"'”]\s+(?:to|with|by)\s+"
    r"[\"'“](?P<new>[^\"'”]+)[\"'”]",
    re.IGNORECASE,
)
_ADD = re.compile(
    r"add\s+(?:an?\s+|the\s+)?(?:section\s+(?:about|on|for|with)\s+(?P<about>.+?)|"
    r"(?P<subject>.+?)\s+section)\s*$",
    re.IGNORECASE,
)
_REMOVE = re.compile(
    r"(?:remove|delete|drop)\s+(?:the\s+)?(?P<subject>.+?)(?:\s+section)?\s*$", re.IGNORECASE
)
_SPLIT = re.compile(
    r"\s*(?:,|;|\band\b|\bthen\b|\.)\s*(?=(?:make|turn|change|paint|set|colou?r|rename|call|"
    r"add|remove|delete|drop|replace)\b)",
    re.IGNORECASE,
)
FORM_WORDS = ("form", "signup", "sign-up", "sign up", "newsletter", "contact", "booking")


class CannotChange(ValueError):
    """The follow-up asks for something the offline provider cannot do; says what it can."""


@dataclass(frozen=True)
class Edit:
    """One edit of one file: `op` is colour, replace, add_section or remove_section."""

    op: str
    args: tuple[str, ...]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _section_text(subject: str, site: str) -> str:
    if "hour" in subject.lower():
        return (
            "Monday to Friday: 7am to 6pm. Saturday: 8am to 5pm. Sunday: 9am to 3pm. "
            f"Holiday hours for {site} are posted here first."
        )
    return f"Everything about {subject.lower()} at {site}, kept up to date."


def site_name(base: BaseVersion) -> str:
    """The base's site name: from site.json, the React app's SITE, or the page's <h1>."""
    config = base.contents.get("site.json")
    if config:
        return str(json.loads(config)["name"])
    app = base.contents.get("src/App.jsx", "")
    match = re.search(r"const SITE = (\{.*?\});\n", app, re.DOTALL)
    if match:
        return str(json.loads(match.group(1))["name"])
    page = re.search(r"<h1>(.*?)</h1>", base.contents.get("index.html", ""), re.DOTALL)
    if page:
        return html.unescape(page.group(1).strip())
    raise CannotChange("the base has no site name the offline provider can find")


def _forms(subject: str) -> bool:
    return any(word in subject.lower() for word in FORM_WORDS)


def _first(base: BaseVersion, paths: tuple[str, ...]) -> str:
    for path in paths:
        if path in base.contents:
            return path
    raise CannotChange(f"the base has none of {', '.join(paths)}")


def _replace_everywhere(base: BaseVersion, old: str, new: str) -> dict[str, list[Edit]]:
    edits: dict[str, list[Edit]] = {}
    for path, text in base.contents.items():
        kind = _text_kind(path)
        if any(spell(old) in text for spell in SPELLINGS[kind]):
            edits.setdefault(path, []).append(Edit("replace", (old, new, kind)))
    if not edits:
        raise CannotChange(f"the base has no text {old!r}")
    return edits


# How a text is written in each kind of file: escaped in HTML, inside JSON strings (in a script,
# with <, > and & escaped too), as is elsewhere.
SPELLINGS: dict[str, tuple[Callable[[str], str], ...]] = {
    "html": (html.escape,),
    "json": (lambda text: json.dumps(text)[1:-1],),
    "script": (lambda text: script_json(text)[1:-1], lambda text: json.dumps(text)[1:-1]),
    "raw": (lambda text: text,),
}


def _text_kind(path: str) -> str:
    suffix = path.rsplit(".", 1)[-1]
    return {"html": "html", "json": "json", "js": "script", "jsx": "script", "mjs": "script"}.get(
        suffix, "raw"
    )


def plan_edits(request_prompt: str, base: BaseVersion) -> dict[str, list[Edit]]:
    """The edits of each file the follow-up changes (a file mapped to no edits is deleted)."""
    edits: dict[str, list[Edit]] = {}

    def merge(more: Mapping[str, list[Edit]]) -> None:
        for path, file_edits in more.items():
            edits.setdefault(path, []).extend(file_edits)

    for part in filter(None, (p.strip(" .") for p in _SPLIT.split(request_prompt))):
        merge(_edits_for(part, base))
    return edits


def _edits_for(part: str, base: BaseVersion) -> dict[str, list[Edit]]:
    if match := _COLOUR.search(part):
        prop = COLOUR_TARGETS[match["target"].lower()]
        colour = COLOURS.get(match["colour"].lower(), match["colour"].lower())
        return {_first(base, STYLESHEETS): [Edit("colour", (prop, colour))]}
    if match := _TEXT.search(part):
        return _replace_everywhere(base, match["old"], match["new"])
    if match := _RENAME.search(part):
        return _replace_everywhere(base, site_name(base), match["name"].strip())
    if match := _ADD.search(part):
        subject = (match["about"] or match["subject"]).strip()
        title = subject[:1].upper() + subject[1:]
        body = _section_text(subject, site_name(base))
        page = _first(base, PAGES)
        if f'<section id="{_slug(subject)}">' in base.contents[page]:
            raise CannotChange(f"the base already has a section {_slug(subject)!r}")
        return {page: [Edit("add_section", (_slug(subject), title, body))]}
    if match := _REMOVE.search(part):
        return _removal(match["subject"], base)
    raise CannotChange(
        f"the offline provider cannot make the change {part!r}; it can change a colour "
        "('make the header dark green'), rename the site, add a section ('add an opening "
        "hours section'), remove a section or the form, and change a text "
        "(change 'X' to 'Y')"
    )


def _removal(subject: str, base: BaseVersion) -> dict[str, list[Edit]]:
    page = _first(base, PAGES)
    text = base.contents[page]
    if _forms(subject):
        ids = re.findall(
            r'<section id="([^"]+)">\s*<h2>[^<]*</h2>\s*(?:<p>[^<]*</p>\s*)?<form', text
        )
        ids = ids or (["signup"] if 'id="signup"' in text else [])
        if not ids:
            raise CannotChange("the base has no form to remove")
        named = [i for i in ids if i in re.sub(r"[\s-]", "", subject.lower())]
        removed = named or ids
        edits = {page: [Edit("remove_section", (section,)) for section in removed]}
        if FORM_SCRIPT in base.tree and len(removed) == len(ids):
            edits[page].append(
                Edit("replace", (f'\n<script src="{FORM_SCRIPT}" defer></script>', "", "raw"))
            )
            edits[FORM_SCRIPT] = []
        return edits
    wanted = _slug(subject.removeprefix("the "))
    found = [s for s in re.findall(r'<section id="([^"]+)"', text) if wanted in s or s in wanted]
    if not found:
        raise CannotChange(f"the base has no section about {subject!r}")
    return {page: [Edit("remove_section", (found[0],))]}


def change_tasks(prompt: str, base: BaseVersion) -> tuple[Task, ...]:
    """One task per file: modify_file with its edits (in the task's context), or delete_file."""
    tasks = []
    for index, (path, edits) in enumerate(sorted(plan_edits(prompt, base).items()), start=1):
        deleting = not edits
        payload = json.dumps([{"op": e.op, "args": list(e.args)} for e in edits])
        tasks.append(
            Task(
                id=f"change_{index}",
                type=TaskType.DELETE_FILE if deleting else TaskType.MODIFY_FILE,
                name=f"{'Delete' if deleting else 'Change'} {path}",
                description=f"{'Remove' if deleting else 'Edit'} {path}: {prompt}",
                priority=2,
                estimated_duration_s=2,
                input=TaskInput(
                    prompt=prompt,
                    context="" if deleting else CHANGE_MARKER + payload,
                    target_path=path,
                ),
            )
        )
    return tuple(tasks)


def _colour(text: str, prop: str, colour: str) -> str:
    return re.sub(rf"{re.escape(prop)}:\s*[^;]+;", f"{prop}: {colour};", text, count=1)


def _replace(text: str, old: str, new: str, kind: str) -> str:
    for spell in SPELLINGS[kind]:
        text = text.replace(spell(old), spell(new))
    return text


def _add_section(text: str, section_id: str, title: str, body: str) -> str:
    if text.lstrip().startswith("import"):  # a React component: JSX with the texts as strings
        block = (
            f'        <section id="{section_id}">\n          <h2>{{{script_json(title)}}}</h2>\n'
            f"          <p>{{{script_json(body)}}}</p>\n        </section>\n"
        )
        return text.replace("      </main>", block + "      </main>", 1)
    block = f'<section id="{section_id}">\n<h2>{html.escape(title)}</h2>\n<p>{html.escape(body)}</p>\n</section>\n'
    text = text.replace("</main>", block + "</main>", 1)
    link = f'<a href="#{section_id}">{html.escape(title)}</a>'
    return text.replace("</nav>", link + "</nav>", 1) if "<nav>" in text else text


def _remove_section(text: str, section_id: str) -> str:
    if text.lstrip().startswith("import"):
        component = {"signup": "SignupForm", "features": "Features"}.get(section_id)
        return text.replace(f"        <{component} />\n", "") if component else text
    text = re.sub(
        rf'<section id="{re.escape(section_id)}">.*?</section>\n?',
        "",
        text,
        count=1,
        flags=re.DOTALL,
    )
    return re.sub(rf'<a href="#{re.escape(section_id)}">[^<]*</a>', "", text)


APPLY: dict[str, Callable[..., str]] = {
    "colour": _colour,
    "replace": _replace,
    "add_section": _add_section,
    "remove_section": _remove_section,
}


def apply_edits(edits: Sequence[Edit], current: str) -> str:
    for edit in edits:
        current = APPLY[edit.op](current, *edit.args)
    return current


def apply_change(task: Task, current: str) -> str:
    """The file after the edits its task carries."""
    carried = json.loads(task.input.context.removeprefix(CHANGE_MARKER))
    return apply_edits([Edit(e["op"], tuple(e["args"])) for e in carried], current)
