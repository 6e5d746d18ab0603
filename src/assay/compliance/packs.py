"""Compliance mapping packs: versioned YAML that maps each clause of a framework to
the evidence that answers it.

A pack is read with the policy machinery (:mod:`assay.policy._yaml`), so every
error names the file, the line and the field::

    my-pack.yaml:14: clauses[2].evidence[0]: unknown evidence kind 'chek': expected
    one of 'check', 'check_present', ... (did you mean 'check'?)

Format::

    framework: eu-ai-act            # the name --framework takes
    title: EU AI Act
    version: "2024-1689.1"          # the pack's own version
    source: Regulation (EU) 2024/1689
    clauses:
      - id: art-10
        title: Data and data governance
        citation: Art. 10
        evidence:                   # a list: every item is needed (an implicit ``all``)
          - check: integrity.       # a check id, or a prefix ending in '.'
          - any:
              - stage: data_quality_governance
              - document: data_quality_governance/*
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import PolicyError, did_you_mean
from assay.policy._yaml import Path_, Position, format_path, load_yaml_mapping, position_of

#: Folder of the packs shipped with assay.
PACKS_DIR = Path(__file__).resolve().parent / "packs"

#: Evidence kinds, with whether they take an argument and what it is.
EVIDENCE_KINDS: dict[str, str | None] = {
    "check": "a check id or a prefix ending in '.' (passed in the latest certification)",
    "check_present": "a check id or a prefix ending in '.' (run in the latest certification)",
    "stage": "a workflow stage id (signed off)",
    "document": "STAGE/NAME of a workflow document (NAME may be '*' or a glob)",
    "monitoring_rule": "a monitoring rule id of the version's policy tier",
    "risk_assessment": None,
    "risk_register": None,
    "monitoring_plan": None,
    "incidents_process": None,
    "model_card": None,
    "attestation": None,
    "impact_assessment": None,
    "reproduction": None,
}
COMBINATORS = ("all", "any")


class PackError(PolicyError):
    """A compliance pack that cannot be read (file, line, field, what was expected)."""


@dataclass(frozen=True)
class Requirement:
    """A node of a clause's evidence: a leaf (``kind``, ``arg``) or a combinator
    (``kind`` is ``all`` or ``any`` and ``items`` holds its children)."""

    kind: str
    arg: str | None = None
    items: tuple[Requirement, ...] = ()

    @property
    def is_leaf(self) -> bool:
        return self.kind not in COMBINATORS

    def label(self) -> str:
        if self.is_leaf:
            return f"{self.kind}: {self.arg}" if self.arg else self.kind
        return f"{self.kind}(" + ", ".join(i.label() for i in self.items) + ")"

    def to_dict(self) -> Any:
        if self.is_leaf:
            return {self.kind: self.arg}
        return {self.kind: [i.to_dict() for i in self.items]}


@dataclass(frozen=True)
class Clause:
    id: str
    title: str
    citation: str
    evidence: Requirement
    notes: str = ""


@dataclass
class Pack:
    framework: str
    title: str
    version: str
    source: str
    description: str
    clauses: list[Clause]
    sha256: str
    path: Path | None = None
    origin: str = "<pack>"
    positions: dict[Path_, Position] = field(default_factory=dict, repr=False)

    def clause(self, clause_id: str) -> Clause:
        for c in self.clauses:
            if c.id == clause_id:
                return c
        raise PackError(f"{self.origin}: pack '{self.framework}' has no clause '{clause_id}'"
                        + did_you_mean(clause_id, [c.id for c in self.clauses]))

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "title": self.title, "version": self.version,
                "source": self.source, "sha256": self.sha256,
                "file": self.path.name if self.path else self.origin}


# --------------------------------------------------------------------------- loading


def shipped_packs() -> list[str]:
    """Frameworks shipped with assay (``eu-ai-act``, ``nist-ai-rmf-1.0`` ...)."""
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def load_pack(name_or_path: str | Path) -> Pack:
    """A shipped pack by framework name, or a pack file by path; validated."""
    p = Path(name_or_path)
    if not p.is_file():
        text = str(name_or_path)
        shipped = PACKS_DIR / f"{text}.yaml"
        if "/" in text or not shipped.is_file():
            names = shipped_packs()
            raise PackError(
                f"framework '{text}': no such file, and not a shipped pack (expected a path "
                "or one of " + ", ".join(f"'{n}'" for n in names) + ")"
                + did_you_mean(text, names))
        p = shipped
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PackError(f"{p}: cannot read the pack: {exc.strerror or exc}") from None
    return parse_pack(raw, source=p.name, path=p.resolve())


def parse_pack(text: str | bytes, *, source: str = "<pack>", path: Path | None = None) -> Pack:
    """Validate a pack given as YAML text; errors name ``source`` and the line."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)  # what is digested
    try:
        data, positions = load_yaml_mapping(
            raw, source, "a mapping with 'framework', 'title', 'version' and 'clauses'")
    except PackError:
        raise
    except PolicyError as exc:
        raise PackError(str(exc)) from None
    v = _Validator(source, positions)
    v.keys(data, (), required=("framework", "title", "version", "clauses"),
           optional=("source", "description"))
    clauses_raw = data["clauses"]
    if not isinstance(clauses_raw, list) or not clauses_raw:
        v.fail(("clauses",), "expected a non-empty list of clauses")
    clauses: list[Clause] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(clauses_raw):
        where: Path_ = ("clauses", i)
        if not isinstance(c, dict):
            v.fail(where, f"expected a mapping with id, title, citation and evidence, got "
                          f"{_kind(c)}")
        v.keys(c, where, required=("id", "title", "citation", "evidence"), optional=("notes",))
        cid = v.text(c, (*where, "id"))
        if cid in seen:
            v.fail((*where, "id"), f"duplicate clause id '{cid}' (already clauses[{seen[cid]}])")
        seen[cid] = i
        clauses.append(Clause(id=cid, title=v.text(c, (*where, "title")),
                              citation=v.text(c, (*where, "citation")),
                              evidence=v.requirement(c["evidence"], (*where, "evidence")),
                              notes=str(c.get("notes") or "")))
    return Pack(framework=v.text(data, ("framework",)), title=v.text(data, ("title",)),
                version=v.text(data, ("version",)), source=str(data.get("source") or ""),
                description=str(data.get("description") or ""), clauses=clauses,
                sha256=hashlib.sha256(raw).hexdigest(), path=path, origin=source,
                positions=positions)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"'{value}'"}.get(type(value),
                                                                    f"{value!r}")


class _Validator:
    def __init__(self, source: str, positions: dict[Path_, Position]) -> None:
        self.source = source
        self.positions = positions

    def fail(self, path: Path_, message: str) -> None:
        pos = position_of(path, self.positions)
        where = f"{self.source}:{pos[0]}" if pos else self.source
        raise PackError(f"{where}: {format_path(path)}: {message}")

    def keys(self, mapping: dict[Any, Any], path: Path_, *, required: tuple[str, ...],
             optional: tuple[str, ...]) -> None:
        allowed = required + optional
        for k in mapping:
            if str(k) not in allowed:
                self.fail((*path, str(k)), f"unknown field '{k}': expected one of "
                          + ", ".join(allowed) + did_you_mean(str(k), list(allowed)))
        for k in required:
            if k not in mapping:
                self.fail(path, f"missing field '{k}'")

    def text(self, mapping: dict[Any, Any], path: Path_) -> str:
        value = mapping[path[-1]]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) \
                or not str(value).strip():
            self.fail(path, f"expected a non-empty text, got {_kind(value)}")
        return str(value).strip()

    def requirement(self, value: Any, path: Path_) -> Requirement:
        if isinstance(value, list):
            return self._combinator("all", value, path)
        if isinstance(value, str):  # a bare kind without argument: "risk_assessment"
            return self._leaf(value, None, path)
        if not isinstance(value, dict) or len(value) != 1:
            self.fail(path, "expected one evidence requirement ({kind: argument}, or all:/any: "
                      f"with a list), got {_kind(value)}")
        (kind, arg), = value.items()
        kind = str(kind)
        if kind in COMBINATORS:
            return self._combinator(kind, arg, (*path, kind))
        return self._leaf(kind, arg, (*path, kind))

    def _combinator(self, kind: str, items: Any, path: Path_) -> Requirement:
        if not isinstance(items, list) or not items:
            self.fail(path, f"{kind}: expected a non-empty list of requirements, got "
                            f"{_kind(items)}")
        return Requirement(kind, None, tuple(self.requirement(x, (*path, i))
                                             for i, x in enumerate(items)))

    def _leaf(self, kind: str, arg: Any, path: Path_) -> Requirement:
        if kind not in EVIDENCE_KINDS:
            names = list(EVIDENCE_KINDS) + list(COMBINATORS)
            self.fail(path, f"unknown evidence kind '{kind}': expected one of "
                      + ", ".join(f"'{n}'" for n in names) + did_you_mean(kind, names))
        wants = EVIDENCE_KINDS[kind]
        if wants is None:
            if arg not in (None, True, ""):
                self.fail(path, f"'{kind}' takes no argument, got {_kind(arg)}")
            return Requirement(kind)
        if not isinstance(arg, str) or not arg.strip():
            self.fail(path, f"'{kind}' expects {wants}, got {_kind(arg)}")
        arg = arg.strip()
        if kind == "document" and ("/" not in arg or arg.startswith("/") or arg.endswith("/")):
            self.fail(path, f"'document' expects {wants}, got '{arg}'")
        return Requirement(kind, arg)
