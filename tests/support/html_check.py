"""A strict-enough HTML well-formedness check, and the local files a page links to."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"meta", "link", "input", "br", "img", "hr", "source", "area", "base", "col", "wbr"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        for key in ("href", "src"):
            value = attributes.get(key)
            if value and not value.startswith(("#", "http:", "https:", "mailto:")):
                self.links.append(value)
        if tag not in VOID:
            self.stack.append(tag)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}>, open: {self.stack}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_bodies.append(data)


def check_html(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert checker.problems == [], checker.problems
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker
