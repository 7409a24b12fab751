"""The docs site says each fact once, and what it says about the code matches the code.

Every format has its sender page, in the nav, and its module points to it; the examples the pages
include exist; the option examples validate; the environment variable table is the settings model's.
`make docs-build` (mkdocs --strict) checks the links and anchors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdrelay import formats
from pdrelay.settings import Settings
from tests.conftest import ROOT

DOCS = ROOT / "docs"
SENDERS = DOCS / "senders"
PAGES = sorted(DOCS.rglob("*.md"))
SNIPPET = re.compile(r'^\s*--8<-- "([^"]+)"$', re.M)


def _module_docstring(name: str) -> str:
    import ast

    source = (ROOT / "layers" / "pdrelay" / "pdrelay" / "formats" / f"{name}.py").read_text(encoding="utf-8")
    return ast.get_docstring(ast.parse(source)) or ""


def _nav_pages() -> set[str]:
    def walk(entry: Any) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        if isinstance(entry, list):
            return [page for item in entry for page in walk(item)]
        if isinstance(entry, dict):
            return [page for value in entry.values() for page in walk(value)]
        return []

    # mkdocs.yml holds a !!python/name tag (the mermaid fence): read only the nav.
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = yaml.safe_load(text[text.index("\nnav:") :])["nav"]
    return set(walk(nav))


# -- one page per format, written once ------------------------------------------------------------------


def test_every_format_has_a_sender_page_in_the_nav_and_every_sender_page_is_a_format() -> None:
    pages = {path.stem for path in SENDERS.glob("*.md")} - {"index"}
    assert pages == set(formats.names())
    assert {f"senders/{name}.md" for name in formats.names()} <= _nav_pages()
    assert {path.relative_to(DOCS).as_posix() for path in PAGES} == _nav_pages()


@pytest.mark.parametrize("name", formats.names())
def test_each_format_module_points_to_its_page_and_the_page_lists_its_options(name: str) -> None:
    assert f"User documentation: docs/senders/{name}.md" in _module_docstring(name)
    page = (SENDERS / f"{name}.md").read_text(encoding="utf-8")
    assert f"<!-- pdrelay:options {name} -->" in page
    assert f"]({name}.md)" in (SENDERS / "index.md").read_text(encoding="utf-8")  # the overview table links it


def _route_option_examples() -> list[tuple[str, str, Any]]:
    found = []
    for page in sorted(SENDERS.glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            doc = yaml.safe_load(block)
            if not isinstance(doc, dict) or "routes" not in doc:
                continue
            for route in doc["routes"].values():
                for name, options in (route.get("formats") or {}).items():
                    found.append((page.name, name, options))
    return found


def test_the_option_examples_on_the_sender_pages_validate() -> None:
    examples = _route_option_examples()
    assert {name for _, name, _ in examples} >= {"generic", "sentry", "splunk", "zabbix"}
    problems = [f"{page}: {name}: {formats.option_problems(name, options)}" for page, name, options in examples]
    assert [p for p in problems if not p.endswith(": []")] == []


# -- what the pages include ---------------------------------------------------------------------------


def test_every_snippet_the_pages_include_exists() -> None:
    included = [(page, target) for page in PAGES for target in SNIPPET.findall(page.read_text(encoding="utf-8"))]
    assert included
    for page, target in included:
        path, _, section = target.partition(":")
        text = (ROOT / path).read_text(encoding="utf-8")  # FileNotFoundError names the file
        if section:
            assert f"--8<-- [start:{section}]" in text and f"--8<-- [end:{section}]" in text, (page, target)


def test_every_sender_page_shows_a_sample_and_what_pagerduty_gets_from_it() -> None:
    for name in formats.names():
        targets = SNIPPET.findall((SENDERS / f"{name}.md").read_text(encoding="utf-8"))
        samples = [t for t in targets if t.startswith(f"events/formats/{name}/") and not t.endswith(".meta.json")]
        assert samples, name
        case = Path(samples[0]).name
        assert f"tests/golden/{name}/{case}" in targets, name


def test_the_readme_links_only_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [link for link in re.findall(r"\]\(([^)#]+)[^)]*\)", readme) if "://" not in link]
    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []


# -- the environment variable table ------------------------------------------------------------------------


def _documented_environment() -> dict[str, str]:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    section = page[page.index("## Environment variables") :]
    found: dict[str, str] = {}
    for names, defaults in re.findall(r"^\| (`PDRELAY_[^|]+) \| ([^|]+) \|", section, re.M):
        variables = re.findall(r"`(PDRELAY_\w+)`", names)
        values = [v.strip().strip("`") for v in defaults.split(",")] if "`" in defaults else [""] * len(variables)
        assert len(values) == len(variables), names
        found.update(zip(variables, values, strict=True))
    return found


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_environment_variable_table_is_the_settings_model() -> None:
    model = {field.alias: _shown(field.default) for field in Settings.model_fields.values() if field.alias}
    assert _documented_environment() == model
