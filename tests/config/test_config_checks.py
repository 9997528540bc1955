"""`nadir check-config` (and the rules reload) catch what a job would hit: a route's
misspelt parameter, an unknown model, a model file that does not match its manifest,
criteria rules files that do not parse; errors name the file, the line and the route by
its name, read as our messages, and never print a password; `--json`; exit status 2."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import sessionmaker

from daemon import resources
from daemon.cli import main
from daemon.config import ConfigError, load_settings
from daemon.criteria.params import RanoBmParams
from daemon.criteria.rules import RULES_DIR, RulesSource
from daemon.demo.response_patient import write_timepoints
from daemon.demo.sr_table import summarize
from daemon.pipelines import brain_mets
from daemon.pipelines.brain_mets_response import RanoBmRule
from daemon.pipelines.priors import NO_PRIORS
from daemon.routing_rules import RulesHolder
from daemon.runtime.execution import pipeline_input
from daemon.store.jobs import ClaimedJob

SHIPPED_ROUTING = RULES_DIR / "routing.yaml"
BRAIN = "brain-mets-rano-bm"


def _shipped_route_names() -> list[str]:
    """Every route of the shipped routing file, in its order (read as YAML, not through the code tested)."""
    return [str(r["name"]) for r in yaml.safe_load(SHIPPED_ROUTING.read_text())["routes"]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NADIR_CONFIG", raising=False)
    for key in ("NADIR_ROUTING__RULES_FILE", "NADIR_STORE__DATABASE_URL", "NADIR_JOBS__BROKER_URL",
                "NADIR_CRITERIA__SITE_DIR"):
        monkeypatch.delenv(key, raising=False)


def node(tmp_path: Path, routing: str | None = None, settings: str = "") -> tuple[Path, Path]:
    """A settings file and a routing file (the shipped one, or `routing`) in /etc-like folders of their own."""
    etc = tmp_path / "etc" / "nadir"
    etc.mkdir(parents=True, exist_ok=True)
    rules = etc / "routing.yaml"
    rules.write_text(routing if routing is not None else SHIPPED_ROUTING.read_text(encoding="utf-8"), encoding="utf-8")
    path = etc / "nadir.yaml"
    path.write_text(f"routing:\n  rules_file: {rules}\n{settings}", encoding="utf-8")
    return path, rules


def check(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> tuple[int, str, str]:
    rc = main(["check-config", str(path), *options])
    out = capsys.readouterr()
    return rc, out.out, out.err


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text)


def shipped_with(old: str, new: str, count: int = 1) -> str:
    text = SHIPPED_ROUTING.read_text(encoding="utf-8")
    assert text.count(old) >= count
    return text.replace(old, new, count)


def test_routing_file_alone_in_another_folder_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, rules = node(tmp_path)  # routing.yaml copied alone: no rano_bm.yaml beside it
    assert not (rules.parent / "rano_bm.yaml").exists()
    rc, out, err = check(capsys, path)
    assert rc == 0, err
    names = _shipped_route_names()
    assert BRAIN in names and len(names) >= 5
    assert f"# {rules}: valid; {len(names)} route(s): {', '.join(names)}" in out
    assert f"# criteria rules: {RULES_DIR}" in out
    # and a job gets the shipped criteria from the runtime, not the routing file's folder
    job = ClaimedJob(1, "1.2.3", 1, BRAIN, "brain_mets", {}, ("pacs",), 1, "test")
    inp = pipeline_input(load_settings(path), sessionmaker(), job, [])
    assert inp.rules_dir == RULES_DIR and inp.site_rules_dir is None
    assert RanoBmRule(RulesSource(inp.rules_dir, inp.site_rules_dir)).params.min_ld_mm == 10


def test_unknown_model_names_route_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, rules = node(tmp_path, shipped_with("model: demo-brain-mets", "model: site-brain-metz"))
    rc, out, err = check(capsys, path)
    assert rc == 2 and out == ""
    line = line_of(rules, "model: site-brain-metz")
    assert err.startswith(f"{rules}:{line}: route '{BRAIN}': parameters.model: model 'site-brain-metz': no model at ")
    assert "demo-brain-mets" in err  # what there is
    assert "routes.1" not in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_model_whose_file_does_not_match_its_sha256(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "models" / "site-brain"
    model.mkdir(parents=True)
    for name in ("model.onnx", "model.yaml"):
        shutil.copy(resources.MODELS_DIR / "demo-brain-mets" / name, model / name)
    manifest = model / "model.yaml"
    text = manifest.read_text(encoding="utf-8")
    sha = next(t.split(":", 1)[1].strip() for t in text.splitlines() if t.startswith("sha256:"))
    manifest.write_text(text.replace(sha, "a" * 64), encoding="utf-8")
    path, rules = node(tmp_path, shipped_with("model: demo-brain-mets", f"model: {model}"))
    rc, _, err = check(capsys, path)
    assert rc == 2
    assert err.startswith(f"{rules}:{line_of(rules, f'model: {model}')}: route '{BRAIN}': parameters.model: "
                          f"model '{model}': {manifest}:{line_of(manifest, 'sha256:')}: sha256: model.onnx has sha256 {sha}")
    assert f"the manifest says {'a' * 64}" in err


def test_misspelt_parameter_names_route_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, rules = node(tmp_path, shipped_with("priors_from: pacs", "priors_frum: pacs"))
    rc, _, err = check(capsys, path)
    assert rc == 2
    [line] = err.splitlines()
    assert line.startswith(f"{rules}:{line_of(rules, 'priors_frum')}: route '{BRAIN}': parameters.priors_frum: "
                           "unknown parameter of pipeline brain_mets (its parameters: model, ")
    assert "priors_from" in line


def test_reload_refuses_an_unknown_model_and_keeps_the_rules(tmp_path: Path) -> None:
    _, rules = node(tmp_path)
    holder = RulesHolder(rules, {"pacs"})
    before = holder.rules
    rules.write_text(shipped_with("model: demo-liver-mets", "model: site-liver"), encoding="utf-8")
    assert holder.reload() is False and holder.rules is before
    assert holder.last_error is not None
    assert "route 'liver-mets-recist': parameters.model: model 'site-liver'" in holder.last_error


def test_site_folder_overrides_the_shipped_criteria_key_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rano_bm.yaml").write_text("# our protocol\npd_pct_vs_nadir: 25\nvolumetric:\n  vol_pd_pct: 40\n",
                                       encoding="utf-8")
    path, _ = node(tmp_path, settings=f"criteria:\n  site_dir: {site}\n")
    rc, out, err = check(capsys, path)
    assert rc == 0, err
    assert f"# criteria rules: {RULES_DIR}, overridden key by key by {site}" in out
    # what a brain job reads: the shipped file, the site's keys over it, cited in the report
    rule = RanoBmRule(RulesSource(RULES_DIR, site))
    shipped = RanoBmRule(RULES_DIR).params
    assert rule.params.pd_pct_vs_nadir == 25 and rule.params.volumetric.vol_pd_pct == 40
    assert rule.params.min_ld_mm == shipped.min_ld_mm and rule.params.volumetric.vol_pr_pct == shipped.volumetric.vol_pr_pct
    cited = rule.params.citation.to_citation().text
    assert cited.startswith(shipped.citation.text)
    assert f"site overrides, {site / 'rano_bm.yaml'}: pd_pct_vs_nadir=25, volumetric.vol_pd_pct=40" in cited
    assert "site overrides" not in shipped.citation.text


def test_site_folder_errors_name_the_site_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rano_bm.yaml").write_text("\nmax_targets: many\n", encoding="utf-8")
    (site / "ranobm.yaml").write_text("max_targets: 3\n", encoding="utf-8")  # misspelt: would override nothing
    path, rules = node(tmp_path, settings=f"criteria:\n  site_dir: {site}\n")
    rc, _, err = check(capsys, path)
    assert rc == 2
    lines = err.splitlines()
    assert (f"{rules}:{line_of(rules, 'pipeline: brain_mets')}: route '{BRAIN}': pipeline: criteria rules: "
            f"{site / 'rano_bm.yaml'}:2: max_targets: Input should be a valid integer") in lines[0]
    assert any(line.startswith(f"{site / 'ranobm.yaml'}: not a criterion's rules file") for line in lines)
    rc, _, err = check(capsys, node(tmp_path, settings=f"criteria:\n  site_dir: {tmp_path / 'nope'}\n")[0])
    assert rc == 2 and "the site rules folder does not exist" in err
    with pytest.raises(ConfigError, match="site rules folder does not exist"):
        RulesSource(RULES_DIR, tmp_path / "nope").load(RanoBmParams, "rano_bm")


SECRETS = ("store:\n  database_url: postgresql+psycopg://nadir:s3cret@db:5432/nadir\n"
           "jobs:\n  executor: celery\n  broker_url: amqp://nadir:hunter2@mq:5672//\n")


def test_passwords_are_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = node(tmp_path, settings=SECRETS)
    rc, out, err = check(capsys, path)
    assert rc == 0, err
    assert "s3cret" not in out + err and "hunter2" not in out + err
    assert "database_url: postgresql+psycopg://nadir:***@db:5432/nadir" in out
    assert "effective_database_url: postgresql+psycopg://nadir:***@db:5432/nadir" in out
    assert "broker_url: amqp://nadir:***@mq:5672//" in out
    rc, out, err = check(capsys, path, "--json")
    assert rc == 0 and "s3cret" not in out + err and "hunter2" not in out + err
    shown = json.loads(out)
    assert shown["valid"] is True and shown["problems"] == []
    assert shown["settings"]["store"]["effective_database_url"] == "postgresql+psycopg://nadir:***@db:5432/nadir"
    assert shown["settings"]["jobs"]["broker_url"] == "amqp://nadir:***@mq:5672//"
    assert shown["routes"] == _shipped_route_names()


def test_json_lists_the_problems_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, rules = node(tmp_path, shipped_with("priors_from: pacs", "priors_frum: pacs", 2), settings=SECRETS)
    rc, out, err = check(capsys, path, "--json")
    assert rc == 2 and err == ""
    shown = json.loads(out)
    assert shown["valid"] is False and shown["routes"] is None
    assert [p.split(": ")[1] for p in shown["problems"]] == [f"route '{BRAIN}'", "route 'liver-mets-recist'"]
    assert all(p.startswith(f"{rules}:") for p in shown["problems"])
    assert "hunter2" not in out and shown["settings"]["jobs"]["broker_url"] == "amqp://nadir:***@mq:5672//"


def test_messages_are_ours_not_pydantics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routing = ("version: 1\nroutes:\n  - name: ct\n    pipeline: qa_report\n"
               "    match: {attribute: Modality, regex: '(x'}\n"
               "  - name: mr\n    pipeline: qa_report\n    match: {attribute: Modality, equals: MR, one_of: [CT]}\n")
    path, rules = node(tmp_path, routing)
    rc, _, err = check(capsys, path)
    assert rc == 2
    assert err.splitlines() == [
        f"{rules}:5: route 'ct': match: bad regex '(x': missing ), unterminated subpattern at position 0",
        f"{rules}:8: route 'mr': match: an attribute condition has exactly one of equals, one_of, regex, range, present",
    ]
    path.write_text(path.read_text(encoding="utf-8") + "node:\n  ae_title: 'A\\B'\njobs:\n  heartbeat_seconds: 100\n",
                    encoding="utf-8")
    rc, out, err = check(capsys, path, "--json")
    problems = json.loads(out)["problems"]
    assert rc == 2 and problems == [
        f"{path}:4: node.ae_title: an AE title is 1-16 printable characters without backslash or padding",
        f"{path}:5: jobs: heartbeat_seconds must be shorter than lease_seconds (a lease would expire between heartbeats)",
    ]
    rc, _, err = check(capsys, path)
    assert rc == 2 and "Value error" not in err and "Traceback" not in err and len(err.splitlines()) == 2


@pytest.mark.slow
def test_a_brain_job_reads_the_shipped_criteria_and_cites_the_site_overrides(tmp_path: Path) -> None:
    """The node as an admin installs it: routing.yaml alone in /etc/nadir, a site folder with one
    RANO-BM key; a brain job, given what the runtime gives it, reads rano_bm.yaml from the shipped
    rules, the site's key over it, and its SR cites the override. SYNTHETIC data."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "rano_bm.yaml").write_text("pd_pct_vs_nadir: 25\n", encoding="utf-8")
    path, _ = node(tmp_path, settings=f"criteria:\n  site_dir: {site}\n")
    settings = load_settings(path)
    baseline = write_timepoints(tmp_path / "demo", "small")[0]
    files = sorted(baseline.folder.rglob("*.dcm"))
    job = ClaimedJob(1, baseline.study_instance_uid, 1, BRAIN, "brain_mets", {"priors_from": ""}, ("pacs",), 1, "test")
    inp = replace(pipeline_input(settings, sessionmaker(), job, files), priors=NO_PRIORS)
    assert inp.rules_dir == RULES_DIR and inp.site_rules_dir == site
    sr = next(ds for ds in brain_mets.run(inp) if ds.Modality == "SR")
    summary = summarize(sr)
    assert summary.assessments == {"RANO-BM": "BASELINE"}
    citation = next(text for text in summary.texts if text.startswith("Lin NU"))
    assert citation.endswith(f"[site overrides, {site / 'rano_bm.yaml'}: pd_pct_vs_nadir=25]")
