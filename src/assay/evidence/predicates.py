"""The statements assay signs, built from its records (see ``docs/attestations.md``).

- certification (:data:`~assay.evidence.attest.CERTIFICATION`): subject the model
  artefact; predicate the verdict, the policy, the data and the results digest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from assay.errors import InputError
from assay.evidence import attest
from assay.evidence.artifacts import digest_bytes


def _sha(value: Any) -> str | None:
    return attest.subject_digest(value) if value else None


def certification_statement(results: dict[str, Any], results_digest: str) -> dict[str, Any]:
    """The certification statement of a results.json document whose bytes hash to
    ``results_digest``."""
    model = results.get("model")
    if not isinstance(model, dict) or not model.get("sha256"):
        raise InputError("results.json certifies predictions, not a model artefact: there is "
                         "no model digest to attest (certify with --model FILE)")
    policy = results.get("policy") or {}
    data = results.get("data") or {}

    def dataset(d: Any) -> dict[str, Any] | None:
        if not isinstance(d, dict):
            return None
        return {"name": d.get("name"), "sha256": _sha(d.get("sha256")), "rows": d.get("rows")}

    name = Path(str(model.get("path") or "model")).name
    predicate = {
        "verdict": results.get("status"),
        "policy": {"name": policy.get("name"), "version": policy.get("version"),
                   "tier": policy.get("tier"), "sha256": _sha(policy.get("sha256"))},
        "data": {"evaluation": dataset(data.get("evaluation")),
                 "reference": dataset(data.get("reference"))},
        "results": {"sha256": attest.subject_digest(results_digest)},
        "summary": results.get("summary"),
        "certifiedAt": results.get("created_at"),
        "assayVersion": results.get("assay_version"),
    }
    return attest.statement([(name, model["sha256"])], attest.CERTIFICATION, predicate)


def read_results(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """A results.json file as (document, bytes), with errors that name the file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the results file ({exc.strerror or exc})") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: expected a results.json document ({exc})") from None
    if not isinstance(doc, dict) or "status" not in doc:
        raise InputError(f"{p}: expected a results.json document written by assay certify")
    return doc, raw


def sign_results(results_path: str | os.PathLike[str], key: attest.PrivateKey
                 ) -> dict[str, Any]:
    """The signed certification envelope of the results.json file at ``results_path``."""
    doc, raw = read_results(results_path)
    return attest.sign_statement(certification_statement(doc, digest_bytes(raw)), key)


def write_envelope(envelope: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Write ``envelope`` as JSON to ``out`` (a temporary file renamed into place)."""
    path = Path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(envelope, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the envelope ({exc.strerror or exc})") from None
    return path
