"""The offline provider's React + Vite apps (`framework: react`): a small app with components,
state and a validated form, built with `npm install` and `vite build` in the sandbox. Prompt text
reaches the code only as escaped JSON, and React escapes what it renders."""

from __future__ import annotations

import json
from collections.abc import Callable

from sheen_pipeline.models import Task, TaskInput, TaskType
from sheen_pipeline.providers.offline.assets import script_json, stylesheet
from sheen_pipeline.providers.offline.brief import SiteBrief

PACKAGE_PATH = "package.json"
VITE_CONFIG_PATH = "vite.config.js"
STYLES_PATH = "src/styles.css"
APP_PATH = "src/App.jsx"
MAIN_PATH = "src/main.jsx"
ENTRY_PATH = "index.html"

# Pinned, so a build is the same today and tomorrow (and the npm cache serves it). Vite's own
# esbuild compiles the JSX (the automatic runtime): @vitejs/plugin-react would add Babel, 46 more
# packages in all, to every install for the same bundle (it serves the dev server, not builds).
DEPENDENCIES = {"react": "18.3.1", "react-dom": "18.3.1"}
DEV_DEPENDENCIES = {"vite": "5.4.10"}


def plan_react_tasks(brief: SiteBrief, prompt: str) -> tuple[Task, ...]:
    def task(
        task_id: str, task_type: TaskType, name: str, target: str, deps: tuple[str, ...] = ()
    ) -> Task:
        return Task(
            id=task_id,
            type=task_type,
            name=name,
            description=f"{name} of the React app ({target}).",
            input=TaskInput(prompt=prompt, target_path=target, dependencies=deps),
        )

    return (
        task("package", TaskType.SETUP_CONFIG, "Package manifest", PACKAGE_PATH),
        task(
            "vite_config",
            TaskType.SETUP_CONFIG,
            "Vite configuration",
            VITE_CONFIG_PATH,
            ("package",),
        ),
        task("styles", TaskType.CREATE_FILE, "Stylesheet", STYLES_PATH),
        task("app", TaskType.CREATE_COMPONENT, "App components", APP_PATH, ("package",)),
        task("main", TaskType.CREATE_FILE, "Entry module", MAIN_PATH, ("app", "styles")),
        task("entry", TaskType.CREATE_FILE, "Page", ENTRY_PATH, ("main", "vite_config")),
    )


def package_json(brief: SiteBrief) -> str:
    package = {
        "name": "sheen-site",
        "private": True,
        "type": "module",
        "scripts": {"build": "vite build"},
        "dependencies": DEPENDENCIES,
        "devDependencies": DEV_DEPENDENCIES,
    }
    return json.dumps(package, indent=2) + "\n"


def vite_config(_brief: SiteBrief) -> str:
    return (
        'import { defineConfig } from "vite";\n\n'
        'export default defineConfig({ esbuild: { jsx: "automatic" } });\n'
    )


def entry_page(brief: SiteBrief) -> str:
    title = json.dumps(brief.name)[1:-1].replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n<body>\n"
        '<div id="root"></div>\n<script type="module" src="/src/main.jsx"></script>\n'
        "</body>\n</html>\n"
    )


def main_module(_brief: SiteBrief) -> str:
    return (
        'import { StrictMode } from "react";\n'
        'import { createRoot } from "react-dom/client";\n'
        'import App from "./App.jsx";\n'
        'import "./styles.css";\n\n'
        'createRoot(document.getElementById("root")).render(\n'
        "  <StrictMode>\n    <App />\n  </StrictMode>\n);\n"
    )


def app_module(brief: SiteBrief) -> str:
    site = {
        "name": brief.name,
        "tagline": brief.tagline,
        "features": [
            {"title": "Made with care", "text": f"Everything at {brief.name} starts with you."},
            {"title": "Close by", "text": brief.location or "Easy to find, easy to reach."},
            {"title": "Always open online", "text": "Plan ahead, sign up and stay in touch."},
        ],
    }
    return f"""import {{ useState }} from "react";

const SITE = {script_json(site)};

function Hero() {{
  return (
    <header className="hero">
      <h1>{{SITE.name}}</h1>
      <p>{{SITE.tagline}}</p>
    </header>
  );
}}

function Features() {{
  return (
    <section id="features">
      <h2>Why visit</h2>
      <div className="cards">
        {{SITE.features.map((feature) => (
          <article className="card" key={{feature.title}}>
            <h3>{{feature.title}}</h3>
            <p>{{feature.text}}</p>
          </article>
        ))}}
      </div>
    </section>
  );
}}

function SignupForm() {{
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [status, setStatus] = useState("");
  const [invalid, setInvalid] = useState(false);
  function submit(event) {{
    event.preventDefault();
    const ok = name.trim().length >= 2 && /^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$/.test(email);
    setInvalid(!ok);
    setStatus(ok ? `Thanks, ${{name.trim()}}! You are on the list.` : "Please enter your name and a valid email.");
  }}
  return (
    <section id="signup">
      <h2>Sign up</h2>
      <form id="signup-form" noValidate onSubmit={{submit}}>
        <label>Name <input name="name" value={{name}} aria-invalid={{invalid && name.trim().length < 2}}
          onChange={{(e) => setName(e.target.value)}} /></label>
        <label>Email <input name="email" type="email" value={{email}} aria-invalid={{invalid}}
          onChange={{(e) => setEmail(e.target.value)}} /></label>
        <button type="submit">Sign up</button>
        <p className="form-status" role="status" aria-live="polite">{{status}}</p>
      </form>
    </section>
  );
}}

export default function App() {{
  return (
    <>
      <Hero />
      <main>
        <Features />
        <SignupForm />
      </main>
      <footer>{{SITE.name}}</footer>
    </>
  );
}}
"""


RENDERERS: dict[str, Callable[[SiteBrief], str]] = {
    PACKAGE_PATH: package_json,
    VITE_CONFIG_PATH: vite_config,
    STYLES_PATH: stylesheet,
    APP_PATH: app_module,
    MAIN_PATH: main_module,
    ENTRY_PATH: entry_page,
}
