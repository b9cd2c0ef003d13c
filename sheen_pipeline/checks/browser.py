"""Look at a deployed preview in a real browser (Debian's Chromium headless shell, driven by
Playwright): does it load, show something on its first screen, run without errors (watched until
the network is idle and a settle window after), load what it references, have a title and
heading, fit a phone, make its forms refuse an empty submit, and pass axe-core's serious rules.
Screenshots at desktop and phone widths. Without a browser, every check says so (a warning),
never a silent pass.

Generated pages are untrusted. Chromium runs in the build sandbox (as nobody, in a network
namespace of its own: nothing of the host is reachable whatever a page does), and every request
it makes is answered here: the preview's own origin from the deployed files, anything else
(other origins, WebSockets) refused and reported; service workers are blocked."""

from __future__ import annotations

import mimetypes
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from sheen_pipeline.build.sandbox import Sandbox, SandboxUnavailable, base_env
from sheen_pipeline.checks import page_checks
from sheen_pipeline.checks.acceptance import FAILED_STEP_SHOT, run_acceptance
from sheen_pipeline.checks.driver import in_driver
from sheen_pipeline.checks.results import CHECKS, SCREENSHOTS, CheckReport, CheckResult
from sheen_pipeline.checks.source_maps import SourceMaps
from sheen_pipeline.models import AcceptanceStep

T = TypeVar("T")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DESKTOP_SHOT, PHONE_SHOT = SCREENSHOTS
DEFAULT_LOAD_SETTLE_MS = 1500  # after the network is idle: late errors and late rendering
INSTALL_HINT = "apt-get install chromium-headless-shell (or `make browser`)"
# The preview's origin as the browser sees it. Nothing listens there (Chromium's network
# namespace is empty): every answer comes from the deployed files, through route().
PREVIEW_ORIGIN = "http://127.0.0.1:4173"
PREVIEW_URL = f"{PREVIEW_ORIGIN}/"
BROWSER_CPU_S = 600
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]  # bwrap confines it


def chromium_path() -> str | None:
    """Chromium's headless shell first: the same Blink without the browser's UI layers, it
    costs half the CPU a check (1.6 against 3.2 CPU-s measured); the full browser otherwise."""
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


def check_preview(
    site: Mapping[str, bytes],
    forms_expected: int,
    screenshots: Path,
    sandbox: Sandbox,
    settle_ms: int = DEFAULT_LOAD_SETTLE_MS,
    acceptance: Sequence[AcceptanceStep] = (),
    source_maps: Mapping[str, bytes] | None = None,
) -> CheckReport:
    """Every check of the site (its files by path). After loading, the page is watched
    until the network is idle and then settle_ms more, so late errors and late rendering count.
    An uncaught error names the source file and line its stack maps to (`source_maps`)."""
    maps = SourceMaps(source_maps or {})

    def check(playwright: Any, executable: str) -> CheckReport:
        return _check(
            playwright, executable, site, forms_expected, screenshots, settle_ms, acceptance, maps
        )

    return _in_browser(check, sandbox, CheckReport.not_run)


def run_steps(
    site: Mapping[str, bytes],
    steps: Sequence[AcceptanceStep],
    screenshots: Path,
    sandbox: Sandbox,
) -> CheckResult:
    """Only the steps, on a first visit of the site, in the same confined browser as the checks:
    how an evaluation's hidden steps (never shown to the model) judge a build."""

    def use(playwright: Any, executable: str) -> CheckResult:
        screenshots.mkdir(parents=True, exist_ok=True)
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            page = _watched_page(browser, site, [], [], SourceMaps({}))
            page.goto(PREVIEW_URL, wait_until="load")
            return run_acceptance(page, steps, PREVIEW_URL, screenshots)
        finally:
            browser.close()

    return _in_browser(use, sandbox, lambda why: CheckResult.not_run("acceptance", why))


def _in_browser(work: Callable[[Any, str], T], sandbox: Sandbox, not_run: Callable[[str], T]) -> T:
    """work(playwright, the browser's executable) on the process's driver (driver.py), which
    works from inside an event loop (the build job's executor) too; not_run(why) without a
    browser or its sandbox."""
    browser = chromium_path()
    if browser is None:
        return not_run(f"no browser ({INSTALL_HINT})")

    def confined(playwright: Any) -> T:
        try:
            with _confined_browser(browser, sandbox) as executable:
                return work(playwright, executable)
        except SandboxUnavailable as unavailable:
            return not_run(f"the browser runs only sandboxed; {unavailable}")

    return in_driver(confined)


@contextmanager
def _confined_browser(browser: str, sandbox: Sandbox) -> Iterator[str]:
    """An executable that starts Chromium in the sandbox (Playwright passes it its arguments
    and talks to it over inherited pipes); Chromium itself without one (trusted local use)."""
    if not sandbox.enabled:
        yield browser
        return
    env = base_env("/tmp")
    with (
        sandbox.confined("browser", (), env, BROWSER_CPU_S) as prefix,
        tempfile.TemporaryDirectory(prefix="sheen-browser-") as folder,
    ):
        script = Path(folder) / "chromium"
        script.write_text(f'#!/bin/sh\nexec {shlex.join([*prefix, browser])} "$@"\n')
        script.chmod(0o700)
        yield str(script)


def _check(
    playwright: Any,
    executable: str,
    site: Mapping[str, bytes],
    forms_expected: int,
    screenshots: Path,
    settle_ms: int,
    acceptance: Sequence[AcceptanceStep],
    maps: SourceMaps,
) -> CheckReport:
    screenshots.mkdir(parents=True, exist_ok=True)
    (screenshots / f"{FAILED_STEP_SHOT}.png").unlink(missing_ok=True)  # an earlier attempt's
    results: dict[str, CheckResult] = {}
    url = PREVIEW_URL
    refused: list[str] = []
    browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
    try:
        console: list[str] = []
        failed: list[str] = []
        page = _watched_page(browser, site, refused, console, maps)
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        response = page.goto(url, wait_until="load")
        _settle(page, settle_ms)
        status = response.status if response else 0
        results["page_loads"] = CheckResult(
            "page_loads", status == 200, f"HTTP {status}", {"status": status}
        )
        results["renders_content"] = page_checks.renders_content(page)
        broken = sorted({u for u in failed if _same_origin(u, url)} | _broken_links(page, site))
        results["assets_load"] = CheckResult(
            "assets_load",
            not broken,
            "every local asset and link loads"
            if not broken
            else f"{len(broken)} broken: {', '.join(broken[:5])}",
            {"broken": broken},
        )
        page.screenshot(path=str(screenshots / f"{DESKTOP_SHOT}.png"), full_page=True)
        results["title_and_heading"] = page_checks.title_and_heading(page)
        results["accessibility"] = page_checks.accessibility(page)
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(page_checks.SETTLE_MS)
        width = int(page.evaluate("document.documentElement.scrollWidth"))
        results["mobile_overflow"] = CheckResult(
            "mobile_overflow",
            width <= PHONE["width"],
            f"{width} px wide at a {PHONE['width']} px viewport",
            {"scroll_width": width},
        )
        page.screenshot(path=str(screenshots / f"{PHONE_SHOT}.png"), full_page=True)
        results["forms_validate"] = page_checks.forms(page, url, forms_expected)
        using = _watched_page(browser, site, refused, console, maps)  # a first visit: no storage
        using.goto(url, wait_until="load")
        results["acceptance"] = run_acceptance(using, acceptance, url, screenshots)
        results["own_origin_only"] = _own_origin_only(refused)
        results["no_errors"] = _no_errors(console)  # what the checks' own use of it raised too
    finally:
        browser.close()
    return CheckReport(
        results=tuple(results[name] for name in CHECKS),
        screenshots={
            name: screenshots / f"{name}.png"
            for name in (*SCREENSHOTS, FAILED_STEP_SHOT)
            if (screenshots / f"{name}.png").is_file()
        },
    )


def _watched_page(
    browser: Any,
    site: Mapping[str, bytes],
    refused: list[str],
    console: list[str],
    maps: SourceMaps,
) -> Any:
    """A page in a context of its own, answered from the site's files (anything else refused
    and noted), its errors collected in console."""
    context = browser.new_context(viewport=DESKTOP, service_workers="block")
    context.route("**/*", lambda route, request: _answer(route, request, site, refused))
    context.route_web_socket(re.compile(".*"), lambda socket: _refuse(socket, refused))
    page = context.new_page()
    page.on("pageerror", lambda error: console.append(_uncaught(error, maps)))
    page.on("console", lambda message: _console_error(message, console))
    return page


def _settle(page: Any, settle_ms: int) -> None:
    """Until the network is idle (Playwright: no request for 500 ms; a page that never goes
    quiet is given up on after the settle window), then settle_ms more."""
    try:
        page.wait_for_load_state("networkidle", timeout=max(settle_ms, 1000) * 4)
    except Exception as error:  # Playwright's TimeoutError: a page that keeps polling
        if type(error).__name__ != "TimeoutError":
            raise
    page.wait_for_timeout(settle_ms)


def _no_errors(console: list[str]) -> CheckResult:
    return CheckResult(
        "no_errors",
        not console,
        "no uncaught exceptions or console errors" if not console else "; ".join(console[:5]),
        {"console": list(console)},
    )


def _answer(route: Any, request: Any, site: Mapping[str, bytes], refused: list[str]) -> None:
    """The preview's own files for its origin; every other request refused (and noted)."""
    if not _same_origin(request.url, PREVIEW_URL):
        refused.append(request.url)
        route.abort("blockedbyclient")
        return
    found = _lookup(site, request.url)
    if found is None:
        route.fulfill(status=404, body="Not Found", content_type="text/plain")
        return
    path, body = found
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    route.fulfill(status=200, body=body, content_type=content_type)


def _refuse(socket: Any, refused: list[str]) -> None:
    refused.append(socket.url)
    socket.close()


def _lookup(site: Mapping[str, bytes], url: str) -> tuple[str, bytes] | None:
    """The file a static server would answer url with (a folder's index.html for a folder)."""
    path = unquote(urlsplit(url).path).lstrip("/")
    folder = path == "" or path.endswith("/")
    for candidate in [f"{path}index.html"] if folder else [path, f"{path}/index.html"]:
        if candidate in site:
            return candidate, site[candidate]
    return None


def _own_origin_only(refused: list[str]) -> CheckResult:
    outside = sorted(set(refused))
    return CheckResult(
        "own_origin_only",
        not outside,
        "every request stayed on the preview's own origin"
        if not outside
        else f"{len(outside)} request(s) outside the preview refused: {', '.join(outside[:5])}",
        {"refused": outside},
    )


def _uncaught(error: Any, maps: SourceMaps) -> str:
    """The error, and the source file and line its stack maps to."""
    where = maps.source_of(getattr(error, "stack", None) or "")
    return f"uncaught: {error}" + (f" (at {where})" if where else "")


def _console_error(message: Any, console: list[str]) -> None:
    """Console errors, but the browser's own network notes: a failed load is assets_load's
    business (and a missing favicon, which pages need not have, is nobody's)."""
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        console.append(f"console.error: {message.text}")


def _same_origin(candidate: str, base: str) -> bool:
    return urlsplit(candidate).netloc == urlsplit(base).netloc


def _broken_links(page: Any, site: Mapping[str, bytes]) -> set[str]:
    """Local links (same origin, not anchors) to no file of the site."""
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    return {
        href
        for href in {urljoin(PREVIEW_URL, h).split("#")[0] for h in hrefs}
        if href and _same_origin(href, PREVIEW_URL) and _lookup(site, href) is None
    }
