#!/usr/bin/env bash
# Certify a model in a CI pipeline and leave the evidence for the pipeline to upload.
#
# Called by examples/ci/github-actions.yml and examples/ci/gitlab-ci.yml, so the
# logic lives here once (docs/ci.md). Configured by environment variables:
#
#   ASSAY_MODEL       model file (joblib/pickle/skops) or models:/NAME/VERSION  (required)
#   ASSAY_DATA        evaluation data, Parquet or CSV                          (required)
#   ASSAY_TARGET      target column                                            (required)
#   ASSAY_POLICY      policy file or shipped policy name         (default: default)
#   ASSAY_TIER        tier of the policy                         (default: high)
#   ASSAY_SENSITIVE   protected attributes, comma separated      (optional)
#   ASSAY_TRAIN       reference (training) data for drift checks (optional)
#   ASSAY_OUT         evidence folder                            (default: assay-evidence)
#   ASSAY_SIGN_KEY    Ed25519 private key file (PEM): also write results.intoto.json
#   ASSAY_SIGN_KEY_PEM the key's PEM text (a CI secret), used when ASSAY_SIGN_KEY is unset
#   ASSAY_GATE        MODEL@VERSION: after certifying, also ask the deployment gate of
#                     the store at ASSAY_DATABASE_URL (assay gate; needs ASSAY_USER)
#   ASSAY_EXTRA_ARGS  more options for assay certify, split on spaces
#   MLFLOW_TRACKING_URI  for ASSAY_MODEL=models:/...; the verdict and evidence are then
#                     written back to the MLflow version too
#
# Exit code: assay certify's (0 passed, 1 blocked by the policy, 2 bad input), else the
# gate's (1 when it refuses). The evidence (results.json, report.html and, when signed,
# results.intoto.json) is written whatever the verdict, so a failed pipeline still
# uploads what it failed on.
set -uo pipefail

: "${ASSAY_MODEL:?set ASSAY_MODEL to a model file or models:/NAME/VERSION}"
: "${ASSAY_DATA:?set ASSAY_DATA to the evaluation data (Parquet or CSV)}"
: "${ASSAY_TARGET:?set ASSAY_TARGET to the target column}"
policy="${ASSAY_POLICY:-default}"
tier="${ASSAY_TIER:-high}"
out="${ASSAY_OUT:-assay-evidence}"
assay="${ASSAY_BIN:-assay}"

args=(certify --policy "$policy" --tier "$tier" --data "$ASSAY_DATA"
      --target "$ASSAY_TARGET" --model "$ASSAY_MODEL" --out "$out" --no-progress)
[ -n "${ASSAY_SENSITIVE:-}" ] && args+=(--sensitive "$ASSAY_SENSITIVE")
[ -n "${ASSAY_TRAIN:-}" ] && args+=(--train "$ASSAY_TRAIN")

key_file=""
if [ -n "${ASSAY_SIGN_KEY:-}" ]; then
  args+=(--sign-key "$ASSAY_SIGN_KEY")
elif [ -n "${ASSAY_SIGN_KEY_PEM:-}" ]; then
  key_file="$(mktemp)"
  chmod 600 "$key_file"
  printf '%s\n' "$ASSAY_SIGN_KEY_PEM" > "$key_file"
  args+=(--sign-key "$key_file")
fi
cleanup() { [ -n "$key_file" ] && rm -f "$key_file"; }
trap cleanup EXIT

if [ -n "${ASSAY_EXTRA_ARGS:-}" ]; then
  read -r -a extra <<< "$ASSAY_EXTRA_ARGS"
  args+=("${extra[@]}")
fi

mkdir -p "$out"
"$assay" "${args[@]}"
status=$?

verdict="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' \
           "$out/results.json" 2>/dev/null || echo "none")"
echo "assay: certification exit code $status, verdict $verdict, evidence in $out/"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### assay certification\n\nverdict: **%s** (exit code %s), policy %s tier %s\n' \
    "$verdict" "$status" "$policy" "$tier" >> "$GITHUB_STEP_SUMMARY"
fi

if [ "$status" -eq 0 ] && [ -n "${ASSAY_GATE:-}" ]; then
  "$assay" gate "${ASSAY_GATE%@*}" "${ASSAY_GATE#*@}" --format json > "$out/gate.json"
  status=$?
  echo "assay: deployment gate of $ASSAY_GATE exit code $status (decision in $out/gate.json)"
fi
exit "$status"
