#!/usr/bin/env bash
# The governance plane end to end, as the people who use it.
#
# A bank's credit team brings a probability-of-default model on the Statlog
# German Credit data to production with assay: users and roles, the model in
# the inventory with its lineage, certification, risk tiering with the
# impact questionnaire, the approval workflow stage by stage (with a refused
# self-approval and a waiver of a blocked certification), a new version that
# needs its own certification, the risk register and backlog, and the audit
# trail verified inside assay and, exported, without it.
#
#   examples/governance-walkthrough.sh [GERMAN_CREDIT_DIR]
#
# GERMAN_CREDIT_DIR holds german.data (default: $ASSAY_DATASETS/german_credit,
# else shared/datasets/german_credit beside the repository). Everything is
# written to a fresh temporary directory (kept and printed with
# KEEP_WALKTHROUGH=1). With ASSAY_DATABASE_URL set to an empty PostgreSQL
# database the story runs there (after `assay db upgrade`); otherwise in
# SQLite under the temporary ASSAY_HOME. PYTHON names the interpreter assay
# is installed in (default python3; it also prepares the data with pandas and
# scikit-learn). Exits non-zero on the first step that does not end as the
# story expects.
set -euo pipefail
py=${PYTHON:-python3}
command -v assay >/dev/null || { echo "walkthrough: the assay command is not on PATH" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
data_dir=${1:-${ASSAY_DATASETS:+$ASSAY_DATASETS/german_credit}}
data_dir=${data_dir:-$(dirname "$repo")/shared/datasets/german_credit}
[ -f "$data_dir/german.data" ] || { echo "walkthrough: no german.data in $data_dir (give GERMAN_CREDIT_DIR)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/assay-walkthrough.XXXXXX")
if [ -n "${KEEP_WALKTHROUGH:-}" ]; then
  echo "walkthrough: files kept in $work"
else
  trap 'rm -rf "$work"' EXIT
fi
cd "$work"
export ASSAY_HOME="$work/home"
unset ASSAY_USER
export COLUMNS=${COLUMNS:-120}
step=0

# say TEXT: narrate; run CMD...: must succeed; expect CODE CMD...: must exit CODE.
say() { step=$((step + 1)); printf '\n== %d. %s\n' "$step" "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
expect() {
  local want=$1 got=0
  shift
  printf '$ %s   # expected exit %s\n' "$*" "$want"
  "$@" || got=$?
  if [ "$got" != "$want" ]; then
    echo "walkthrough: step $step: '$*' exited $got, expected $want" >&2
    exit 1
  fi
}

say "The data scientist prepares training and holdout data and fits two models"
"$py" - "$data_dir/german.data" <<'EOF'
import sys

import joblib
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

cols = ("status duration credit_history purpose credit_amount savings present_employment "
        "installment_rate status_sex other_debtors present_residence_since property age "
        "installment_plans housing number_of_existing_credits job number_of_people_liable_for "
        "telephone foreign_worker credit").split()
df = pd.read_csv(sys.argv[1], sep=" ", header=None, names=cols)
df["good"] = (df.pop("credit") == 1).astype(int)            # 1 = good credit
df["sex"] = df["status_sex"].map({"A91": "male", "A92": "female", "A93": "male",
                                  "A94": "male", "A95": "female"})
df["age_band"] = pd.cut(df["age"], [0, 25, 200], labels=["<=25", ">25"]).astype(str)
train, holdout = train_test_split(df, test_size=0.4, random_state=0, stratify=df["good"])
train.to_parquet("train.parquet")
holdout.to_parquet("holdout.parquet")


def fit(features, model, encoder):
    cat = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
    num = [c for c in features if c not in cat]
    steps = make_column_transformer((encoder, cat), (StandardScaler(), num))
    return make_pipeline(steps, model).fit(train[features], train["good"])


v1 = [c for c in cols if c != "credit"]
v2 = [c for c in v1 if c != "status_sex"]               # 1.1 drops the sex proxy
joblib.dump(fit(v1, HistGradientBoostingClassifier(max_iter=60, random_state=0),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
            "model-1.0.joblib")
joblib.dump(fit(v2, LogisticRegression(max_iter=2000),
                OneHotEncoder(handle_unknown="ignore")), "model-1.1.joblib")
open("features-1.0.txt", "w").write(",".join(v1))
open("features-1.1.txt", "w").write(",".join(v2))
EOF

if [ -n "${ASSAY_DATABASE_URL:-}" ]; then
  say "A shared PostgreSQL database is brought to the current schema once"
  run assay db upgrade
fi

say "The first user of a store becomes its admin; the admin adds the team"
run assay user add ada --display-name "Ada Admin"
run assay user add dana -r data_scientist --display-name "Dana Developer" --as ada
run assay user add dev -r data_scientist --display-name "Dev Peer" --as ada
run assay user add vic -r validator --as ada
run assay user add val -r validator --as ada
run assay user add rita -r risk_officer --as ada
run assay user add carl -r compliance --as ada
run assay user add sam -r security --as ada
run assay user add bo -r business_owner --as ada
run assay user list

say "Dana registers the model and its first version with its lineage"
export ASSAY_USER=dana
run assay model register credit-pd --owner bo --decision-type human_in_the_loop \
  --criticality high --business-unit "Retail credit" \
  --purpose "Probability of default of retail loan applicants" \
  --stakeholders "applicants, credit officers"
run assay model version credit-pd 1.0 --artifact model-1.0.joblib \
  --training-data train.parquet --evaluation-data holdout.parquet --code-revision 9f1c2e0

say "Dana certifies version 1.0 against credit-lending, tier high: the policy blocks it"
expect 1 assay certify --policy credit-lending --tier high --model model-1.0.joblib \
  --train train.parquet --data holdout.parquet --target good --positive-label 1 \
  --sensitive sex,age_band --features "$(cat features-1.0.txt)" --out run-1.0 --no-progress
run assay model record credit-pd 1.0 --results run-1.0

say "Rita, risk officer, assesses the risk with the impact questionnaire"
cat >assessment.yaml <<'EOF'
policy: credit-lending
notes: Assessment before the first deployment.
categories:
  data_quality: {likelihood: 2, impact: 3, rationale: Bureau data is validated at intake.}
  model_performance:
    likelihood: 3
    impact: 4
    rationale: Calibration error above the policy limit on the holdout.
    controls: [{name: Quarterly back-test, strength: moderate}]
  fairness_bias:
    likelihood: 4
    impact: 5
    rationale: Young applicants are approved less often; status_sex encodes sex.
    controls: [{name: Manual review of every decline, effectiveness: 0.5}]
  security: {likelihood: 2, impact: 3, rationale: Internal batch scoring service only.}
  privacy: {likelihood: 2, impact: 4, rationale: Personal and financial data.}
  operational_reliability: {likelihood: 2, impact: 3, rationale: Fallback scorecard in place.}
  regulatory_exposure: {likelihood: 3, impact: 5, rationale: Credit scoring is a listed high-risk use.}
EOF
cat >answers.yaml <<'EOF'
decision_automation: human_on_exception
rights_and_freedoms: moderate
economic_interests: high
health_and_safety: none
reversibility: with_effort
duration: years
people_affected: under_100k
vulnerable_groups: [low_income, protected_characteristics]
personal_data: financial
explainability: approximately
novelty: established
regulated_domain: listed_high_risk
human_review: on_request
recourse: in_place
bias_testing: before_release
data_governance: in_place
independent_validation: in_place
stakeholder_consultation: internal
EOF
expect 2 assay risk assess credit-pd 1.0 --from-file assessment.yaml \
  --questionnaire-answers answers.yaml          # dana is no risk officer: refused
run assay risk assess credit-pd 1.0 --from-file assessment.yaml \
  --questionnaire-answers answers.yaml --as rita

say "Dana submits version 1.0; nobody signs their own submission"
run assay submit credit-pd 1.0
run assay review credit-pd 1.0
expect 2 assay approve credit-pd 1.0 --stage requirements_scope
echo "Scope: ranks applications for manual review; not for collections." >scope.md
echo "Lineage: bureau extract 2026-09, consent basis recorded." >data.md
echo "Conceptual soundness: features, monotonic constraints, challenger." >development.md
echo "Monitoring: weekly PSI, quarterly fairness re-run." >monitoring.md

say "Business owner and risk officer sign requirements; validator and compliance sign data"
run assay approve credit-pd 1.0 --stage requirements_scope --attach scope.md --as bo
run assay approve credit-pd 1.0 --stage requirements_scope --as rita
expect 2 assay approve credit-pd 1.0 --stage development --as dev   # not the current stage
run assay approve credit-pd 1.0 --stage data_quality_governance --attach data.md --as vic
run assay approve credit-pd 1.0 --stage data_quality_governance --as carl
run assay approve credit-pd 1.0 --stage development --attach development.md --as dev

say "Validation is refused while the certification is blocked"
expect 2 assay approve credit-pd 1.0 --stage validation_performance --as vic

say "Only a risk officer may waive it, with a justification and an expiry"
expires=$("$py" -c 'import datetime as d; print(d.date.today() + d.timedelta(days=45))')
expect 2 assay waive credit-pd 1.0 --certification --justification "ship it" \
  --expires "$expires" --as dana
run assay waive credit-pd 1.0 --certification --as rita --expires "$expires" \
  --justification "Calibration and proxy fixed in 1.1; every decline reviewed by a credit officer meanwhile"

say "Two independent validators, then risk, regulatory review and deployment approval"
run assay approve credit-pd 1.0 --stage validation_performance --attach run-1.0/report.html --as vic
run assay approve credit-pd 1.0 --stage validation_performance --as val
run assay approve credit-pd 1.0 --stage fairness_risk --as rita
run assay approve credit-pd 1.0 --stage regulatory_review --as carl
run assay approve credit-pd 1.0 --stage regulatory_review --as sam
run assay approve credit-pd 1.0 --stage deployment_approval --as rita \
  --condition "re-run the fairness checks every quarter"
run assay approve credit-pd 1.0 --stage deployment_approval --as bo
run assay approve credit-pd 1.0 --stage deployment_approval --as carl
run assay approve credit-pd 1.0 --stage post_deployment_monitoring --attach monitoring.md --as vic
run assay approve credit-pd 1.0 --stage post_deployment_monitoring --as rita
run assay gate credit-pd 1.0

say "Findings of the certification go to the risk register, mitigations to the backlog"
run assay risk register add credit-pd --from-certification 1.0 --as rita
run assay risk mitigate 1 --title "Drop status_sex from the features" \
  --success-criteria "integrity.proxy_features passes" --owner dana \
  --due "$expires" --cost 5000 --days 10 --as rita
run assay risk backlog

say "Version 1.1 is registered: it needs its own certification and approval"
run assay model version credit-pd 1.1 --artifact model-1.1.joblib \
  --training-data train.parquet --evaluation-data holdout.parquet --code-revision a1b2c3d
run assay status credit-pd
expect 1 assay gate credit-pd 1.1
expect 2 assay model record credit-pd 1.1 --results run-1.0   # another model's run
code=0
assay certify --policy credit-lending --tier high --model model-1.1.joblib \
  --train train.parquet --data holdout.parquet --target good --positive-label 1 \
  --sensitive sex,age_band --features "$(cat features-1.1.txt)" --out run-1.1 \
  --no-progress --format json >/dev/null || code=$?
[ "$code" -le 1 ] || { echo "walkthrough: certifying 1.1 exited $code" >&2; exit 1; }
run assay model record credit-pd 1.1 --results run-1.1
run assay submit credit-pd 1.1

say "The inventory, and the audit trail verified inside assay and without it"
run assay inventory
run assay inventory --format csv
run assay audit verify
run assay audit export --out trail.jsonl --as carl   # auditors, compliance, risk, admin
"$py" - "$repo/docs/audit.md" >verify_trail.py <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
block = text.split("<!-- verify-snippet:start -->")[1].split("<!-- verify-snippet:end -->")[0]
print(re.search(r"```python\n(.*?)```", block, re.S).group(1))
EOF
run "$py" verify_trail.py trail.jsonl

printf '\nwalkthrough: all %d steps ended as expected\n' "$step"
