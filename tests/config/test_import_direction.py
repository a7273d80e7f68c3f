"""Dependencies point one way: crm <- segments <- personas <- campaigns.

Each app may import only the apps below it, at module level or inside a function.
Where an app must tell one built on it something, it calls a hook
(`crm/hooks.py`, `segments/hooks.py`) that the later app registers.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["crm", "segments", "personas", "campaigns"]


def imported_apps(path: Path) -> set[str]:
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        apps.update(name.split(".")[0] for name in names)
    return apps


def offenders() -> set[str]:
    found = set()
    for position, app in enumerate(LAYERS):
        above = set(LAYERS[position + 1 :])
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            if imported_apps(path) & above:
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_no_app_imports_an_app_built_on_it():
    assert offenders() == set(), "these import an app built on theirs; use a hook"


def test_the_scan_sees_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from personas.models import Persona\n")

    assert "personas" in imported_apps(module)
