"""Stylesheet and scripts of offline sites. Prompt text reaches scripts only as escaped JSON."""

from __future__ import annotations

import hashlib
import json

from sheen_pipeline.providers.offline.brief import SiteBrief

_PALETTES = [
    ("#2f5d50", "#f4efe6", "#c8553d"),
    ("#1d3557", "#f1faee", "#e63946"),
    ("#3d2c8d", "#f7f7fb", "#ff8c42"),
    ("#264027", "#f6f4ec", "#b6862c"),
    ("#0f4c5c", "#f5f3f0", "#e36414"),
]


def script_json(value: object) -> str:
    """JSON that is safe inside a <script> element and a JS file: no tag or entity can close it."""
    text = json.dumps(value, ensure_ascii=True)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text


def stylesheet(brief: SiteBrief) -> str:
    digest = hashlib.sha256(brief.name.encode()).digest()[0]
    primary, background, accent = _PALETTES[digest % len(_PALETTES)]
    return f""":root {{
  --primary: {primary};
  --background: {background};
  --accent: {accent};
  --text: #1f1f1f;
  --radius: 10px;
}}
* {{ box-sizing: border-box; }}
body {{
  margin: 0;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--text);
  background: var(--background);
  line-height: 1.6;
}}
header.hero {{
  background: var(--primary);
  color: #fff;
  padding: 4rem 1.5rem;
  text-align: center;
}}
header.hero h1 {{ font-size: clamp(2rem, 5vw, 3.5rem); margin: 0 0 0.5rem; }}
nav {{ display: flex; gap: 1rem; justify-content: center; flex-wrap: wrap; margin-top: 1.5rem; }}
nav a {{ color: #fff; text-decoration: none; border-bottom: 2px solid var(--accent); }}
main {{ max-width: 960px; margin: 0 auto; padding: 2rem 1.5rem; }}
section {{ margin: 2.5rem 0; }}
h2 {{ color: var(--primary); }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 1rem; }}
.card {{ background: #fff; border-radius: var(--radius); padding: 1.25rem;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.08); }}
form {{ display: grid; gap: 0.75rem; max-width: 420px; }}
label {{ display: grid; gap: 0.25rem; font-weight: 600; }}
input, textarea {{ font: inherit; padding: 0.6rem; border: 1px solid #bbb; border-radius: 6px; }}
input:invalid:not(:placeholder-shown), textarea:invalid:not(:placeholder-shown) {{
  border-color: var(--accent);
}}
button {{ font: inherit; background: var(--primary); color: #fff; border: 0; border-radius: 6px;
  border-bottom: 3px solid var(--accent); padding: 0.7rem 1.2rem; cursor: pointer; }}
.form-status {{ min-height: 1.5rem; font-weight: 600; color: var(--primary); }}
.todo-list {{ list-style: none; padding: 0; }}
.todo-list li {{ display: flex; gap: 0.5rem; align-items: center; padding: 0.4rem 0; }}
.todo-list li.done span {{ text-decoration: line-through; opacity: 0.6; }}
.chart {{ max-width: 100%; height: auto; }}
.chart rect {{ fill: var(--primary); }}
.chart text {{ font-size: 12px; fill: var(--text); }}
footer {{ text-align: center; padding: 2rem; opacity: 0.7; }}
@media (max-width: 600px) {{ header.hero {{ padding: 2.5rem 1rem; }} }}
"""


def forms_script(brief: SiteBrief) -> str:
    return f"""// Browser-side validation for every form marked data-validate.
(function () {{
  "use strict";
  var SITE_NAME = {script_json(brief.name)};
  document.querySelectorAll("form[data-validate]").forEach(function (form) {{
    var status = form.querySelector(".form-status");
    form.addEventListener("submit", function (event) {{
      event.preventDefault();
      if (!form.checkValidity()) {{
        form.reportValidity();
        status.textContent = "Please fix the highlighted fields.";
        return;
      }}
      status.textContent = "Thank you! " + SITE_NAME + " will be in touch soon.";
      form.reset();
    }});
  }});
}})();
"""


def todo_script() -> str:
    return """// A todo list kept in the browser's local storage.
(function () {
  "use strict";
  var KEY = "sheen-todos";
  var form = document.getElementById("todo-form");
  var input = document.getElementById("todo-input");
  var list = document.getElementById("todo-list");
  var status = document.getElementById("todo-status");
  var items = JSON.parse(localStorage.getItem(KEY) || "[]");
  function save() { localStorage.setItem(KEY, JSON.stringify(items)); }
  function render() {
    list.replaceChildren();
    items.forEach(function (item, index) {
      var li = document.createElement("li");
      li.className = item.done ? "done" : "";
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = item.done;
      box.addEventListener("change", function () { item.done = box.checked; save(); render(); });
      var text = document.createElement("span");
      text.textContent = item.text;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", function () { items.splice(index, 1); save(); render(); });
      li.append(box, text, remove);
      list.append(li);
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.value.trim()) {
      input.setAttribute("aria-invalid", "true");
      status.textContent = "Type an item first.";
      return;
    }
    input.removeAttribute("aria-invalid");
    status.textContent = "";
    items.push({ text: input.value.trim(), done: false });
    input.value = "";
    save();
    render();
  });
  render();
})();
"""


def dashboard_script() -> str:
    return """// Draws the page's metrics (JSON in #metrics-data) as a bar chart.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("metrics-data").textContent);
  var svg = document.getElementById("chart");
  var NS = "http://www.w3.org/2000/svg";
  var max = Math.max.apply(null, data.series.map(function (p) { return p.value; }));
  var width = 40;
  data.series.forEach(function (point, i) {
    var height = Math.round((point.value / max) * 160);
    var bar = document.createElementNS(NS, "rect");
    bar.setAttribute("x", String(20 + i * (width + 12)));
    bar.setAttribute("y", String(180 - height));
    bar.setAttribute("width", String(width));
    bar.setAttribute("height", String(height));
    var label = document.createElementNS(NS, "text");
    label.setAttribute("x", String(20 + i * (width + 12)));
    label.setAttribute("y", "196");
    label.textContent = point.label;
    svg.append(bar, label);
  });
})();
"""


def site_config(brief: SiteBrief) -> str:
    return (
        json.dumps(
            {
                "name": brief.name,
                "kind": brief.kind,
                "business": brief.business,
                "location": brief.location,
                "features": list(brief.features),
            },
            indent=2,
        )
        + "\n"
    )
