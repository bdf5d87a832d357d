"""Every hook is documented (one heading each) and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from flywheel.server import hookspecs

REPO = Path(__file__).resolve().parents[1]


def hook_names() -> list[str]:
    return sorted(name for name, fn in vars(hookspecs).items()
                  if inspect.isfunction(fn) and hasattr(fn, "flywheel_spec"))


def test_there_are_hooks():
    assert {"register_routes", "on_startup", "on_events_committed"} <= set(hook_names())


def test_every_hook_has_a_heading_in_the_author_guide():
    guide = (REPO / "docs" / "plugins.md").read_text()
    headings = set(re.findall(r"^### (\w+)$", guide, re.M))
    missing = set(hook_names()) - headings
    assert not missing, f"document these hooks in docs/plugins.md: {sorted(missing)}"
    stale = headings - set(hook_names())
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {sorted(stale)}"


def test_every_hook_spec_says_since_which_version():
    for name in hook_names():
        assert "Since " in (getattr(hookspecs, name).__doc__ or ""), name


def test_every_hook_is_used_in_a_test():
    sources = "\n".join(p.read_text() for p in [*REPO.glob("tests/**/*.py"), *REPO.glob("examples/**/*.py")]
                        if p.name != "test_docs.py")
    # An implementation in a test or the example plugin: `def hook(` or `hook=` (test plugins).
    unused = [name for name in hook_names() if not re.search(rf"def {name}\(|\b{name}=", sources)]
    # Hooks whose feature lands with a later issue are listed here, with the issue.
    pending: dict[str, str] = {}
    assert set(unused) <= set(pending), f"no test exercises: {sorted(set(unused) - set(pending))}"


def test_readme_documents_every_setting_and_command():
    from flywheel.server.cli.main import cli
    from flywheel.server.settings import ENV_VARS

    readme = (REPO / "README.md").read_text()
    assert readme.index("make up") < readme.index("## Configuration"), "the two commands come first"
    missing = [var for var in ENV_VARS.values() if f"`{var}`" not in readme]
    assert not missing, f"README.md does not document: {missing}"
    core_commands = [name for name in cli.commands if name != "example"]
    assert [c for c in core_commands if f"`flywheel {c}" not in readme] == []


def test_every_name_of_the_plugin_api_is_documented():
    """docs/plugins.md has a `#### `name`` heading for each public name, and nothing stale."""
    from flywheel.server import plugin_api

    guide = (REPO / "docs" / "plugins.md").read_text()
    section = guide[guide.index("## The plugin API"):guide.index("## Testing a plugin")]
    documented = set(re.findall(r"^#### `(\w+)`$", section, re.M))
    public = set(plugin_api.__all__)
    assert public - documented == set(), f"document in docs/plugins.md: {sorted(public - documented)}"
    assert documented - public == set(), f"documented but not in the plugin API: {sorted(documented - public)}"
    assert all(re.search(r"Since \d+\.\d+", block) for block in section.split("#### ")[1:]), \
        "each entry says since which version"


def test_plugin_api_functions_say_since_which_version():
    from flywheel.server import plugin_api

    for name in plugin_api.__all__:
        obj = getattr(plugin_api, name)
        if inspect.isfunction(obj) and obj.__module__ == plugin_api.__name__:
            assert obj.__doc__ and "Since " in obj.__doc__, name
