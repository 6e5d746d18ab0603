"""Privacy checks on the shipped data sets and on synthetic cases whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import assay.checks.privacy  # noqa: F401 - registers the checks
from _datasets import DATASETS
from _pii import KINDS, iban, luhn_complete, pii_frame
from assay.certification import certify, run_one
from assay.checks.base import REGISTRY, CheckSpec, Status, Threshold
from assay.checks.privacy import delong_auc
from assay.data import ColumnRoles, ModelAdapter, open_dataset
from assay.data.identifiers import identifier_columns, pii_columns, pii_kind_by_values
from assay.datasets import load_adult
from assay.errors import PolicyError
from test_checks_robustness import Ctx, run

ADULT_NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
ADULT_CAT = ["workclass", "marital_status", "occupation", "relationship", "race", "sex"]


@pytest.fixture(scope="module")
def adult():
    return load_adult(missing_as_nan=True)


# --------------------------------------------------------------------------- PII


@pytest.mark.parametrize(("values", "kind"), [
    (["123-45-6789", "001-01-0001", "665 99 9999"], "US social security number"),
    (["AB123456C", "ab 12 34 56 d", "CE000000A"], "UK national insurance number"),
    (["12345678Z", "X1234567L", "Y0000000Z"], "Spanish DNI/NIE"),
    (["111222333", "123456782"], "Dutch BSN"),
    (["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606"],
     "IBAN"),
    (["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"], "payment card number"),
    (["+44 20 7946 0958", "(555) 123-4567", "0049 30 1234567"], "phone number"),
    (["a.b@example.org", "x@y.co"], "e-mail address"),
])
def test_value_kinds_with_check_digits(values, kind) -> None:
    assert pii_kind_by_values(values) == kind


@pytest.mark.parametrize("values", [
    ["666-45-6789", "000-12-3456", "912-34-5678"],  # areas never issued
    ["123-00-6789", "123-45-0000"],  # group 00, serial 0000
    ["BG123456C", "DA123456C", "AB123456E"],  # NINO prefixes and suffixes not allowed
    ["12345678A", "X1234567A"],  # DNI/NIE letter wrong
    ["111222334", "123456789"],  # BSN failing the eleven test
    ["GB83 WEST 1234 5698 7654 32", "DE88370400440532013000"],  # IBAN check digits wrong
    ["4111 1111 1111 1112", "5500-0000-0000-0005"],  # Luhn fails
    ["1234567", "20240101", "3.14159"],  # bare numbers are not phone numbers
    ["2023-05-01", "2024-01-02", "2022-11-30"],  # recent dates are not dates of birth
])
def test_look_alikes_are_not_personal_data(values) -> None:
    assert pii_kind_by_values(values) is None


def test_synthetic_people_every_kind_found_and_nothing_else() -> None:
    df = pii_frame()
    found = {f.column: f for f in pii_columns(open_dataset(df))}
    assert {c: f.kind for c, f in found.items()} == KINDS
    assert all(f.category == "direct" for f in found.values())
    assert {c: f.found_by for c, f in found.items() if f.found_by != "values"} == {
        "card": "name and values"}
    # the same values with broken check digits are not taken for identifiers
    broken = df.assign(account=[a[:2] + "00" + a[4:] for a in df["account"]],
                       card=[c[:-1] + str((int(c[-1]) + 1) % 10) for c in df["card"]])
    found = {f.column: f.found_by for f in pii_columns(open_dataset(broken))}
    assert "account" not in found and found["card"] == "name"  # by its name only
    assert iban("GB", "WEST12345698765432") == "GB82WEST12345698765432"
    assert luhn_complete("411111111111111") == "4111111111111111"


def test_names_announce_kinds_and_quasi_identifiers() -> None:
    df = pd.DataFrame({"first_name": ["x"] * 3, "Email": ["?"] * 3, "zip_code": [1, 2, 3],
                       "Gender": ["f", "m", "f"], "DOB": ["?"] * 3, "product_name": ["a"] * 3,
                       "telephone": ["yes", "no", "yes"], "age": [30, 40, 50]})
    got = {f.column: (f.kind, f.category, f.found_by) for f in pii_columns(open_dataset(df))}
    assert got == {"first_name": ("person name", "direct", "name"),
                   "Email": ("e-mail address", "direct", "name"),
                   "zip_code": ("postcode", "quasi", "name"),
                   "Gender": ("sex or gender", "quasi", "name"),
                   "DOB": ("date of birth", "direct", "name"),
                   "age": ("age", "quasi", "name")}


def test_no_direct_identifier_in_the_shipped_data_sets(adult) -> None:
    train, _ = adult
    taiwan = pd.read_csv(DATASETS / "taiwan_credit" / "credit_default.csv", nrows=3000)
    german = open_dataset(DATASETS / "german_credit" / "german.data",
                          csv={"delimiter": " ", "header": False})
    for ds in (open_dataset(train), open_dataset(taiwan), german):
        assert [f for f in pii_columns(ds) if f.category == "direct"] == []
    quasi = {f.column: f.kind for f in pii_columns(open_dataset(train))}
    assert quasi == {"age": "age", "marital_status": "marital status",
                     "race": "race or ethnicity", "sex": "sex or gender",
                     "native_country": "nationality"}


def test_identifier_like_by_checksum_whatever_the_distinct_share() -> None:
    df = pii_frame(300)
    # households share a phone and an account: fewer than half the values distinct
    df["tel"] = df["tel"].iloc[np.arange(300) % 60].to_numpy()
    df["account"] = df["account"].iloc[np.arange(300) % 50].to_numpy()
    found = identifier_columns(open_dataset(df), list(df.columns))
    assert found["tel"].startswith("phone number values (format and checksum), 60 distinct")
    assert found["account"].startswith("IBAN values")
    assert not {"amount", "grade", "city", "ratio"} & set(found)


def _people(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pii_frame(n, seed)
    df["income"] = rng.normal(50, 15, n).round(1)
    df["age"] = rng.integers(18, 80, n)
    df["sex"] = rng.choice(["F", "M"], n)
    df["approved"] = ((df["income"] - 50) / 15 + rng.normal(0, 1, n) > 0).astype(int)
    return df


def _values(df: pd.DataFrame) -> list[str]:
    return [str(v) for c in KINDS for v in df[c]]


def test_certify_leaves_personal_data_out_and_never_shows_a_value(tmp_path) -> None:
    df = _people()
    train, test = df.iloc[:800], df.iloc[800:]
    model = LogisticRegression().fit(train[["income", "age"]], train["approved"])
    cert = certify(data=test, reference=train, model=model, target="approved",
                   policy="default", tier="high", out_dir=tmp_path)
    r = cert.to_dict()
    assert set(KINDS) <= set(r["roles"]["excluded"])
    pii = next(c for c in r["checks"] if c["id"] == "privacy.pii_columns")
    assert pii["status"] == "pass", pii["message"]
    assert pii["severity"] == "block"
    found = {(row["data"], row["column"]): row for row in pii["details"]["columns"]}
    for col, kind in KINDS.items():
        for data in ("evaluation", "training"):
            assert found[(data, col)]["kind"] == kind
            assert found[(data, col)]["role"] == "left out of the features (identifier-like)"
    assert found[("evaluation", "age")]["category"] == "quasi"
    texts = [(tmp_path / "results.json").read_text(), (tmp_path / "report.html").read_text()]
    for v in _values(df):
        for text in texts:
            assert v not in text, v


def test_certify_blocks_a_model_reading_identifiers_without_showing_them(tmp_path) -> None:
    df = _people()
    train, test = df.iloc[:800], df.iloc[800:]
    model = Pipeline([("prep", ColumnTransformer([
        ("num", StandardScaler(), ["income", "age"]),
        ("who", OneHotEncoder(handle_unknown="ignore"), ["contact", "card"])])),
        ("clf", LogisticRegression())]).fit(train[["income", "age", "contact", "card"]],
                                            train["approved"])
    for tier, status in (("low", "warn"), ("high", "fail")):
        cert = certify(data=test, reference=train, model=model, target="approved",
                       policy="default", tier=tier, out_dir=tmp_path / tier)
        pii = next(c for c in cert.checks if c.id == "privacy.pii_columns")
        assert str(pii.status) == status
        assert pii.measurements[0].value == 2
        assert pii.message.startswith("2 direct identifier(s) used as model features: card, "
                                      "contact")
        result = (tmp_path / tier / "results.json").read_text()
        pii_json = json.dumps(next(c for c in json.loads(result)["checks"]
                                   if c["id"].startswith("privacy.")))
        report = (tmp_path / tier / "report.html").read_text()
        for v in _values(df):
            assert v not in pii_json and v not in pii.message and v not in report, v
    assert cert.status == "blocked"


# --------------------------------------------------------------------------- k-anonymity


def _classes_frame() -> pd.DataFrame:
    rows = ([("F", "A", 1)] * 10 + [("F", "A", 0)] * 2 + [("F", "B", 1)] * 3
            + [("M", "A", 0)] * 7 + [("M", "C", 1)])
    return pd.DataFrame(rows, columns=["sex", "zip", "y"])


def test_k_anonymity_known_answer() -> None:
    df = _classes_frame()
    roles = ColumnRoles(target="y", features=["sex", "zip"])
    ctx = Ctx(open_dataset(df), None, None, roles)
    r = run(ctx, "privacy.k_anonymity", Threshold(min=5), quasi_identifiers=["sex", "zip"])
    k, share = r.measurements
    assert k.value == 1 and share.value == pytest.approx(4 / 23)
    assert r.status is Status.FAIL and not share.judged
    assert r.details["rows_by_class_k"] == {"1": 1, "3": 3, ">= 5": 19}
    r = run(ctx, "privacy.k_anonymity", Threshold(max=0.1), quasi_identifiers=["sex", "zip"],
            measure="share_below_k", k=3)
    assert r.measurements[1].value == pytest.approx(1 / 23) and r.status is Status.PASS
    r = run(ctx, "privacy.l_diversity", Threshold(min=2), quasi_identifiers=["sex", "zip"])
    l_min, share = r.measurements
    # classes (F,A) hold both labels; (F,B), (M,A), (M,C) one each: 11 of 23 rows
    assert l_min.value == 1 and share.value == pytest.approx(11 / 23)
    assert r.details["sensitive_column"] == "y"


def test_k_anonymity_detects_and_generalises_quasi_identifiers(adult) -> None:
    _, test = adult
    roles = ColumnRoles(target="income", positive_label=">50K")
    ctx = Ctx(open_dataset(test), None, None, roles)
    r = run(ctx, "privacy.k_anonymity", Threshold(min=5), bins=5)
    qis = ["age", "marital_status", "race", "sex", "native_country"]
    assert r.details["quasi_identifiers"] == qis
    assert r.details["generalised"] == ["age: 5 quantile ranges"]
    # cross-check: pandas group sizes over the same generalisation
    keys = test[qis].astype(str).assign(age=pd.qcut(test["age"], 5, duplicates="drop")
                                        .astype(str))
    sizes = keys.groupby(qis, dropna=False).size()
    assert r.measurements[0].value == sizes.min()
    assert r.measurements[1].value == pytest.approx(sizes[sizes < 5].sum() / len(test))
    assert "age: 5 quantile ranges" in r.message and "all 16,281 rows" in r.message
    # a sample: the size is said
    r = run(ctx, "privacy.k_anonymity", None, sample_rows=1000, quasi_identifiers=["sex"])
    assert "a seeded sample of 1,000 of 16,281 rows" in r.message
    assert r.measurements[0].n == 1000


def test_l_diversity_on_german_credit_against_pandas() -> None:
    german = open_dataset(DATASETS / "german_credit" / "german.data",
                          csv={"delimiter": " ", "header": False})
    df = german.to_pandas()
    age, sex, credit = df.columns[12], df.columns[8], df.columns[20]  # age, status_sex, credit
    roles = ColumnRoles(target=credit, positive_label=1)
    ctx = Ctx(german, None, None, roles)
    r = run(ctx, "privacy.l_diversity", Threshold(max=0.05), quasi_identifiers=[age, sex],
            measure="share_below_l", bins=4)
    assert r.details["generalised"] == [f"{age}: 4 quantile ranges"]
    keys = df[[age, sex]].assign(**{age: pd.qcut(df[age], 4, duplicates="drop").astype(str)})
    distinct = df.groupby([keys[age], keys[sex]])[credit].transform("nunique")
    assert r.measurements[0].value == distinct.min()
    assert r.measurements[1].value == pytest.approx((distinct < 2).mean(), abs=1e-12)
    assert r.measurements[1].judged and not r.measurements[0].judged


def test_k_anonymity_dates_of_birth_as_years_and_skips() -> None:
    df = _people(300)
    ctx = Ctx(open_dataset(df), None, None, ColumnRoles(target="approved"))
    r = run(ctx, "privacy.k_anonymity", None, quasi_identifiers=["born", "sex"])
    # dates of birth become years, and years more than 10 distinct become 10 ranges
    assert r.details["generalised"] == ["born: year", "born: 10 quantile ranges"]
    years = pd.qcut(pd.to_datetime(df["born"]).dt.year, 10, duplicates="drop")
    assert r.measurements[0].value == pd.DataFrame({"y": years, "s": df["sex"]}).value_counts(
    ).min()
    plain = Ctx(open_dataset(pd.DataFrame({"a": [1, 2, 3], "b": [1, 1, 2]})), None, None,
                ColumnRoles())
    r = run(plain, "privacy.k_anonymity", None)
    assert r.status is Status.SKIP and "no quasi-identifier" in r.message
    r = run(plain, "privacy.k_anonymity", None, data="training")
    assert r.status is Status.SKIP and "no training data" in r.message
    with pytest.raises(PolicyError, match="'quasi_identifiers': zip not in"):
        run(plain, "privacy.k_anonymity", None, quasi_identifiers=["zip"])
    with pytest.raises(PolicyError, match="parameter 'measure': expected one of k, "
                                          "share_below_k"):
        run(plain, "privacy.k_anonymity", None, quasi_identifiers=["a"], measure="l")


# --------------------------------------------------------------------------- membership


def test_delong_matches_scikit_learn_and_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    a = np.round(rng.normal(0.3, 1, 60), 1)  # ties within and across the two samples
    b = np.round(rng.normal(0, 1, 45), 1)
    auc, (lo, hi), se = delong_auc(a, b)
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    assert auc == pytest.approx(roc_auc_score(y, np.r_[a, b]), abs=1e-12)
    psi = (a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(a) + v01.var(ddof=1) / len(b)
    assert se == pytest.approx(np.sqrt(var), abs=1e-12)
    assert (lo, hi) == pytest.approx((auc - 1.959963984540054 * se,
                                      auc + 1.959963984540054 * se), abs=1e-9)


def _memorable(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = ((X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 1.2, n)) > 0).astype(int)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(y=y)


def test_membership_inference_tree_fails_logistic_regression_passes() -> None:
    train, test = _memorable(3000, 1), _memorable(3000, 2)
    roles = ColumnRoles(target="y", features=[f"x{i}" for i in range(6)])
    results = {}
    for name, est in (("tree", DecisionTreeClassifier(random_state=0)),
                      ("logreg", LogisticRegression())):
        est.fit(train[roles.features], train["y"])
        ctx = Ctx(open_dataset(test), open_dataset(train), ModelAdapter.from_estimator(est),
                  roles)
        r = run_one(REGISTRY["privacy.membership_inference"], ctx,
                    CheckSpec(id="privacy.membership_inference", threshold=Threshold(max=0.6),
                              judge_on="interval", params={"sample_rows": 2000}))
        results[name] = r
        m = r.measurements[0]
        assert m.n == 4000 and "2,000 training rows (members) against 2,000" in m.note
    assert results["tree"].status is Status.FAIL and results["tree"].measurements[0].ci[0] > 0.6
    assert results["logreg"].status is Status.PASS
    assert results["logreg"].measurements[0].ci[0] < 0.5 < results["logreg"].measurements[0].ci[1]


def test_membership_inference_on_adult(adult) -> None:
    train, test = adult
    feats = ADULT_NUM + ADULT_CAT
    roles = ColumnRoles(target="income", positive_label=">50K", features=feats)
    prep = ColumnTransformer([("num", StandardScaler(), ADULT_NUM),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ADULT_CAT)])
    aucs = {}
    for name, clf in (("tree", DecisionTreeClassifier(random_state=0)),
                      ("logreg", LogisticRegression(max_iter=500))):
        model = Pipeline([("prep", prep), ("clf", clf)]).fit(train[feats], train["income"])
        ctx = Ctx(open_dataset(test), open_dataset(train), ModelAdapter.from_estimator(model),
                  roles)
        r = run(ctx, "privacy.membership_inference", Threshold(max=0.6), sample_rows=3000)
        aucs[name] = r.measurements[0]
        # the point value is scikit-learn's AUC of the same attack scores
        roc = r.details["roc"]
        assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1
    # Adult's rows repeat and its leaves are often pure for unseen rows too, so the attack
    # is weaker than on continuous data; still the tree leaks, the regression does not
    assert aucs["tree"].ci[0] > 0.55 and aucs["logreg"].ci[0] < 0.5 < aucs["logreg"].ci[1]


def test_membership_inference_needs_labelled_training_data() -> None:
    train, test = _memorable(200, 1), _memorable(200, 2)
    roles = ColumnRoles(target="y", features=["x0", "x1"])
    model = ModelAdapter.from_estimator(LogisticRegression().fit(train[["x0", "x1"]], train["y"]))
    spec = CheckSpec(id="privacy.membership_inference", threshold=Threshold(max=0.6))
    defn = REGISTRY["privacy.membership_inference"]
    r = run_one(defn, Ctx(open_dataset(test), None, model, roles), spec)
    assert r.status is Status.SKIP and "reference data (the training data)" in r.message
    r = run_one(defn, Ctx(open_dataset(test), open_dataset(train), None, roles), spec)
    assert r.status is Status.SKIP and "a model" in r.message
    r = run_one(defn, Ctx(open_dataset(test), open_dataset(train.drop(columns="y")), model,
                          roles), spec)
    assert r.status is Status.SKIP and "the training data has no target column 'y'" in r.message


# --------------------------------------------------------------------------- minimisation


def test_data_minimisation_lists_the_planted_feature_only() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    df = pd.DataFrame({"strong": rng.normal(size=n), "weak": rng.normal(size=n),
                       "planted": rng.normal(size=n)})
    df["y"] = ((1.5 * df.strong + 0.6 * df.weak + rng.normal(size=n)) > 0).astype(int)
    roles = ColumnRoles(target="y", features=["strong", "weak", "planted"])
    model = LogisticRegression().fit(df.iloc[:2000][roles.features], df.iloc[:2000]["y"])
    ctx = Ctx(open_dataset(df.iloc[2000:]), None, ModelAdapter.from_estimator(model), roles)
    r = run(ctx, "privacy.data_minimisation", Threshold(max=0))
    assert r.details["unused"] == ["planted"]
    assert r.status is Status.FAIL and r.measurements[0].value == 1
    by = {m.label: m for m in r.measurements[1:]}
    assert by["strong"].ci[0] > 0 and by["weak"].ci[0] > 0
    assert by["planted"].ci[0] <= 0 <= by["planted"].ci[1]
    assert "a seeded sample of 2,000 of 2,000 rows" not in r.message
    assert "all 2,000 rows, 5 permutations per feature" in r.message
    assert "95% bootstrap intervals (200 replicates)" in r.message
    assert [i["feature"] for i in r.details["importance"]] == ["strong", "weak", "planted"]


def test_data_minimisation_on_german_credit() -> None:
    cols = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
            "present_employment", "installment_rate", "status_sex", "other_debtors",
            "present_residence_since", "property", "age", "installment_plans", "housing",
            "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
            "foreign_worker", "credit"]
    df = pd.read_csv(DATASETS / "german_credit" / "german.data", sep=" ", header=None,
                     names=cols)
    rng = np.random.default_rng(0)
    df["planted"] = rng.normal(size=len(df))
    num = ["duration", "credit_amount", "age", "planted"]
    model = Pipeline([("prep", ColumnTransformer([("num", StandardScaler(), num),
                                                  ("cat", OneHotEncoder(), ["status"])])),
                      ("clf", LogisticRegression())]).fit(df[[*num, "status"]], df["credit"])
    roles = ColumnRoles(target="credit", positive_label=1, features=[*num, "status"])
    ctx = Ctx(open_dataset(df), None, ModelAdapter.from_estimator(model), roles)
    r = run(ctx, "privacy.data_minimisation", Threshold(max=0), metric="log_loss",
            n_repeats=10, sample_rows=1000)
    assert "planted" in r.details["unused"] and "status" not in r.details["unused"]
    with pytest.raises(PolicyError, match="parameter 'metric': expected one of"):
        run(ctx, "privacy.data_minimisation", None, metric="f1")
    with pytest.raises(PolicyError, match="parameter 'replicates': expected an integer >= 1"):
        run(ctx, "privacy.data_minimisation", None, replicates=0)


# --------------------------------------------------------------------------- report


def test_report_shows_privacy_findings_and_charts(tmp_path) -> None:
    train, test = _memorable(1500, 1), _memorable(1500, 2)
    test["email"] = [f"user{i}@example.org" for i in range(len(test))]
    train["email"] = [f"member{i}@example.org" for i in range(len(train))]
    model = DecisionTreeClassifier(random_state=0).fit(train[[f"x{i}" for i in range(6)]],
                                                        train["y"])
    cert = certify(data=test, reference=train, model=model, target="y", policy="default",
                   tier="high", out_dir=tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Privacy</h2>" in html
    assert "Membership inference attack" in html and "Permutation importance" in html
    assert "<th>found by</th>" in html and "e-mail address" in html
    assert "example.org" not in html
    mia = next(c for c in cert.checks if c.id == "privacy.membership_inference")
    assert str(mia.status) == "warn" and mia.measurements[0].ci[0] > 0.6


# --------------------------------------------------------------------------- faces and policy


def test_features_named_by_the_user_keep_identifiers(tmp_path) -> None:
    df = _people(600)
    df["score"] = np.clip((df["income"] - 20) / 60, 0, 1)
    cert = certify(data=df, score="score", target="approved", policy="default", tier="high",
                   features=["income", "age", "contact"])
    assert cert.roles.excluded == {}
    pii = next(c for c in cert.checks if c.id == "privacy.pii_columns")
    assert str(pii.status) == "fail" and pii.measurements[0].note.startswith("contact (")
    assert cert.status == "blocked"


def test_checks_command_lists_the_family_with_its_params(capsys, monkeypatch) -> None:
    from assay.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    try:
        main(["checks", "--family", "privacy"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    for cid in ("privacy.pii_columns", "privacy.k_anonymity", "privacy.l_diversity",
                "privacy.membership_inference", "privacy.data_minimisation"):
        assert cid in out
    assert "quasi_identifiers, bins, k, measure" in out and "needs model, reference, target" in out


def test_bad_parameters_name_the_policy_line(tmp_path) -> None:
    from assay.policy import load_policy

    text = """\
name: p
version: "1"
tiers:
  high:
    checks:
      - id: privacy.k_anonymity
        params: {quasi_identifier: [sex]}
        threshold: {min: 5}
"""
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "p.yaml")
    assert str(err.value).startswith("p.yaml:7:") and "did you mean 'quasi_identifiers'" in str(
        err.value)
    (tmp_path / "p.yaml").write_text(text.replace("quasi_identifier: [sex]", "k: five"))
    df = _classes_frame()
    cert = certify(data=df, prediction="y", target="y", policy=tmp_path / "p.yaml", tier="high")
    r = cert.checks[0]
    assert str(r.status) == "error"
    assert "privacy.k_anonymity (p.yaml:6): parameter 'k': expected an integer >= 1, got 'five'" \
        in r.message


def test_class_size_chart_follows_the_details() -> None:
    from assay.report.privacy_charts import class_sizes

    svg = class_sizes({"1": 1, "3": 3, ">= 5": 19})
    assert svg.startswith("<svg") and "k = 1" in svg and "k &gt;= 5" in svg
    assert "4.3% of rows" in svg and "82.6% of rows" in svg
    assert class_sizes({}) is None and class_sizes({"1": 0}) is None
    assert "Rows by distinct sensitive values" in class_sizes({"1": 2}, what="l")
