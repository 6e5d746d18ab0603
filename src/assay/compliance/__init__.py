"""Compliance: mapping packs (framework clauses -> evidence), coverage of a model
version, technical documentation packs and the CycloneDX ML-BOM.

Faces call these; the evidence providers and pack sections are registries
that modules bringing new evidence extend (:func:`register_provider`,
:func:`register_section`).
"""

from assay.compliance import providers  # noqa: F401  (registers the other modules' providers)
from assay.compliance.bom import BomError, build_bom, validate_bom
from assay.compliance.coverage import ClauseCoverage, Coverage, coverage, render_coverage_html
from assay.compliance.docpack import (
    PackResult,
    Section,
    audit_excerpt,
    build_pack_files,
    pack_statement,
    pack_zip,
    register_section,
    write_pack,
)
from assay.compliance.evidence import EvidenceContext, Finding, register_provider
from assay.compliance.packs import (
    EVIDENCE_KINDS,
    PACKS_DIR,
    Clause,
    Pack,
    PackError,
    Requirement,
    load_pack,
    parse_pack,
    shipped_packs,
)

__all__ = [
    "EVIDENCE_KINDS",
    "PACKS_DIR",
    "BomError",
    "Clause",
    "ClauseCoverage",
    "Coverage",
    "EvidenceContext",
    "Finding",
    "Pack",
    "PackError",
    "PackResult",
    "Requirement",
    "Section",
    "audit_excerpt",
    "build_bom",
    "build_pack_files",
    "coverage",
    "load_pack",
    "pack_statement",
    "pack_zip",
    "parse_pack",
    "register_provider",
    "register_section",
    "render_coverage_html",
    "shipped_packs",
    "validate_bom",
    "write_pack",
]
