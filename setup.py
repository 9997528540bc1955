"""Build hook: the data Nadir ships goes into the package of a wheel.

`rules/`, `templates/` and the demo models stay at the top of the repository (the admins
and the docs name them there, and an editable install reads them in place). A wheel
(`pip install .`, the container) has no repository beside it, so `build_py` copies them
into the built package as `daemon/_shipped/`, where daemon/resources.py finds them.
Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# what a wheel ships, as globs under the repository root (models: each manifest and its
# networks; not the training scripts)
SHIPPED_FILES = (
    "rules/*.yaml",
    "templates/**/*",
    "models/*/model.yaml",
    "models/*/*.onnx",
)


def shipped_files(root: Path = HERE) -> list[Path]:
    """The shipped files, relative to the repository root, in a stable order."""
    found = {p.relative_to(root) for pattern in SHIPPED_FILES for p in root.glob(pattern) if p.is_file()}
    return sorted(found)


class BuildPyWithData(build_py):
    """build_py, then a copy of the shipped folders into the built package (not when
    editable: the package then reads the repository's own folders)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        files = shipped_files()
        if Path("rules/routing.yaml") not in files:
            raise FileNotFoundError(f"{HERE}/rules/routing.yaml missing: the package would ship no rules")
        target = Path(self.build_lib) / "daemon" / "_shipped"
        if target.exists():
            shutil.rmtree(target)
        for rel in files:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / rel, dest)


if __name__ == "__main__":  # as setuptools runs it (tests import shipped_files)
    setup(cmdclass={"build_py": BuildPyWithData})
