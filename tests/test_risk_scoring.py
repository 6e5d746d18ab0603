"""Risk scoring, tiering rules, the impact questionnaire and the backlog formula (no database)."""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import InputError, PolicyError
from assay.risk.backlog import BacklogInput, priority, rank
from assay.risk.config import CATEGORIES, BacklogConfig, RiskConfig, parse_risk
from assay.risk.policy import load_risk_policy, tier_requirements
from assay.risk.questionnaire import load_questionnaire, score_answers
from assay.risk.scoring import combined_reduction, decide_tier, parse_categories


def _cats(default=(2, 2), **over):
    out = {}
    for c in CATEGORIES:
        lik, imp = over.get(c, default)
        out[c] = {"likelihood": lik, "impact": imp, "rationale": f"why {c}"}
    return out


# ---------------------------------------------------------------- scoring

def test_inherent_is_likelihood_times_impact_and_controls_reduce_residual():
    raw = _cats()
    raw["fairness_bias"] = {
        "likelihood": 4, "impact": 5, "rationale": "thin-file applicants",
        "controls": [{"name": "reject inference", "effectiveness": 0.5},
                     {"name": "bias monitoring", "strength": "moderate"}],
    }
    scores = {s.category: s for s in parse_categories(raw, RiskConfig())}
    fb = scores["fairness_bias"]
    assert fb.inherent == 20
    # 1 - (1 - 0.5)(1 - 0.4) = 0.7 ; residual = 20 * 0.3 = 6
    assert fb.control_reduction == pytest.approx(0.7)
    assert fb.residual == pytest.approx(6.0)
    assert scores["privacy"].residual == 4


def test_control_reduction_is_capped_by_policy():
    assert combined_reduction([0.9, 0.9], 0.8) == pytest.approx(0.8)
    assert combined_reduction([], 0.8) == 0.0
    cfg = parse_risk({"controls": {"max_reduction": 0.5}})
    raw = _cats(fairness_bias=(5, 5))
    raw["fairness_bias"]["controls"] = [{"name": "x", "effectiveness": 1.0}]
    fb = next(s for s in parse_categories(raw, cfg) if s.category == "fairness_bias")
    assert fb.residual == pytest.approx(12.5)


def test_highest_category_dominates_by_default():
    cfg = RiskConfig()
    scores = parse_categories(_cats(privacy=(5, 3)), cfg)  # 15 -> high, everything else 4
    d = decide_tier(scores, cfg)
    assert (d.score, d.score_tier, d.tier, d.dominant_category) == (15, "high", "high", "privacy")


def test_mean_aggregate_from_policy_lowers_the_tier():
    cfg = parse_risk({"tiering": {"aggregate": "mean"}})
    scores = parse_categories(_cats(privacy=(5, 3)), cfg)
    d = decide_tier(scores, cfg)
    assert d.score == pytest.approx((15 + 6 * 4) / 7)  # 5.571...
    assert d.tier == "low"


def test_weighted_mean_aggregate():
    cfg = parse_risk({"tiering": {"aggregate": "weighted_mean",
                                  "weights": {"regulatory_exposure": 6}}})
    scores = parse_categories(_cats(regulatory_exposure=(4, 4)), cfg)
    d = decide_tier(scores, cfg)
    assert d.score == pytest.approx((6 * 16 + 6 * 4) / 12)  # 10
    assert d.tier == "medium" and d.dominant_category == "regulatory_exposure"


def test_thresholds_are_inclusive():
    cfg = RiskConfig()
    assert decide_tier(parse_categories(_cats(security=(3, 5)), cfg), cfg).tier == "high"  # 15
    assert decide_tier(parse_categories(_cats(security=(4, 2)), cfg), cfg).tier == "medium"  # 8
    assert decide_tier(parse_categories(_cats(security=(2, 3)), cfg), cfg).tier == "low"  # 6


def test_impact_level_raises_but_never_lowers_the_tier():
    cfg = RiskConfig()
    low = parse_categories(_cats(), cfg)
    assert decide_tier(low, cfg, "IV").tier == "high"
    assert decide_tier(low, cfg, "II").tier == "medium"
    assert decide_tier(low, cfg, "I").tier == "low"
    high = parse_categories(_cats(security=(5, 5)), cfg)
    d = decide_tier(high, cfg, "I")
    assert d.tier == "high" and d.impact_tier == "low"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["privacy"].update(likelihood=6),
         "categories.privacy.likelihood: expected a whole"),
        (lambda r: r["privacy"].update(impact=2.5), "categories.privacy.impact"),
        (lambda r: r["privacy"].update(likelihood=True), "categories.privacy.likelihood"),
        (lambda r: r["privacy"].update(rationale="  "), "rationale is required"),
        (lambda r: r["privacy"].pop("rationale"), "categories.privacy.rationale: missing"),
        (lambda r: r.pop("security"), "missing from the assessment: security"),
        (lambda r: r.update(vibes={}), "unknown risk category 'vibes'"),
        (lambda r: r["privacy"].update(controls=[{"name": "x", "effectiveness": 1.5}]),
         "controls.0.effectiveness: expected a number from 0 to 1"),
        (lambda r: r["privacy"].update(controls=[{"name": "x", "strength": "mighty"}]),
         "unknown strength 'mighty'"),
        (lambda r: r["privacy"].update(controls=[{"name": "x"}]), "give exactly one of"),
        (lambda r: r["privacy"].update(colour="red"), "unknown key(s) colour"),
    ],
)
def test_bad_assessment_input_is_named(mutate, message):
    raw = _cats()
    mutate(raw)
    with pytest.raises(InputError) as err:
        parse_categories(raw, RiskConfig(), source="a.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("a.yaml")


@pytest.mark.parametrize(
    "section, message",
    [
        ({"tiering": {"thresholds": {"high": 5, "medium": 9}}}, "risk.tiering.thresholds"),
        ({"tiering": {"aggregate": "median"}}, "risk.tiering.aggregate"),
        ({"tiering": {"impact_levels": {"I": "high", "II": "low", "III": "low", "IV": "low"}}},
         "cannot map to a lower tier"),
        ({"tiering": {"weights": {"vibes": 2}}}, "unknown category 'vibes'"),
        ({"tiers": {"extreme": {"review_interval_days": 1}}}, "unknown tier 'extreme'"),
        ({"controls": {"max_reduction": 1.5}}, "risk.controls.max_reduction"),
        ({"backlog": {"cost_reference": 0}}, "risk.backlog.cost_reference"),
        ({"colour": 1}, "risk.colour"),
        ([1, 2], "'risk' must be a mapping"),
    ],
)
def test_bad_risk_policy_section_names_the_field(section, message):
    with pytest.raises(PolicyError) as err:
        parse_risk(section, source="p.yaml")
    assert message in str(err.value) and str(err.value).startswith("p.yaml")


def test_tier_overrides_merge_with_defaults():
    cfg = parse_risk({"tiers": {"high": {"review_interval_days": 90}}})
    assert cfg.tier("high").review_interval_days == 90
    assert cfg.tier("high").monitoring["psi_max"] == 0.10  # default kept
    assert cfg.tier("low").review_interval_days == 730


# ---------------------------------------------------------------- questionnaire

def _answers(q, pick):
    """Answer every question with option index ``pick(question)``."""
    out = {}
    for x in q.questions:
        opt = x.options[pick(x)].value
        out[x.id] = [opt] if x.multiple else opt
    return out


def test_shipped_questionnaire_extremes():
    q = load_questionnaire()
    assert q.name == "aia-default" and q.digest.startswith("sha256:")
    lowest = score_answers(q, _answers(q, lambda x: 0))
    assert lowest.raw_impact == 0 and lowest.level == "I"
    worst = {x.id: ([o.value for o in x.options] if x.multiple else x.options[-1].value)
             for x in q.questions}
    for x in q.section("mitigation"):
        worst[x.id] = x.options[0].value
    res = score_answers(q, worst)
    assert res.raw_impact == res.max_impact == q.max_impact
    assert res.share == 1.0 and res.level == "IV" and not res.mitigation_applied


def _tiny(tmp_path: Path, **over) -> Path:
    doc = {
        "name": "tiny", "version": 2,
        "cutoffs": {"II": 0.25, "III": 0.5, "IV": 0.75},
        "mitigation": {"threshold": 0.8, "reduction": 0.15},
        "questions": [
            {"id": "a", "text": "A?", "weight": 2, "options": [
                {"value": "lo", "label": "lo", "points": 0},
                {"value": "mid", "label": "mid", "points": 2},
                {"value": "hi", "label": "hi", "points": 4}]},
            {"id": "b", "text": "B?", "multiple": True, "options": [
                {"value": "x", "label": "x", "points": 1},
                {"value": "y", "label": "y", "points": 1}]},
            {"id": "m", "text": "M?", "section": "mitigation", "options": [
                {"value": "absent", "label": "no", "points": 0},
                {"value": "in_place", "label": "yes", "points": 5}]},
        ],
        **over,
    }
    p = tmp_path / "q.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_questionnaire_scoring_by_hand(tmp_path):
    q = load_questionnaire(_tiny(tmp_path))
    assert q.version == "2" and q.max_impact == 10 and q.max_mitigation == 5
    # a=mid: 2*2=4, b=[x,y]: 2 -> raw 6 of 10 = 0.6 -> III
    r = score_answers(q, {"a": "mid", "b": ["x", "y"], "m": "absent"})
    assert (r.raw_impact, r.share, r.level, r.mitigation_applied) == (6, 0.6, "III", False)
    # with the mitigation in place (5/5 >= 0.8) the score drops 15%: 5.1 -> 0.51 -> III
    r = score_answers(q, {"a": "mid", "b": ["x", "y"], "m": "in_place"})
    assert r.mitigation_applied and r.impact_score == pytest.approx(5.1)
    assert r.level == "III"
    # a=hi 8, b=[] 0 -> 0.8 -> IV; with mitigation 6.8 -> 0.68 -> III
    assert score_answers(q, {"a": "hi", "b": [], "m": "absent"}).level == "IV"
    assert score_answers(q, {"a": "hi", "b": [], "m": "in_place"}).level == "III"
    # exactly on a cut-off counts as reaching it: a=lo, b=[x] -> 1/10 -> I ; a=mid,b=[x] 0.5 -> III
    assert score_answers(q, {"a": "mid", "b": ["x"], "m": "absent"}).level == "III"
    assert score_answers(q, {"a": "lo", "b": ["x"], "m": "absent"}).level == "I"


@pytest.mark.parametrize(
    "answers, message",
    [
        ({"a": "mid", "b": []}, "unanswered question(s): m"),
        ({"a": "top", "b": [], "m": "absent"},
         "a: unknown option 'top'; expected one of lo, mid, hi"),
        ({"a": ["lo", "mid"], "b": [], "m": "absent"}, "a: expected exactly one option"),
        ({"a": "lo", "b": ["x", "x"], "m": "absent"}, "chosen twice"),
        ({"a": "lo", "b": [], "m": False}, "m: unknown option False"),
        ({"a": "lo", "b": [], "m": "absent", "z": 1}, "unknown question 'z'"),
    ],
)
def test_bad_answers_are_refused(tmp_path, answers, message):
    q = load_questionnaire(_tiny(tmp_path))
    with pytest.raises(InputError) as err:
        score_answers(q, answers, source="ans.yaml")
    assert message in str(err.value)


def test_bad_questionnaire_file(tmp_path):
    with pytest.raises(PolicyError, match="cutoffs"):
        load_questionnaire(_tiny(tmp_path, cutoffs={"II": 0.6, "III": 0.5, "IV": 0.9}))
    with pytest.raises(InputError, match="questionnaire 'nope' not found"):
        load_questionnaire("nope")


# ---------------------------------------------------------------- backlog

def test_priority_formula_by_hand():
    cfg = BacklogConfig()  # weights 1, references 50,000 and 90 days
    p, c, d = priority(20, 40_000, 45, cfg)
    assert (c, d) == (0.8, 0.5) and p == pytest.approx(20 / 2.3)
    p, c, d = priority(25, 200_000, 180, cfg)  # both capped at 1
    assert (c, d) == (1.0, 1.0) and p == pytest.approx(25 / 3)
    cfg2 = BacklogConfig(cost_weight=2, time_weight=0, cost_reference=10_000, days_reference=30)
    assert priority(12, 5_000, 300, cfg2)[0] == pytest.approx(12 / 2)


def test_backlog_ranking_by_hand():
    items = [
        BacklogInput(1, "R1", 4, 5, (30_000, 10_000), (45, 30)),  # 20 / 2.3 = 8.6957
        BacklogInput(2, "R2", 3, 4, (5_000,), (9,)),  # 12 / 1.2 = 10
        BacklogInput(3, "R3", 5, 5, (200_000,), (180,)),  # 25 / 3 = 8.3333
        BacklogInput(4, "R4", 2, 3),  # unplanned: 6 / 1 = 6
    ]
    out = rank(items, BacklogConfig())
    assert [i.risk_id for i in out] == [2, 1, 3, 4]
    assert [i.rank for i in out] == [1, 2, 3, 4]
    assert [i.priority for i in out] == pytest.approx([10.0, 8.695652, 8.333333, 6.0])
    assert out[1].cost == 40_000 and out[1].days == 45


def test_backlog_ties_are_deterministic():
    cfg = BacklogConfig()
    items = [
        BacklogInput(7, "same, later due", 2, 5, (), (), date(2027, 3, 1), created_order=1),
        BacklogInput(5, "same, no due", 2, 5, (), (), None, created_order=0),
        BacklogInput(6, "same, early due", 2, 5, (), (), date(2027, 1, 1), created_order=2),
        BacklogInput(9, "bigger score, same priority", 3, 4, (5_000,), (9,)),  # 12/1.2 = 10
        BacklogInput(8, "same as 7 but newer", 2, 5, (), (), date(2027, 3, 1), created_order=3),
        BacklogInput(4, "same as 8 and same age, lower id", 2, 5, (), (), date(2027, 3, 1),
                     created_order=3),
    ]
    order = [i.risk_id for i in rank(items, cfg)]
    assert order == [9, 6, 7, 4, 8, 5]
    assert order == [i.risk_id for i in rank(list(reversed(items)), cfg)]


# ---------------------------------------------------------------- policy and tiers

def _policy(text: str):
    from assay.policy.loader import parse_policy

    return parse_policy(text, source="pol.yaml")


POLICY = """\
name: pol
version: "3"
tiers:
  high:
    checks: []
  medium:
    review_interval_days: 200
    checks: []
  low:
    checks: []
risk:
  tiers:
    high: {review_interval_days: 90, monitoring: {psi_max: 0.05}}
"""


def test_tier_requirements_from_policy():
    from assay.checks.base import CheckSpec

    pol = _policy(POLICY)
    pol.tiers["high"].checks = [CheckSpec(id="performance.auc"), CheckSpec(id="fairness.dp")]
    req = tier_requirements(pol, "high")
    assert req["checks"] == ["performance.auc", "fairness.dp"]
    assert req["review_interval_days"] == 90
    assert req["monitoring"]["psi_max"] == 0.05
    assert req["monitoring"]["interval_days"] == 7  # default kept
    # the policy's own tier setting is honoured
    assert tier_requirements(pol, "medium")["review_interval_days"] == 200
    assert tier_requirements(pol, "low")["review_interval_days"] == 730
    rp = load_risk_policy(pol)
    assert rp.name == "pol" and rp.version == "3" and rp.digest.startswith("sha256:")
    with pytest.raises(PolicyError, match="unknown tier 'extreme'"):
        tier_requirements(pol, "extreme")


def test_review_interval_given_twice_differently_is_refused():
    text = POLICY.replace("review_interval_days: 90", "review_interval_days: 90")
    text = text.replace("  high:\n    checks: []", "  high:\n    review_interval_days: 30\n"
                        "    checks: []")
    with pytest.raises(PolicyError, match="give it in one place"):
        load_risk_policy(_policy(text))


def test_bad_risk_section_error_names_the_line():
    text = POLICY + "  tiering:\n    thresholds: {high: 5, medium: 9}\n"
    with pytest.raises(PolicyError) as err:
        load_risk_policy(_policy(text))
    assert str(err.value).startswith("pol.yaml:15") and "risk.tiering.thresholds" in str(err.value)


def test_tier_requirements_signoff_roles_come_from_workflow():
    pytest.importorskip("assay.workflow.config")
    pol = _policy(POLICY)
    high = tier_requirements(pol, "high")["signoff_roles"]
    low = tier_requirements(pol, "low")["signoff_roles"]
    assert high and all(isinstance(v, list) and v for v in high.values())
    # the low tier skips some stages the high tier needs
    assert set(low) < set(high)


def test_unknown_policy_is_a_policy_error():
    with pytest.raises(PolicyError):
        load_risk_policy("no-such-policy-anywhere")


# ---------------------------------------------------------------- properties


_money = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_days = st.floats(min_value=0, max_value=1000, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(score=st.integers(1, 25), cost=_money, extra=_money, days=_days, more=_days)
def test_priority_never_rises_with_cost_or_time_and_keeps_a_third(score, cost, extra, days,
                                                                   more):
    cfg = BacklogConfig()
    p = priority(score, cost, days, cfg)[0]
    assert priority(score, cost + extra, days, cfg)[0] <= p + 1e-12
    assert priority(score, cost, days + more, cfg)[0] <= p + 1e-12
    assert score / 3 - 1e-12 <= p <= score


_items = st.lists(
    st.tuples(st.integers(1, 5), st.integers(1, 5), st.lists(_money, max_size=3),
              st.lists(_days, max_size=3)),
    min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(rows=_items, seed=st.randoms(use_true_random=False))
def test_ranking_ignores_input_order(rows, seed):
    items = [BacklogInput(i, f"r{i}", lik, imp, tuple(c), tuple(d))
             for i, (lik, imp, c, d) in enumerate(rows, start=1)]
    shuffled = list(items)
    seed.shuffle(shuffled)
    ranked = rank(items, BacklogConfig())
    assert [x.risk_id for x in ranked] == [x.risk_id for x in rank(shuffled, BacklogConfig())]
    assert all(a.priority >= b.priority - 1e-6 for a, b in pairwise(ranked))


@settings(max_examples=100, deadline=None)
@given(effects=st.lists(st.floats(0, 1, allow_nan=False), max_size=6),
       cap=st.floats(0, 1, allow_nan=False))
def test_combined_reduction_is_bounded_and_grows_with_controls(effects, cap):
    r = combined_reduction(effects, cap)
    assert 0 <= r <= cap + 1e-9
    assert combined_reduction([*effects, 0.3], cap) >= r - 1e-9


def test_policy_questionnaire_is_found_next_to_the_policy(tmp_path):
    from assay.policy import load_policy

    q = _tiny(tmp_path)  # tmp_path/q.yaml
    pol = tmp_path / "pol.yaml"
    pol.write_text(POLICY + "  questionnaire: q.yaml\n")
    rp = load_risk_policy(load_policy(pol))
    assert load_questionnaire(rp.risk.questionnaire).name == "tiny"
    assert Path(rp.risk.questionnaire) == q.resolve()
    pol.write_text(POLICY + "  questionnaire: missing.yaml\n")
    with pytest.raises(PolicyError, match=r"pol.yaml:14: risk.questionnaire: 'missing.yaml'"):
        load_risk_policy(load_policy(pol))


def test_shipped_policies_carry_a_risk_section():
    from assay.policy import load_policy

    default = load_risk_policy(load_policy("default"))
    credit = load_risk_policy(load_policy("credit-lending"))
    assert "risk" in load_policy("credit-lending").extra_sections
    # the same assessment is tiered more strictly for consumer credit
    raw = _cats(model_performance=(3, 4))  # 12 -> medium by default, high for credit
    assert decide_tier(parse_categories(raw, default.risk), default.risk).tier == "medium"
    assert decide_tier(parse_categories(raw, credit.risk), credit.risk).tier == "high"
    # no consumer credit model falls below medium
    low = parse_categories(_cats(), credit.risk)
    assert decide_tier(low, credit.risk, "I").tier == "medium"
    for name in ("default", "credit-lending"):
        for tier in ("high", "medium", "low"):
            req = tier_requirements(name, tier)
            assert req["checks"] and req["signoff_roles"] and req["monitoring"]
            assert req["review_interval_days"] >= 1


_lik_imp = st.tuples(st.integers(1, 5), st.integers(1, 5))


@settings(max_examples=150, deadline=None)
@given(base=st.lists(_lik_imp, min_size=7, max_size=7), which=st.integers(0, 6),
       bump=st.sampled_from(["likelihood", "impact"]),
       aggregate=st.sampled_from(["max", "mean", "weighted_mean"]),
       level=st.sampled_from([None, "I", "II", "III", "IV"]))
def test_a_higher_score_never_lowers_the_tier(base, which, bump, aggregate, level):
    from assay.risk.config import TIER_RANK

    cfg = parse_risk({"tiering": {"aggregate": aggregate,
                                  "weights": {"regulatory_exposure": 3}}})
    raw = {c: {"likelihood": lik, "impact": imp, "rationale": "r"}
           for c, (lik, imp) in zip(CATEGORIES, base, strict=True)}
    before = decide_tier(parse_categories(raw, cfg), cfg, level).tier
    entry = raw[CATEGORIES[which]]
    entry[bump] = min(5, entry[bump] + 1)
    after = decide_tier(parse_categories(raw, cfg), cfg, level).tier
    assert TIER_RANK[after] >= TIER_RANK[before]


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=3),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(junk=_json, cat=st.sampled_from(CATEGORIES),
       key=st.sampled_from(["likelihood", "impact", "rationale", "controls"]))
def test_any_malformed_assessment_is_an_input_error(junk, cat, key):
    raw = _cats()
    raw[cat][key] = junk
    for candidate in (junk, raw):
        try:
            parse_categories(candidate, RiskConfig(), source="a.yaml")
        except InputError as exc:
            assert str(exc).startswith("a.yaml")


_SHIPPED = load_questionnaire()


@settings(max_examples=150, deadline=None)
@given(junk=_json)
def test_any_malformed_answers_are_an_input_error(junk):
    q = _SHIPPED
    answers = {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}
    answers["decision_automation"] = junk
    for candidate in (junk, answers):
        try:
            score_answers(q, candidate, source="ans.yaml")
        except InputError as exc:
            assert str(exc).startswith("ans.yaml")
