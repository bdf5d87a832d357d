"""The plugin boundary: plugins import the plugin API only and never name core tables.

The import contract itself lives in pyproject.toml and is checked by
import-linter (`lint-imports`); these tests run it, prove it catches a
deliberately bad plugin, and check plugins' SQL, which no import linter sees.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
BAD_PLUGIN = Path(__file__).parent / "fixtures" / "bad_plugin"
PLUGIN_SOURCES = [REPO / "plugins", REPO / "examples" / "flywheel-example-plugin" / "flywheel_example"]


def _lint(*args: str, cwd: Path = REPO, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run([LINT_IMPORTS, "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_are_kept():
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_catches_a_plugin_importing_server_internals():
    result = _lint(str(BAD_PLUGIN / "importlinter.toml"), pythonpath=BAD_PLUGIN)
    assert result.returncode != 0, result.stdout
    assert "0 kept, 1 broken" in result.stdout, result.stdout
    assert "flywheel_bad_plugin -> flywheel.server.auth.service" in result.stdout, result.stdout
    assert "-> flywheel.server.plugin_api" not in result.stdout, "the allowed import is not reported"


def core_tables() -> set[str]:
    """Every table the core's own migrations create (a new one is covered without editing this)."""
    names = set()
    for sql in (REPO / "migrations").glob("*.sql"):
        names |= {m.lower() for m in re.findall(r"CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                                                r"(?:public\.)?\"?(\w+)", sql.read_text(), re.IGNORECASE)}
    return names


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def sql_texts(folder: Path) -> list[tuple[str, str]]:
    """(where, text) of every .sql file and every string literal (docstrings aside) under `folder`."""
    out = [(str(p.relative_to(REPO)), p.read_text()) for p in folder.rglob("*.sql")]
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                out.append((f"{path.relative_to(REPO)}:{node.lineno}", node.value))
    return out


def named_tables(text: str, tables: set[str]) -> set[str]:
    pattern = (r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|TRUNCATE)\s+(?:ONLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
               r"(?:\"?public\"?\.)?\"?(\w+)\"?")
    return {m.lower() for m in re.findall(pattern, text, re.IGNORECASE)} & tables


# The one way plugin SQL may name a core table: a foreign key to the tenant, so
# that its rows go with the tenant (`tenant_id uuid REFERENCES tenants (id)`).
ALLOWED_REFERENCES = {"tenants"}


@pytest.mark.parametrize("folder", PLUGIN_SOURCES, ids=lambda p: p.name)
def test_plugins_reference_no_core_table_but_tenants(folder):
    tables = core_tables() - ALLOWED_REFERENCES
    found = [(where, sorted({m.lower() for m in re.findall(r"\bREFERENCES\s+(?:\"?public\"?\.)?\"?(\w+)", text,
                                                           re.IGNORECASE)} & tables))
             for where, text in sql_texts(folder)]
    assert not [f for f in found if f[1]], found


def test_core_tables_are_found_in_the_migrations():
    tables = core_tables()
    assert {"tenants", "api_keys", "jobs", "events", "model_versions", "active_models"} <= tables, tables


@pytest.mark.parametrize("folder", PLUGIN_SOURCES, ids=lambda p: p.name)
def test_plugins_do_not_name_core_tables_in_their_sql(folder):
    tables = core_tables()
    found = [(where, sorted(named_tables(text, tables))) for where, text in sql_texts(folder)]
    found = [(where, names) for where, names in found if names]
    assert not found, f"plugin SQL names core tables (use flywheel.server.plugin_api instead): {found}"


def test_the_sql_check_finds_a_core_table():
    """Guards the test above: its matcher does see a plugin reading `jobs` or `events`."""
    tables = core_tables()
    assert named_tables("SELECT state FROM jobs WHERE id = $1", tables) == {"jobs"}
    assert named_tables('select * from public."events" e join active_models a on true', tables) == {
        "events", "active_models"}
    assert named_tables("SELECT 1 FROM drives_inventory", tables) == set()
