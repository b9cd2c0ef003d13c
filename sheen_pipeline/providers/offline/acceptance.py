"""The offline provider's acceptance steps: for each kind of site it makes, how a person would
check in a browser that it does what was asked (and its own sites pass them)."""

from __future__ import annotations

from sheen_pipeline.models import AcceptanceStep
from sheen_pipeline.providers.offline.brief import SiteBrief
from sheen_pipeline.providers.offline.plans import POST_PATH

# What the offline form script shows after a valid submit, by framework.
CONFIRMATION = {"static": "Thank you!", "react": "You are on the list."}
FORM_BUTTONS = {"signup_form": "Sign up", "contact_form": "Send message"}


def _step(action: str, target: str = "", value: str = "") -> AcceptanceStep:
    return AcceptanceStep.model_validate({"action": action, "target": target, "value": value})


def _form_steps(form: str, framework: str) -> list[AcceptanceStep]:
    steps = [_step("fill", "Name", "Ada Lovelace"), _step("fill", "Email", "ada@example.com")]
    if form == "contact_form":
        steps.append(_step("fill", "Message", "Do you roast your own beans?"))
    button = "Sign up" if framework == "react" else FORM_BUTTONS[form]
    return [*steps, _step("click", button), _step("expect_text", value=CONFIRMATION[framework])]


def acceptance_steps(brief: SiteBrief, framework: str) -> tuple[AcceptanceStep, ...]:
    """The site's name is shown, then what its kind and its first form must do."""
    steps = [_step("visit", "/"), _step("expect_text", value=brief.name)]
    if framework == "react":
        return (*steps, *_form_steps("signup_form", framework))
    if brief.kind == "todo":
        steps += [
            _step("fill", "New item", "Buy oat milk"),
            _step("click", "Add"),
            _step("expect_text", value="Buy oat milk"),
            _step("expect_count", "#todo-list li", "1"),
        ]
    elif brief.kind == "dashboard":
        steps.append(_step("expect_count", "#chart rect", ">=1"))
    elif brief.kind == "blog":
        steps += [
            _step("click", f"Welcome to {brief.name}"),
            _step("expect_url", f"/{POST_PATH}"),
            _step("expect_text", value=f"This is the first post of {brief.name}"),
        ]
    if brief.forms and brief.kind != "blog":
        steps += _form_steps(brief.forms[0], framework)
    return tuple(steps)
