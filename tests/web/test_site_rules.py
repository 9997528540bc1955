"""A site override of a criterion's rules file edited in the console (criteria.site_dir set):
an invalid text refused at the site file's own line, a valid one tried and saved (the
file written, every version kept with who and why, diffable, restorable), and the override
applied where the pipelines read the rules (daemon.criteria.rules.RulesSource), its
citation saying so. The shipped rules/recist.yaml is never touched."""

from __future__ import annotations

from pathlib import Path

from daemon.config import Settings
from daemon.criteria.params import RecistParams
from daemon.criteria.rules import RULES_DIR, RulesSource
from web.conftest import Console
from web.test_api import basic

FOUR = "# tumour board, 2025-03: at most four targets\nmax_targets: 4\n"
BROKEN = "# tumour board, 2025-03: at most four targets\nmax_targets: four\n"


def _site(c: Console, folder: Path) -> Path:
    folder.mkdir()
    data = c.settings.model_dump()
    data["criteria"] = {"site_dir": folder}
    c.deps.settings = Settings.model_validate(data)
    return folder / "recist.yaml"


def test_edit_a_site_override_with_line_errors_versions_and_effect(console: Console, tmp_path: Path) -> None:
    site_file = _site(console, tmp_path / "site")
    shipped = (RULES_DIR / "recist.yaml").read_text()
    state = console.client.get("/api/site-rules/recist", headers=basic("vic")).json()
    assert (state["path"], state["text"], state["versions"]) == (str(site_file), "", [])

    bad = console.client.put("/api/site-rules/recist", json={"text": BROKEN, "comment": "four"}, headers=basic("ada"))
    assert bad.status_code == 422
    (error,) = bad.json()["detail"]
    assert error.startswith(f"{site_file}:2: max_targets:"), error
    assert not site_file.exists()
    tried = console.client.post("/api/site-rules/recist/try", json={"text": FOUR}, headers=basic("vic")).json()
    assert tried["valid"] and tried["errors"] == []

    saved = console.client.put("/api/site-rules/recist", json={"text": FOUR, "comment": "board decision"},
                               headers=basic("ada"))
    assert saved.status_code == 200, saved.text
    assert site_file.read_text() == FOUR and (RULES_DIR / "recist.yaml").read_text() == shipped
    params = RulesSource(RULES_DIR, site_file.parent).load(RecistParams, "recist")
    assert params.max_targets == 4 and params.max_targets_per_organ == 2  # the rest stays shipped
    assert f"[site overrides, {site_file}: max_targets=4]" in params.citation.text

    second = FOUR.replace("max_targets: 4", "max_targets: 3")
    assert console.client.put("/api/site-rules/recist", json={"text": second, "comment": "three"},
                              headers=basic("ada")).status_code == 200
    versions = console.client.get("/api/site-rules/recist", headers=basic("vic")).json()["versions"]
    assert [(v["user"], v["comment"]) for v in versions] == [("ada", "three"), ("ada", "board decision")]
    diff = console.client.get(f"/api/site-rules/recist/versions/{versions[1]['id']}", headers=basic("vic")).json()
    assert "-max_targets: 4" in diff["diff"] and "+max_targets: 3" in diff["diff"]
    restored = console.client.post(f"/api/site-rules/recist/versions/{versions[1]['id']}/restore", json={},
                                   headers=basic("ada"))
    assert restored.status_code == 200 and site_file.read_text() == FOUR
    assert RulesSource(RULES_DIR, site_file.parent).load(RecistParams, "recist").max_targets == 4

    console.login("ada")  # the page: the editor of the site file
    page = console.client.get("/site/recist")
    assert page.status_code == 200 and "Site override: recist.yaml" in page.text and "max_targets: 4" in page.text
    unknown = console.client.get("/api/site-rules/routing", headers=basic("vic"))
    assert unknown.status_code == 404 and "not a criterion's rules file" in unknown.json()["detail"]
