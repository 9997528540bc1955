"""Where the data Nadir ships lives: the rules, the report templates and the demo models.

The one way to locate them. In the repository they are the top-level folders `rules/`,
`templates/` and `models/` that the admins and the docs name, and an editable install
(`make`, `pip install -e .`) reads them there. A wheel (`pip install .`, the container) has
no repository beside the package: the build copies them into the package as
`daemon/_shipped/` (setup.py), and they are read from there.

A folder that is not shipped (the OHIF viewer of deploy/ohif, built by npm) is found
beside the package only in a checkout.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# the folder holding the `daemon` package: the repository in a checkout, site-packages in a wheel
SOURCE_ROOT = PACKAGE_DIR.parent
SHIPPED_DIR = PACKAGE_DIR / "_shipped"  # written by setup.py's build_py into a wheel only

# the shipped folders (setup.py copies these, with the file patterns it lists)
SHIPPED = ("rules", "templates", "models")


def data_root() -> Path:
    """The folder holding rules/, templates/ and models/: the package's copy in a wheel,
    else the checkout the package is imported from."""
    return SHIPPED_DIR if (SHIPPED_DIR / "rules").is_dir() else SOURCE_ROOT


DATA_ROOT = data_root()
RULES_DIR = DATA_ROOT / "rules"  # the criteria parameter files and the shipped routing.yaml
ROUTING_FILE = RULES_DIR / "routing.yaml"
TEMPLATES_DIR = DATA_ROOT / "templates"
REPORT_TEMPLATES_DIR = TEMPLATES_DIR / "report"
MODELS_DIR = DATA_ROOT / "models"  # one folder per model (model.yaml + model.onnx)
# the console's page templates and static files (htmx): package data, in the package itself
WEB_TEMPLATES_DIR = PACKAGE_DIR / "web" / "templates"
WEB_STATIC_DIR = PACKAGE_DIR / "web" / "static"
# not shipped: the OHIF viewer and its configuration exist in a checkout only
OHIF_DIR = SOURCE_ROOT / "deploy" / "ohif"
