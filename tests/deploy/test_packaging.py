"""Packaging says what it does: the runtime dependencies are what the daemon imports, the
optional parts are extras named in their error message, the shipped data is located in
one place, and `make clean` never deletes a node's data."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from daemon import resources

REPO = Path(__file__).resolve().parents[2]
DAEMON = REPO / "daemon"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# third-party modules the daemon imports only inside a function, and the extra bringing each
LAZY = {"radiomics": "radiomics", "nilearn": "demo"}
SAME_MODULE = {"onnxruntime-gpu": "onnxruntime"}  # nadir[gpu] installs the module onnxruntime too


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _requirements(names: list[str]) -> set[str]:
    return {_name(r) for r in names}


def _imports(top_level_only: bool) -> dict[str, set[Path]]:
    """Third-party module -> files importing it (at module level, or anywhere)."""
    found: dict[str, set[Path]] = {}
    stdlib = sys.stdlib_module_names
    for path in DAEMON.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        nodes = _module_level(tree) if top_level_only else list(ast.walk(tree))
        for node in nodes:
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                       else [])
            for module in modules:
                top = module.split(".")[0]
                if top not in stdlib and top not in ("daemon", "__future__"):
                    found.setdefault(top, set()).add(path.relative_to(REPO))
    return found


def _module_level(tree: ast.Module) -> list[ast.AST]:
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def test_runtime_dependencies_are_what_the_daemon_imports() -> None:
    project = PYPROJECT["project"]
    runtime = _requirements(project["dependencies"])
    extras = {name: _requirements(reqs) for name, reqs in project["optional-dependencies"].items()}
    assert {"pyradiomics", "nilearn", "pillow", "onnxruntime-gpu"}.isdisjoint(runtime)
    assert "onnxruntime" in runtime, "ONNX Runtime for the CPU by default"
    assert extras["radiomics"] == {"pyradiomics"} and extras["demo"] == {"nilearn"}
    assert extras["gpu"] == {"onnxruntime-gpu"}
    # every module imported at module level comes from a runtime dependency (or one of theirs)
    distributions = importlib.metadata.packages_distributions()
    declared_closure = set(runtime)
    for name in list(runtime):
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # onnxruntime where onnxruntime-gpu replaces it
            requires = []
        declared_closure.update(_name(req) for req in requires if "extra ==" not in req)
    top = _imports(top_level_only=True)
    for module, files in sorted(top.items()):
        dists = {SAME_MODULE.get(d, d) for d in (_name(d) for d in distributions.get(module, [module]))}
        assert dists & declared_closure, f"{module} (imported by {sorted(map(str, files))}) is no runtime dependency"
    # the optional parts are imported only inside functions, and PIL nowhere
    for module in LAZY:
        assert module not in top, f"{module} is imported at module level: {top[module]}"
    assert "PIL" not in _imports(top_level_only=False), "Pillow is not a runtime dependency"


def test_a_missing_extra_is_named() -> None:
    from daemon.measure import radiomics

    assert "nadir[radiomics]" in radiomics.MISSING_RADIOMICS and "--no-build-isolation" in radiomics.MISSING_RADIOMICS


def test_missing_nilearn_names_the_demo_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from daemon.demo import phantom

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nilearn" else real(name, *a))
    with pytest.raises(FileNotFoundError, match=re.escape("nadir[demo]")):
        phantom._mni_dir()


def test_missing_pyradiomics_raises_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.measure import radiomics

    monkeypatch.setitem(sys.modules, "radiomics", None)  # import radiomics -> ImportError
    with pytest.raises(ImportError, match=re.escape("nadir[radiomics]")):
        radiomics.pyradiomics_version()


def test_shipped_data_is_located_in_one_place() -> None:
    """In this checkout (an editable install) the data is the repository's own folders,
    and every module that names one takes it from daemon/resources.py."""
    from daemon.commands import measure
    from daemon.config import DEFAULT_TEMPLATES_DIR, RoutingSettings
    from daemon.criteria import rules
    from daemon.pipelines import base, lesion_followup
    from daemon.web import ohif

    assert resources.DATA_ROOT == REPO and resources.RULES_DIR == REPO / "rules"
    assert rules.RULES_DIR == base.RULES_DIR == measure.RULES_DIR == resources.RULES_DIR
    assert RoutingSettings().rules_file == resources.ROUTING_FILE == REPO / "rules" / "routing.yaml"
    assert DEFAULT_TEMPLATES_DIR == REPO / "templates" / "report"
    assert lesion_followup.model_dir("demo-brain-mets") == REPO / "models" / "demo-brain-mets"
    assert ohif.DEPLOY_DIR == REPO / "deploy" / "ohif"
    others = [p.relative_to(REPO) for p in DAEMON.rglob("*.py")
              if p != DAEMON / "resources.py" and "__file__" in p.read_text(encoding="utf-8")]
    assert others == [], f"paths computed from the source tree outside daemon/resources.py: {others}"


def test_build_hook_ships_the_data_and_the_sdist_carries_it() -> None:
    sys.path.insert(0, str(REPO))
    try:
        import setup as build_hook  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(REPO))
    shipped = {str(p) for p in build_hook.shipped_files(REPO)}
    for name in ("rules/routing.yaml", "templates/report/impression.fr.j2", "models/demo-liver-mets/model.onnx"):
        assert name in shipped
    assert not any(s.endswith("train.py") for s in shipped)
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8")
    assert "recursive-include rules *.yaml" in manifest and "models/*/*.onnx" in manifest


def test_makefile_serve_installs_only_serving_and_test_installs_the_extras() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    stamp = re.search(r"^\$\(STAMP\):.*?(?=^\S)", makefile, re.M | re.S)
    assert stamp and "pip install -q -e .\n" in stamp.group(0)
    assert "radiomics" not in stamp.group(0) and "[demo]" not in stamp.group(0)
    assert re.search(r"^serve: \$\(STAMP\)$", makefile, re.M)
    assert re.search(r"^\$\(DEV_STAMP\): .*\$\(DEMO_STAMP\).*\$\(RADIOMICS_STAMP\)", makefile, re.M)
    assert "--no-build-isolation -e '.[radiomics]'" in makefile
    assert re.search(r"^demo: \$\(DEMO_STAMP\)", makefile, re.M)
    gpu = PYPROJECT["project"]["optional-dependencies"]["gpu"]
    assert f"ORT_GPU := '{gpu[0]}'" in makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_keeps_data_and_clean_data_asks(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    db = tmp_path / "data" / "nadir.db"
    db.parent.mkdir()
    db.write_text("the node's state")
    (tmp_path / ".venv").mkdir()

    def make(target: str, answer: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "--no-print-directory", target], cwd=tmp_path, input=answer,
                              capture_output=True, text=True, timeout=60)

    assert make("clean", None).returncode == 0
    assert db.is_file() and not (tmp_path / ".venv").exists()
    refused = make("clean-data", "no\n")
    assert refused.returncode != 0 and db.is_file() and "kept data/" in refused.stdout
    assert make("clean-data", "").returncode != 0 and db.is_file()  # no answer: nothing deleted
    done = make("clean-data", "yes\n")
    assert done.returncode == 0 and not db.parent.exists(), done.stdout + done.stderr
