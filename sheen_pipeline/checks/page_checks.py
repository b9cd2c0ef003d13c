"""What the browser checks look for on a loaded page: something a person can see on the first
screen, a title and a heading, forms that refuse an empty submit, and axe-core's serious rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sheen_pipeline.checks.flat_image import is_one_colour
from sheen_pipeline.checks.results import CheckResult

SETTLE_MS = 300  # after an interaction (a resize, a submit)
MIN_VISIBLE_CHARS = 10  # of text in the first viewport, when it has no control or image
AXE_SCRIPT = (
    Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
)


def renders_content(page: Any) -> CheckResult:
    """A person sees something on the first screen: enough visible text, or a visible control
    or image, and a screen that is not one flat colour. A blank page, a script that renders into
    nothing, an app that renders null and text the colour of its background all fail."""
    seen: dict[str, int] = page.evaluate(_VISIBLE_CONTENT)
    chars, things = seen["chars"], seen["things"]
    flat = is_one_colour(page.screenshot(type="png"))
    shown = (chars >= MIN_VISIBLE_CHARS or things > 0) and not flat
    if shown:
        summary = f"{chars} characters of text and {things} controls or images in the first screen"
    elif chars >= MIN_VISIBLE_CHARS or things > 0:
        summary = "the first screen is blank: it shows one flat colour (its content cannot be seen)"
    else:
        summary = "the first screen is blank: no visible text, control or image" + (
            f" (only {chars} characters of text)" if chars else ""
        )
    return CheckResult(
        "renders_content",
        shown,
        summary,
        {"visible_chars": chars, "visible_controls_or_images": things, "one_flat_colour": flat},
    )


_VISIBLE_CONTENT = """() => {
  const [vw, vh] = [window.innerWidth, window.innerHeight];
  const inView = r => r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 &&
    r.top < vh && r.left < vw;
  const shown = e => {
    for (let el = e; el; el = el.parentElement) {
      const s = getComputedStyle(el);
      if (s.display === 'none' || s.visibility === 'hidden' || parseFloat(s.opacity) === 0) {
        return false;
      }
    }
    return true;
  };
  let chars = 0;
  const root = document.body || document.documentElement;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(parent.tagName)) {
      continue;
    }
    const range = document.createRange();
    range.selectNodeContents(node);
    if (inView(range.getBoundingClientRect()) && shown(parent)) chars += text.length;
  }
  const selector = 'button, a[href], input:not([type=hidden]), select, textarea, img, svg, canvas, video';
  const things = [...root.querySelectorAll(selector)]
    .filter(e => inView(e.getBoundingClientRect()) && shown(e)).length;
  return {chars, things};
}"""


def title_and_heading(page: Any) -> CheckResult:
    title = page.title().strip()
    heading = page.evaluate(
        "(() => { const h = document.querySelector('h1');"
        " return h && h.offsetParent !== null ? h.innerText.trim() : ''; })()"
    )
    missing = [what for what, value in (("title", title), ("visible h1", heading)) if not value]
    return CheckResult(
        "title_and_heading",
        not missing,
        f"title {title!r}, heading {heading!r}"
        if not missing
        else f"missing: {', '.join(missing)}",
        {"title": title, "heading": heading},
    )


def forms(page: Any, url: str, expected: int) -> CheckResult:
    """Each form, submitted empty, must stay on the page and show why (a visible status or
    alert text, or the browser's own validation message)."""
    count = int(page.evaluate("document.forms.length"))
    problems = [f"{expected} form(s) asked for, {count} on the page"] if count < expected else []
    for index in range(count):
        page.goto(url, wait_until="load")
        page.evaluate(
            f"document.forms[{index}].querySelectorAll('input,textarea').forEach(e => e.value = '')"
        )
        submit = page.locator("form").nth(index).locator("[type=submit], button").first
        if submit.count() == 0:
            problems.append(f"form {index + 1} has no submit button")
            continue
        submit.click()
        page.wait_for_timeout(SETTLE_MS)
        told = page.evaluate(_SAYS_WHY, index)
        if page.url.split("#")[0] != url.split("#")[0] or not told:
            problems.append(f"form {index + 1} accepts an empty submit without a visible message")
    return CheckResult(
        "forms_validate",
        not problems,
        "; ".join(problems) if problems else f"{count} form(s) refuse an empty submit",
        {"forms": count, "expected": expected},
    )


_SAYS_WHY = """index => {
  const form = document.forms[index];
  const visible = e => e.offsetParent !== null && e.innerText.trim() !== '';
  const said = [...document.querySelectorAll('[role=status],[role=alert],[aria-live]')].some(visible);
  const native = [...form.elements].some(e => e.validationMessage && !form.noValidate);
  const marked = form.querySelector('[aria-invalid=true]') !== null;
  return said || native || marked;
}"""


def accessibility(page: Any) -> CheckResult:
    if not AXE_SCRIPT.is_file():
        return CheckResult.not_run("accessibility", "axe-core missing (`make browser`)")
    page.add_script_tag(path=str(AXE_SCRIPT))
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))"
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    return CheckResult(
        "accessibility",
        not serious,
        f"{len(serious)} serious or critical axe violations"
        + (f": {', '.join(v['id'] for v in serious)}" if serious else ""),
        {"serious_or_critical": len(serious), "violations": violations},
    )
