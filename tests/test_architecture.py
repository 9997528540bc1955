"""The layering of design.md, checked on the source: a pure core without I/O, pipelines
that compose without database or network of their own, edges (`store/`, `node/`) that
never import the runtime that drives them, and settings that import no part."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAEMON = Path(__file__).resolve().parents[1] / "daemon"
IO = ("sqlalchemy", "pynetdicom", "socket", "subprocess", "celery", "kombu", "psycopg",
      "daemon.store", "daemon.node", "daemon.runtime", "daemon.web")

RULES: dict[str, tuple[str, ...]] = {
    "criteria": IO,
    "measure": IO,
    "routing.py": IO,
    "pipelines": IO,
    "store": ("daemon.runtime", "daemon.pipelines", "daemon.web"),
    "node": ("daemon.runtime", "daemon.pipelines", "daemon.web"),
    "config.py": ("daemon.report", "daemon.store", "daemon.node", "daemon.runtime", "daemon.pipelines"),
}


def imported(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def files(part: str) -> list[Path]:
    target = DAEMON / part
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("part", sorted(RULES))
def test_layering(part: str) -> None:
    assert files(part), f"daemon/{part} is gone: update the rules"
    bad = [
        f"{path.relative_to(DAEMON.parent)} imports {module}"
        for path in files(part)
        for module in sorted(imported(path))
        if any(module == f or module.startswith(f + ".") for f in RULES[part])
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from daemon.store import jobs\n    import socket\n")
    assert imported(probe) == {"daemon.store", "socket"}
