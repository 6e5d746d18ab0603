"""Model cards and reproductions on the German credit walkthrough, on SQLite and PostgreSQL.

The walkthrough's own preparation (examples/governance-walkthrough.sh: train and holdout
Parquet files, model 1.0) is run once per module, and version 1.0 is certified against
credit-lending, tier high, once. Each test then records that certification in a fresh
store, with the inventory, a risk assessment and a register entry, and checks the card
field by field against the store, its rendering (the PDF is rasterised and its text
extracted), the narrative's revisions, the notice, and the reproduction of the run.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _datasets import DATASETS
from assay import registry
from assay.errors import ConflictError, InputError, PermissionDenied
from assay.evidence import digest_file, open_artifact
from assay.registry import cards
from assay.registry.card_tables import CardNarrative, ModelCardRecord, Reproduction
from assay.store import Store

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "governance-walkthrough.sh"
MODEL, VERSION = "credit-pd", "1.0"

#: The Model Card Toolkit's JSON schema v0.0.2, the part a card fills
#: (tensorflow/model-card-toolkit, model_card_toolkit/schema/v0.0.2/model_card.schema.json):
#: its top level allows no other keys; the nested objects do.
_TEXT = {"type": "string"}
_DESC = {"type": "object", "properties": {"description": _TEXT}}
_GRAPHICS = {"type": "object", "properties": {
    "description": _TEXT,
    "collection": {"type": "array", "items": {"type": "object", "properties": {
        "name": _TEXT, "image": _TEXT}}}}}
MCT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "schema_version": _TEXT,
        "model_details": {"type": "object", "properties": {
            "name": _TEXT, "overview": _TEXT, "documentation": _TEXT,
            "owners": {"type": "array", "items": {"type": "object", "properties": {
                "name": _TEXT, "contact": _TEXT}}},
            "version": {"type": "object", "properties": {
                "name": _TEXT, "date": {"type": "string", "format": "date"}, "diff": _TEXT}},
            "licenses": {"type": "array", "items": {
                "type": "object", "properties": {"identifier": _TEXT, "custom_text": _TEXT},
                "oneOf": [{"required": ["identifier"]}, {"required": ["custom_text"]}]}},
            "references": {"type": "array", "items": {"type": "object", "properties": {
                "reference": {"type": "string", "format": "uri"}}}},
            "citations": {"type": "array", "items": {"type": "object", "properties": {
                "style": _TEXT, "citation": _TEXT}}}}},
        "model_parameters": {"type": "object", "properties": {
            "model_architecture": _TEXT,
            "data": {"type": "array", "items": {"type": "object", "properties": {
                "name": _TEXT, "link": {"type": "string", "format": "uri"},
                "sensitive": {"type": "object", "properties": {
                    "sensitive_data": {"type": "array", "items": _TEXT}}},
                "graphics": _GRAPHICS, "description": _TEXT}}},
            "input_format": _TEXT, "output_format": _TEXT}},
        "quantitative_analysis": {"type": "object", "properties": {
            "performance_metrics": {"type": "array", "items": {"type": "object", "properties": {
                "type": _TEXT, "value": {"type": "number"}, "slice": _TEXT}}},
            "graphics": _GRAPHICS}},
        "considerations": {"type": "object", "properties": {
            "users": {"type": "array", "items": _DESC},
            "use_cases": {"type": "array", "items": _DESC},
            "limitations": {"type": "array", "items": _DESC},
            "tradeoffs": {"type": "array", "items": _DESC},
            "ethical_considerations": {"type": "array", "items": {
                "type": "object", "properties": {"name": _TEXT,
                                                 "mitigation_strategy": _TEXT}}}}},
    },
}

NARRATIVE = """\
intended_use: Rank retail loan applications by probability of default for credit officers.
out_of_scope_uses:
  - Pricing of loans
users: [credit officers, credit risk team]
affected_people: People who apply for a retail loan.
limitations:
  - Trained on 1,000 historical German applications from the 1970s.
ethical_considerations:
  - name: Young applicants are approved less often
    mitigation_strategy: Credit officers review every decline of an applicant under 26.
caveats: [Scores are not probabilities outside the holdout's range.]
recommendations: [Re-certify after every change of the application form.]
contact: credit-review@example.com
contest: Write to the credit review team within 30 days. A person looks at your application again.
licenses: [proprietary]
"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The walkthrough's data and models, and version 1.0 certified (results in run-1.0)."""
    from assay.certification import certify

    work = tmp_path_factory.mktemp("walk")
    text = SCRIPT.read_text()
    prep = text.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    proc = subprocess.run([sys.executable, "-", str(DATASETS / "german_credit" / "german.data")],
                          input=prep, text=True, cwd=work, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (work / "features.txt").write_text(",".join(_features(work)))
    certify(data=work / "holdout.parquet", reference=work / "train.parquet",
            model=work / "model-1.0.joblib", policy="credit-lending", tier="high",
            target="good", positive_label=1, sensitive=["sex", "age_band"],
            features=_features(work), out_dir=work / "run-1.0")
    return work


def _features(work: Path) -> list[str]:
    import pyarrow.parquet as pq

    cols = pq.read_schema(work / "train.parquet").names
    return [c for c in cols if c not in ("good", "sex", "age_band", "__index_level_0__")]


@pytest.fixture
def store(db: Store, people: dict[str, str], walk: Path) -> Store:
    """The inventory of the walkthrough with version 1.0's certification recorded, a risk
    assessment and one open risk."""
    from assay.risk import service as risk
    from assay.risk.config import CATEGORIES
    from assay.risk.questionnaire import load_questionnaire

    with db.transaction() as s:
        dana = registry.get_user(s, "dana")
        registry.register_model(
            s, dana, MODEL, owner="bo", decision_type="human_in_the_loop", criticality="high",
            business_unit="Retail credit", purpose="Probability of default of retail loan "
            "applicants", stakeholders=["applicants", "credit officers"])
        registry.add_version(s, dana, MODEL, VERSION,
                             artifact_digest=digest_file(walk / "model-1.0.joblib"),
                             training_data_digest=digest_file(walk / "train.parquet"),
                             training_data_source="train.parquet",
                             evaluation_data_digest=digest_file(walk / "holdout.parquet"),
                             evaluation_data_source="holdout.parquet",
                             code_revision="9f1c2e0")
        raw = (walk / "run-1.0" / "results.json").read_bytes()
        registry.record_certification(s, dana, MODEL, VERSION, None, raw)
    with db.transaction() as s:
        rita = registry.get_user(s, "rita")
        q = load_questionnaire()
        answers = {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}
        risk.assess(s, rita, MODEL, VERSION, policy="credit-lending",
                    categories={c: {"likelihood": 3, "impact": 4, "rationale": f"on {c}"}
                                for c in CATEGORIES}, answers=answers)
        risk.add_risk(s, rita, MODEL, title="Young applicants approved less often",
                      category="fairness_bias", likelihood=4, impact=5, version=VERSION)
    return db


def _narrative(db: Store, user: str = "dana", text: str = NARRATIVE, **kw: Any) -> Any:
    fields = cards.parse_narrative(text, "narrative.yaml")
    with db.transaction() as s:
        return cards.save_narrative(s, registry.get_user(s, user), MODEL, VERSION, fields, **kw)


def _card(db: Store) -> dict[str, Any]:
    with db.transaction() as s:
        return cards.card_document(s, MODEL, VERSION)


def run(argv: list[str]) -> int:
    from assay.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# --------------------------------------------------------------------------- the card


def test_every_field_with_a_source_in_the_store_is_filled_from_it(store: Store, walk: Path):
    import jsonschema

    _narrative(store)
    card = _card(store)
    jsonschema.validate(card, MCT_SCHEMA, format_checker=jsonschema.FormatChecker())
    results = json.loads((walk / "run-1.0" / "results.json").read_text())
    with store.transaction() as s:
        m = registry.get_model(s, MODEL)
        mv = registry.get_version(s, MODEL, VERSION)
        cert = registry.latest_certification(s, mv.id)
        from assay.risk.tables import Risk, RiskAssessment

        ra = s.query(RiskAssessment).one()
        risk_row = s.query(Risk).one()
        want_model = m.to_dict()
        want_version = mv.to_dict()
        want_cert = cert.to_dict()
        ra_digest, ra_tier, risk_title = ra.record_digest, ra.tier, risk_row.title
    d = card["model_details"]
    a = d["assay"]
    # model details from the inventory
    assert d["name"] == MODEL
    assert d["overview"] == want_model["purpose"]
    assert d["version"] == {"name": VERSION, "date": want_version["created_at"][:10]}
    assert d["owners"][0]["name"] == "Bo"
    assert d["documentation"] == "Code revision: 9f1c2e0."
    assert d["licenses"] == [{"identifier": "proprietary"}]
    assert a["model"] == {k: want_model[k] for k in (
        "purpose", "business_unit", "decision_type", "criticality", "deployment_status",
        "stakeholders")}
    # lineage and data from the version and the certification
    for key in ("artifact_digest", "training_data_digest", "evaluation_data_digest",
                "training_data_source", "evaluation_data_source", "code_revision"):
        assert a["lineage"][key] == want_version[key], key
    assert a["lineage"]["developer"] == "dana"
    train, ev = card["model_parameters"]["data"]
    assert train["name"] == results["data"]["reference"]["name"]
    assert ev["name"] == results["data"]["evaluation"]["name"]
    assert "600 rows, 24 columns" in train["description"]
    assert results["data"]["reference"]["sha256"] in train["description"]
    assert "400 rows" in ev["description"]
    assert results["data"]["evaluation"]["sha256"] in ev["description"]
    assert ev["sensitive"] == {"sensitive_data": ["sex", "age_band"]}
    assert card["model_parameters"]["model_architecture"] == results["model"]["kind"]
    assert ", ".join(results["roles"]["features"]) in card["model_parameters"]["input_format"]
    # every metric with its interval, overall and by group, from results.json
    perf = card["quantitative_analysis"]["performance_metrics"]
    overall = {p["type"]: p for p in perf if "slice" not in p}
    assert set(overall) == {k for k, v in results["metrics"]["overall"].items()
                            if isinstance(v.get("value"), (int, float))}
    for name, p in overall.items():
        rec = results["metrics"]["overall"][name]
        assert p["value"] == rec["value"]
        assert [p["confidence_interval"]["lower_bound"],
                p["confidence_interval"]["upper_bound"]] == rec["ci"]
    female = {p["type"]: p for p in perf if p.get("slice") == "sex=female"}
    rec = results["metrics"]["groups"]["sex"]["female"]["metrics"]["tpr"]
    assert female["tpr"]["value"] == rec["value"]
    assert female["tpr"]["confidence_interval"]["lower_bound"] == rec["ci"][0]
    assert a["factors"]["sex"]["female"]["n"] == results["metrics"]["groups"]["sex"]["female"]["n"]
    # certification, risk, monitoring
    assert a["certification"]["results_digest"] == want_cert["results_digest"]
    assert a["certification"]["status"] == results["status"] == "blocked"
    assert a["certification"]["summary"] == results["summary"]
    assert {c["id"] for c in a["certification"]["failed_checks"]} == {
        c["id"] for c in results["checks"] if c["status"] in ("fail", "error")}
    assert a["risk"]["tier"] == ra_tier
    assert a["risk"]["assessment"]["digest"] == ra_digest
    assert [r["title"] for r in a["risk"]["open_risks"]] == [risk_title]
    assert any(risk_title in e["name"] for e in card["considerations"]["ethical_considerations"])
    from assay.policy import load_policy

    plan = load_policy("credit-lending").tier("high").monitoring
    assert a["monitoring"]["window"] == plan.window
    assert [r["rule"] for r in a["monitoring"]["rules"]] == [r.key for r in plan.rules]
    assert a["impact"] is None  # no impact assessment in this store
    # human review from the decision type; the narrative's own fields
    assert "person reviews every decision" in a["human_review"]
    assert a["intended_use"].startswith("Rank retail loan applications")
    assert card["considerations"]["use_cases"] == [{"description": a["intended_use"]}]
    assert card["considerations"]["users"] == [{"description": "credit officers"},
                                               {"description": "credit risk team"}]
    assert a["narrative"]["revision"] == 1


def test_without_a_narrative_the_inventory_fields_stand_in(store: Store):
    card = _card(store)
    assert card["model_details"]["assay"]["narrative"] is None
    assert card["considerations"]["users"] == [{"description": "applicants"},
                                               {"description": "credit officers"}]
    assert card["model_details"]["overview"].startswith("Probability of default")


def test_card_formats_are_stored_as_evidence_and_the_pdf_renders(store: Store):
    import pypdfium2 as pdfium
    from pypdf import PdfReader

    _narrative(store)
    out = {}
    with store.transaction() as s:
        dana = registry.get_user(s, "dana")
        for fmt in ("json", "md", "html", "pdf"):
            data, row = cards.generate_card(s, dana, MODEL, VERSION, fmt)
            assert open_artifact(store.settings, row.digest) == data
            assert row.narrative_revision == 1 and row.certification_id is not None
            out[fmt] = data
    card = json.loads(out["json"])
    accuracy = next(p for p in card["quantitative_analysis"]["performance_metrics"]
                    if p["type"] == "accuracy" and "slice" not in p)["value"]
    assert f"| accuracy | {accuracy:.4g} |" in out["md"].decode()
    assert "<script" not in out["html"].decode() and "<svg" in out["html"].decode()
    # the PDF: pages turned into images are not blank, and its text names model and metric
    pdf = pdfium.PdfDocument(out["pdf"])
    try:
        assert len(pdf) >= 2
        for i in range(len(pdf)):
            img = pdf[i].render(scale=0.5).to_pil().convert("L")
            dark = sum(1 for px in img.tobytes() if px < 200)
            assert dark > 500, f"page {i + 1} is blank"
    finally:
        pdf.close()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(out["pdf"])).pages)
    assert f"Model card: {MODEL}" in text
    assert f"{accuracy:.4g}" in text
    assert "credit-review@example.com" in text
    # every generation is audited with what it rests on
    from assay.store.audit import AuditEvent

    with store.transaction() as s:
        events = [e for e in s.query(AuditEvent).order_by(AuditEvent.seq)
                  if e.action == "card.generate"]
        assert len(events) == 4
        assert events[-1].payload["narrative_revision"] == 1


def test_notice_is_plain_language_from_the_card(store: Store):
    _narrative(store)
    with store.transaction() as s:
        data, row = cards.generate_card(s, registry.get_user(s, "bo"), MODEL, VERSION, "md",
                                        kind="notice")
    text = data.decode()
    assert row.kind == "notice"
    for heading in ("What it is for", "What data it uses", "What it cannot do well",
                    "How you are protected", "How to contest a decision"):
        assert f"## {heading}" in text
    assert "Rank retail loan applications" in text
    assert "A person reviews every decision" in text  # human_in_the_loop, from the inventory
    assert "Credit officers review every decline" in text
    assert "Contact: credit-review@example.com." in text
    assert "within 30 days" in text
    # short sentences: no line of prose longer than 40 words
    for line in text.splitlines():
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            assert len(sentence.split()) <= 40, sentence
    with pytest.raises(InputError, match="notice format 'json'"), store.transaction() as s:
        cards.generate_card(s, registry.get_user(s, "bo"), MODEL, VERSION, "json",
                            kind="notice")


# --------------------------------------------------------------------------- narrative


def test_narrative_is_versioned_and_audited(store: Store):
    first = _narrative(store)
    assert first.revision == 1
    second = _narrative(store, user="bo", text="intended_use: Something else.\n",
                        expected_revision=1)
    assert second.revision == 2
    with pytest.raises(ConflictError, match="revision 2, not 1"):
        _narrative(store, text="intended_use: Late.\n", expected_revision=1)
    with store.transaction() as s:
        rows = cards.list_narratives(s, MODEL, VERSION)
        assert [r.revision for r in rows] == [1, 2]
        assert rows[0].fields["contact"] == "credit-review@example.com"  # kept
        assert "contact" not in rows[1].fields
        old = cards.card_document(s, MODEL, VERSION, narrative_revision=1)
        from assay.store.audit import AuditEvent

        acts = [e.payload["revision"] for e in s.query(AuditEvent).order_by(AuditEvent.seq)
                if e.action == "card.narrative"]
    assert acts == [1, 2]
    assert _card(store)["model_details"]["assay"]["intended_use"] == "Something else."
    assert old["model_details"]["assay"]["contact"] == "credit-review@example.com"


@pytest.mark.parametrize("text, match", [
    ("users: 3\n", r"narrative.yaml:1: 'users' .*expected a list of texts, got int"),
    ("intended_use: ok\nfoo: 1\n", r"narrative.yaml:2: unknown narrative field 'foo'"),
    ("ethical_considerations:\n  - name: a\n    mitigation: b\n",
     r"narrative.yaml:3: 'ethical_considerations' item 1: unknown key 'mitigation'"),
    ("limitations:\n  - ok\n  - ''\n", r"narrative.yaml:3: 'limitations' item 2"),
    ("- a\n", r"narrative.yaml:1: expected a mapping"),
    ("a: [\n", r"narrative.yaml"),
])
def test_bad_narrative_names_file_and_line(text: str, match: str):
    with pytest.raises(InputError, match=match):
        cards.parse_narrative(text, "narrative.yaml")


def test_who_may_edit_and_generate(store: Store):
    fields = cards.parse_narrative(NARRATIVE, "n.yaml")
    for user in ("audrey", "victor", "sean"):
        with pytest.raises(PermissionDenied, match="may not edit model card narratives"), \
                store.transaction() as s:
            cards.save_narrative(s, registry.get_user(s, user), MODEL, VERSION, fields)
    with pytest.raises(PermissionDenied, match="may not generate model cards"), \
            store.transaction() as s:
        cards.generate_card(s, registry.get_user(s, "audrey"), MODEL, VERSION, "md")
    with store.transaction() as s:
        assert s.query(CardNarrative).count() == 0
        assert s.query(ModelCardRecord).count() == 0


def test_current_card_follows_certification_and_narrative(store: Store, walk: Path):
    with store.transaction() as s:
        mv_id = registry.get_version(s, MODEL, VERSION).id
        assert "no model card generated" in cards.card_state(s, mv_id).reason
        cards.generate_card(s, registry.get_user(s, "dana"), MODEL, VERSION, "md")
    with store.transaction() as s:
        assert cards.card_state(s, mv_id).ok
    _narrative(store)
    with store.transaction() as s:
        assert "predates narrative revision 1" in cards.card_state(s, mv_id).reason
        cards.generate_card(s, registry.get_user(s, "dana"), MODEL, VERSION, "md")
    with store.transaction() as s:
        assert cards.card_state(s, mv_id).ok
        raw = (walk / "run-1.0" / "results.json").read_bytes()
        registry.record_certification(s, registry.get_user(s, "victor"), MODEL, VERSION,
                                      None, raw)
    with store.transaction() as s:
        assert "predates certification" in cards.card_state(s, mv_id).reason


# --------------------------------------------------------------------------- CLI


def test_cli_card_edit_generate_notice(store: Store, tmp_path: Path, monkeypatch,
                                       capsys):
    monkeypatch.setenv("ASSAY_USER", "dana")
    (tmp_path / "n.yaml").write_text(NARRATIVE)
    assert run(["card", "edit", MODEL, VERSION, "--file", str(tmp_path / "n.yaml")]) == 0
    (tmp_path / "bad.yaml").write_text("intended_use: x\nusers: 3\n")
    assert run(["card", "edit", MODEL, VERSION, "--file", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:2: 'users'" in err and "Traceback" not in err
    assert run(["card", MODEL, VERSION, "--format", "json", "--out",
                str(tmp_path / "card.json")]) == 0
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["model_details"]["assay"]["narrative"]["revision"] == 1
    assert run(["card", "notice", MODEL, VERSION, "--format", "html", "--out",
                str(tmp_path / "notice.html")]) == 0
    assert "How to contest a decision" in (tmp_path / "notice.html").read_text()
    assert run(["card", MODEL, VERSION, "--format", "docx"]) == 2
    assert "card format 'docx'" in capsys.readouterr().err
    assert run(["card", MODEL, VERSION, "--format", "pdf"]) == 2
    assert run(["card", MODEL, "9.9", "--format", "md"]) == 2
    capsys.readouterr()
    assert run(["card", "narrative", MODEL, VERSION]) == 0
    assert "credit-review@example.com" in capsys.readouterr().out
    assert run(["card", "list", MODEL, VERSION]) == 0
    assert re.search(r"current card: #\d+", capsys.readouterr().out)


# --------------------------------------------------------------------------- reproduction


def test_reproduction_of_a_real_certification(store: Store, walk: Path, tmp_path: Path,
                                              monkeypatch, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(walk / "run-1.0", run_dir)
    monkeypatch.chdir(walk)  # the results record the inputs' paths as given
    monkeypatch.setenv("ASSAY_USER", "victor")
    assert run(["reproduce", str(run_dir / "results.json")]) == 0
    out = capsys.readouterr().out
    n = int(re.search(r"reproduces: (\d+) numbers identical", out).group(1))
    assert n > 1000
    with store.transaction() as s:
        rows = s.query(Reproduction).all()
        assert len(rows) == 1 and rows[0].reproduced and rows[0].compared == n
        assert rows[0].certification_id is not None
        mv_id = registry.get_version(s, MODEL, VERSION).id
        assert cards.reproduction_state(s, mv_id)[0] is not None


def test_one_byte_of_data_changed_is_found(walk: Path, tmp_path: Path, monkeypatch,
                                           capsys):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from assay.certification import certify

    # certify on a CSV copy of the holdout, then change one digit of one amount
    csv = tmp_path / "holdout.csv"
    pacsv.write_csv(pq.read_table(walk / "holdout.parquet"), csv)
    certify(data=csv, reference=walk / "train.parquet", model=walk / "model-1.0.joblib",
            policy="credit-lending", tier="high", target="good", positive_label=1,
            sensitive=["sex", "age_band"], features=_features(walk), out_dir=tmp_path / "run")
    lines = csv.read_text().splitlines()
    header = lines[0].replace('"', "").split(",")
    amount = header.index("credit_amount")
    row = lines[1].split(",")
    before = row[amount]
    row[amount] = ("9" if before[0] != "9" else "1") + before[1:]
    changed = tmp_path / "holdout-changed.csv"
    changed.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    assert changed.stat().st_size == csv.stat().st_size
    monkeypatch.delenv("ASSAY_USER", raising=False)
    assert run(["reproduce", str(tmp_path / "run" / "results.json"),
                "--data", str(changed), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    where = {m["where"]: m for m in doc["mismatches"]}
    assert where["data.evaluation.sha256"]["recorded"] == digest_file(csv)[7:]
    assert where["data.evaluation.sha256"]["reproduced"] == digest_file(changed)[7:]
    assert any(w.startswith("metrics.") for w in where)  # numbers that differ are named
    assert doc["reproduced"] is False
    # the table says the same
    assert run(["reproduce", str(tmp_path / "run" / "results.json"), "--data",
                str(changed), "--no-record"]) == 1
    out = capsys.readouterr().out
    assert "data.evaluation.sha256" in out and "does not reproduce" in out
    # the inputs gone: exit 2 naming what is missing
    csv.unlink()
    assert run(["reproduce", str(tmp_path / "run" / "results.json")]) == 2
    err = capsys.readouterr().err
    assert "evaluation data sha256:" in err and "give --data" in err


def test_reproduce_bad_input(tmp_path: Path, capsys):
    assert run(["reproduce", str(tmp_path / "nope.json")]) == 2
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert run(["reproduce", str(tmp_path / "x.json")]) == 2
    assert "not a results.json" in capsys.readouterr().err


# --------------------------------------------------------------------------- store and workflow


def test_tables_match_the_migration(db: Store):
    from _schema import schema_diffs

    ours = {"card_narratives", "model_cards", "reproductions"}
    assert schema_diffs(db.engine, ours) == []


def test_a_stage_requiring_a_card_and_a_reproduction_blocks_until_both(db: Store,
                                                                      tmp_path: Path):
    from assay.registry.reproduce import Mismatch, ReproductionResult, record_reproduction
    from assay.workflow import service as wf
    from test_workflow import WORKFLOW, make_env, submit, write_policy

    env = make_env(db, tmp_path)
    stages = [{"id": "documentation", "evidence": ["certification", "model_card",
                                                   "reproduction"],
               "signoff": {"default": {"roles": ["validator"]}}}, WORKFLOW["stages"][2]]
    write_policy(env.policy, dict(WORKFLOW, stages=stages), version="2")
    env.certify("1")
    submit(env)
    with pytest.raises(ConflictError, match="no model card generated") as exc:
        env.run("val", wf.approve, "1", stage="documentation")
    assert "has not been reproduced" in str(exc.value)
    with db.transaction() as s:
        _, card_row = cards.generate_card(s, registry.get_user(s, "alice"), "scorer", "1", "md")
        cert = registry.latest_certification(s, registry.get_version(s, "scorer", "1").id)
        failed = ReproductionResult(results_digest=cert.results_digest, compared=10,
                                    mismatches=[Mismatch("metrics.n", 1, 2)])
        record_reproduction(s, registry.get_user(s, "val"), failed)
    with pytest.raises(ConflictError, match=r"latest reproduction .* differs \(1 mismatches\)"):
        env.run("val", wf.approve, "1", stage="documentation")
    with db.transaction() as s:
        ok = record_reproduction(s, registry.get_user(s, "val"), ReproductionResult(
            results_digest=cert.results_digest, compared=10, mismatches=[]))
        ok_digest = ok.record_digest
    so = env.run("val", wf.approve, "1", stage="documentation")
    assert so.evidence["model_card"] == card_row.digest
    assert so.evidence["reproduction"] == ok_digest


def test_workflow_config_accepts_the_new_evidence_kinds():
    from assay.workflow.config import EvidenceKind

    assert {"model_card", "reproduction"} <= {k.value for k in EvidenceKind}


# --------------------------------------------------------------------------- API


class Api:
    def __init__(self, store: Store) -> None:
        from fastapi.testclient import TestClient

        from _people import PEOPLE
        from assay.api.app import create_app
        from assay.auth import service as auth

        self.client = TestClient(create_app(store.settings, store=store))
        with store.transaction() as s:
            ada = registry.get_user(s, "ada")
            self.tokens = {name: auth.create_token(s, ada, name, "tests")[1]
                           for name in PEOPLE.values()}

    def __call__(self, user: str | None, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.client.request(method, path, headers=headers, **kw)


V = f"/api/models/{MODEL}/versions/{VERSION}"


def test_api_narrative_generate_download_and_role_checks(store: Store):
    import yaml

    api = Api(store)
    fields = yaml.safe_load(NARRATIVE)
    # nobody signed in reads nothing; the auditor, the validator and security edit nothing
    assert api(None, "GET", f"{V}/card").status_code == 401
    assert api(None, "PUT", f"{V}/card/narrative", json={"fields": fields}).status_code == 401
    for user in ("audrey", "victor", "sean"):
        r = api(user, "PUT", f"{V}/card/narrative", json={"fields": fields})
        assert r.status_code == 403, r.text
    r = api("audrey", "POST", f"{V}/cards", json={"format": "md"})
    assert r.status_code == 403
    assert api("audrey", "GET", f"{V}/card/narrative").json() == {"current": None,
                                                                  "history": []}
    # unknown fields and wrong types are refused before the domain
    r = api("dana", "PUT", f"{V}/card/narrative", json={"fields": {"nope": "x"}})
    assert r.status_code == 422
    r = api("dana", "PUT", f"{V}/card/narrative", json={"fields": fields,
                                                         "expected_revision": 0})
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 1
    r = api("bo", "PUT", f"{V}/card/narrative", json={"fields": fields,
                                                       "expected_revision": 0})
    assert r.status_code == 409
    # anyone signed in reads the card; the auditor too
    card = api("audrey", "GET", f"{V}/card").json()
    assert card["model_details"]["assay"]["narrative"]["revision"] == 1
    r = api("victor", "POST", f"{V}/cards", json={"format": "pdf"})
    assert r.status_code == 201, r.text
    rec = r.json()
    listing = api("audrey", "GET", f"{V}/cards").json()
    assert listing["current"] == rec["id"] and listing["reason"] == ""
    r = api("audrey", "GET", f"{V}/cards/{rec['id']}/download")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert api("audrey", "GET", f"{V}/cards/999/download").status_code == 404
    r = api("victor", "POST", f"{V}/cards", json={"format": "html", "kind": "notice"})
    assert r.status_code == 201
    r = api("audrey", "GET", f"{V}/cards/{r.json()['id']}/download")
    assert "sandbox" in r.headers["Content-Security-Policy"]
    assert api("audrey", "GET", f"{V}/reproductions").json() == []
    with store.transaction() as s:
        assert s.query(CardNarrative).count() == 1
        assert s.query(ModelCardRecord).count() == 2


def test_model_page_links_to_the_card_page(store: Store):
    api = Api(store)
    page = api("audrey", "GET", f"/models/{MODEL}?version={VERSION}")
    assert page.status_code == 200, page.text
    assert f'href="/models/{MODEL}/versions/{VERSION}/card" id="model-card"' in page.text
    r = api("audrey", "GET", f"/models/{MODEL}/versions/{VERSION}/card")
    assert r.status_code == 200
    assert f"Model card: {MODEL}" in r.text and "<script" not in r.text
    assert "form-action 'none'" in r.headers["Content-Security-Policy"]
    assert api(None, "GET", f"/models/{MODEL}/versions/{VERSION}/card").status_code in (
        302, 303, 401)
    assert api("audrey", "GET", f"/models/{MODEL}/versions/9.9/card").status_code == 404


def test_risks_of_the_card_are_those_not_closed_of_the_model_or_this_version(store: Store):
    from assay.risk import service as risk

    with store.transaction() as s:
        rita = registry.get_user(s, "rita")
        registry.add_version(s, registry.get_user(s, "dana"), MODEL, "1.1")
        risk.add_risk(s, rita, MODEL, title="Model-wide", category="data_quality",
                      likelihood=2, impact=2)
        risk.add_risk(s, rita, MODEL, title="Only 1.1", category="data_quality",
                      likelihood=2, impact=2, version="1.1")
        closed = risk.add_risk(s, rita, MODEL, title="Closed", category="data_quality",
                               likelihood=2, impact=2)
        risk.update_risk(s, rita, closed.id, status="closed", resolution="fixed")
    titles = [r["title"] for r in _card(store)["model_details"]["assay"]["risk"]["open_risks"]]
    assert titles == ["Young applicants approved less often", "Model-wide"]


def test_the_card_carries_the_impact_assessment_where_one_is_recorded(store: Store):
    from assay.impact import add_kpi, add_register_entry, observe, save_assessment
    from assay.report.card import render_card
    from test_impact_record import THEORY

    with store.transaction() as s:
        bo = registry.get_user(s, "bo")
        save_assessment(s, bo, MODEL, VERSION, THEORY, source="theory.yaml")
        add_kpi(s, bo, MODEL, VERSION, name="default_rate", direction="decrease", unit="%",
                target=2.0, guardrail=5.0)
        observe(s, bo, MODEL, VERSION, "default_rate", 3.5, at="2026-11-02T00:00:00Z")
        add_register_entry(s, bo, MODEL, VERSION, title="thin-file applicants denied",
                           kind="negative", likelihood=3, severity=4)
    card = _card(store)
    impact = card["model_details"]["assay"]["impact"]
    assert impact["revision"] == 1
    assert impact["intended outcomes"] == ("fewer defaults on increased lines "
                                           "(for lender, applicants)")
    assert impact["KPIs"] == "default_rate (%): all 3.5 [target 2; guardrail 5]"
    assert impact["impact register"] == "1 entries (1 negative, 0 positive)"
    html = render_card(card, "html").decode()
    assert "fewer defaults on increased lines" in html and "default_rate" in html


def test_pdf_without_weasyprint_says_what_to_install(monkeypatch):
    from assay.report.card import PdfUnavailable, render_card

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as if missing
    with pytest.raises(PdfUnavailable, match="needs WeasyPrint and the Pango library"):
        render_card({"model_details": {"name": "m", "version": {"name": "1"}}}, "pdf")
    assert PdfUnavailable.exit_code == 2


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
def test_a_card_with_only_the_schema_fields_renders(fmt: str):
    from assay.report.card import render_card

    card = {"schema_version": "0.0.2",
            "model_details": {"name": "other-tool-model", "version": {"name": "3"}},
            "quantitative_analysis": {"performance_metrics": [{"type": "auc", "value": 0.71}]}}
    text = render_card(card, fmt).decode()
    assert "other-tool-model" in text and "0.71" in text
