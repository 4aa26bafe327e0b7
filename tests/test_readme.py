"""The README runs as written from the repository root of a fresh clone (issue 19): every command it
shows exists, every make target it names is in the Makefile, and every link stays inside the repository."""
from __future__ import annotations

import re
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Commands of Flask's own command line (FlaskGroup), not of the app's.
FLASK_BUILTINS = {"run", "shell", "routes"}


def test_every_flask_command_in_the_readme_exists(app):
    shown = re.findall(r"\.venv/bin/flask --app wsgi ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", README + (ROOT / "deploy" / "README.md").read_text())
    assert len(shown) > 15
    commands = app.cli.commands
    for name, sub in shown:
        if name in FLASK_BUILTINS:
            continue
        assert name in commands, f"`flask {name}` is in the README, not in the app"
        command = commands[name]
        if isinstance(command, click.Group):
            assert sub in command.commands, f"`flask {name} {sub}` is in the README, not in the app"


def test_the_readme_never_shows_a_bare_flask_command():
    """flask lives in .venv/bin: a bare `flask …` fails on a fresh clone."""
    assert not re.findall(r"(?<![/\w])flask (?:--app|db|run|settle|worker|seed-demo|demo)\b", README)


def test_every_make_target_in_the_readme_exists():
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    shown = set(re.findall(r"(?:^|`|\s)make ([a-z][a-z0-9-]*)(?=[`\s]|$)", README, flags=re.M)) - {"a", "an", "things"}
    assert {"run", "test", "demo-reset"} <= shown
    assert shown <= targets, shown - targets


def test_links_stay_inside_the_repository_and_reach_a_file():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
            assert path.exists(), f"{doc.name} links to a missing file: {target}"
    linked = re.findall(r"\]\((docs/[a-z-]+\.md)\)", README)
    assert {"docs/architecture.md", "docs/money-path.md", "docs/product.md", "docs/operations.md", "docs/security.md"} <= set(linked)
