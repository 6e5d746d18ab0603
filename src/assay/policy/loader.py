"""Load a policy file into a :class:`Policy` whose tiers hold runnable check specs.

Every problem with a policy is reported as one :class:`PolicyError` that
names the file, the line (and column), the field path and what was expected::

    credit.yaml:14:19: tiers.high.checks[2].severity: expected 'block' or 'warn', got 'blocker'

Besides the schema (``assay.policy.schema``) the loader checks what pydantic
cannot: check ids exist in the check registry, parameters are ones the check
accepts, ``extends`` names a tier and has no cycle, a tier names each check
entry once.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assay.checks.base import REGISTRY, CheckDef, CheckSpec, JudgeOn, Severity, Threshold
from assay.errors import PolicyError, did_you_mean
from assay.policy._yaml import Path_, Position, format_path, load_yaml_mapping, position_of
from assay.policy.incidents import incident_rules
from assay.policy.monitoring import Monitoring, build_monitoring
from assay.policy.release import DEFAULT_PLAN, ReleasePlan, build_release
from assay.policy.schema import (
    RESERVED_SECTIONS,
    CheckModel,
    PolicyModel,
    Settings,
    TierModel,
    field_names,
    fields_of,
)

#: Folder of the policies shipped with assay (``load_policy("default")``).
SHIPPED_DIR = Path(__file__).resolve().parent / "policies"


@dataclass
class Tier:
    """One tier of a policy with its checks resolved (``extends`` applied)."""

    name: str
    description: str
    checks: list[CheckSpec]
    review_interval_days: int | None = None
    extends: str | None = None
    #: the tier's monitoring plan (its own, else the one of the tier it extends)
    monitoring: Monitoring | None = None
    #: the tier's release plan (its own, else the one of the tier it extends)
    release: ReleasePlan = DEFAULT_PLAN

    def check(self, key: str) -> CheckSpec:
        """The check entry named ``key`` (its ``name`` or, without one, its ``id``)."""
        for spec in self.checks:
            if (spec.name or spec.id) == key:
                return spec
        raise PolicyError(f"tier '{self.name}' has no check '{key}'")


@dataclass
class Policy:
    """A validated policy.

    ``extra_sections`` keeps the reserved top-level sections (``workflow``,
    ``risk``, ``monitoring``) raw, for the modules that own them; use
    :meth:`line_of` to point their errors at the file's lines.
    """

    name: str
    version: str
    description: str
    settings: Settings
    tiers: dict[str, Tier]
    sha256: str  # hex digest of the file bytes
    path: Path | None = None
    source: str = "<policy>"
    extra_sections: dict[str, Any] = field(default_factory=dict)
    positions: dict[Path_, Position] = field(default_factory=dict, repr=False)

    def tier(self, name: str) -> Tier:
        """The tier called ``name``; an unknown tier is a :class:`PolicyError`."""
        try:
            return self.tiers[name]
        except KeyError:
            raise PolicyError(
                f"{self.source}: unknown tier '{name}': expected one of "
                + ", ".join(f"'{t}'" for t in self.tiers)
                + _did_you_mean_tier(name, list(self.tiers), self.positions)
            ) from None

    def line_of(self, *path: str | int) -> int | None:
        """The 1-based line of ``path`` (or of its nearest ancestor) in the file."""
        pos = position_of(tuple(path), self.positions)
        return pos[0] if pos else None

    def where(self, *path: str | int) -> str:
        """``file.yaml:LINE`` for messages about ``path``."""
        line = self.line_of(*path)
        return f"{self.source}:{line}" if line else self.source

    def to_dict(self, tier: str | None = None) -> dict[str, Any]:
        """The ``policy`` block of ``results.json``."""
        return {
            "name": self.name,
            "version": self.version,
            "tier": tier,
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
        }


# --------------------------------------------------------------------------- loading


def shipped_policies() -> list[str]:
    """Names of the policies shipped with assay (``default``, ``credit-lending``...)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def resolve_policy_path(path_or_name: str | Path) -> Path:
    """A file path as given, or the shipped policy of that name."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    text = str(path_or_name)
    if "/" not in text and "\\" not in text:
        shipped = SHIPPED_DIR / (text if text.endswith((".yaml", ".yml")) else f"{text}.yaml")
        if shipped.is_file():
            return shipped
    names = shipped_policies()
    if p.exists():
        raise PolicyError(f"policy '{text}': expected a YAML file, got a directory")
    raise PolicyError(
        f"policy '{text}': no such file, and not a shipped policy (expected a path or one of "
        + ", ".join(f"'{n}'" for n in names) + ")" + _did_you_mean(text, names))


def load_policy(path_or_name: str | Path | Policy) -> Policy:
    """Load and validate a policy file, or a shipped policy by name.

    >>> policy = load_policy("credit-lending")
    >>> [c.id for c in policy.tier("high").checks][:2]   # doctest: +SKIP

    Raises :class:`PolicyError` (one line: file, line, field, what was expected).
    """
    if isinstance(path_or_name, Policy):
        return path_or_name
    path = resolve_policy_path(path_or_name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc.strerror or exc}") from None
    return parse_policy(raw, source=path.name, path=path.resolve())


def parse_policy(text: str | bytes, *, source: str = "<policy>",
                 path: Path | None = None) -> Policy:
    """Validate policy YAML given as text (for uploads); ``source`` names it in errors."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)  # what is digested
    data, positions = load_yaml_mapping(raw, source,
                                        "a mapping with 'name', 'version' and 'tiers'")
    data = {str(k): v for k, v in data.items()}
    extra = {k: data.pop(k) for k in list(data) if k in RESERVED_SECTIONS or k.startswith("x-")}
    try:
        model = PolicyModel.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, source, positions) from None
    tiers = _resolve_tiers(model, source, positions)
    policy = Policy(
        name=model.name,
        version=model.version,
        description=model.description,
        settings=model.settings,
        tiers=tiers,
        sha256=hashlib.sha256(raw).hexdigest(),
        path=path,
        source=source,
        extra_sections=extra,
        positions=positions,
    )
    incident_rules(policy)  # the incidents section is checked with the file's lines too
    return policy


# --------------------------------------------------------------------------- checks registry

_LOADED = False
#: check modules that could not be imported (a missing optional dependency), and why
IMPORT_ERRORS: dict[str, str] = {}


def load_check_modules() -> dict[str, CheckDef]:
    """Import every module of ``assay.checks`` so that all checks are registered.

    A module that fails to import (an optional dependency missing) does not
    stop the others; its checks are then unknown, and a policy naming them
    is refused with the import error in the message.
    """
    global _LOADED
    if not _LOADED:
        import assay.checks as pkg

        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name == "base" or info.name.startswith("_"):
                continue
            try:
                importlib.import_module(f"assay.checks.{info.name}")
            except ImportError as exc:
                IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"
        _LOADED = True
    return REGISTRY


# --------------------------------------------------------------------------- tiers


def _resolve_tiers(model: PolicyModel, source: str,
                   positions: dict[Path_, Position]) -> dict[str, Tier]:
    registry = load_check_modules()

    def where(*path: str | int) -> str:
        pos = position_of(tuple(path), positions)
        return f"{source}:{pos[0]}" if pos else source

    # every entry of every tier, validated against the registry
    for tname, tmodel in model.tiers.items():
        keys: dict[str, int] = {}
        for i, c in enumerate(tmodel.checks):
            _validate_check(c, ("tiers", tname, "checks", i), registry, where)
            if c.key in keys:
                raise PolicyError(
                    f"{where('tiers', tname, 'checks', i)}: tiers.{tname}.checks[{i}]: check "
                    f"'{c.key}' is already listed at checks[{keys[c.key]}]; give each entry of "
                    "the same check a distinct 'name'")
            keys[c.key] = i
        if tmodel.extends is not None and tmodel.extends not in model.tiers:
            others = [t for t in model.tiers if t != tname]
            used_at = position_of(("tiers", tname, "extends"), positions)
            raise PolicyError(
                f"{where('tiers', tname, 'extends')}: tiers.{tname}.extends: expected "
                + ("one of " + ", ".join(f"'{t}'" for t in others) if others
                   else "another tier of this policy")
                + f", got '{tmodel.extends}'"
                + _closest_tier(tmodel.extends, others, positions, used_at[0] if used_at else None))

    resolved: dict[str, list[tuple[CheckModel, tuple[str | int, ...]]]] = {}

    def resolve(tname: str, chain: tuple[str, ...]) -> list[tuple[CheckModel, tuple]]:
        if tname in resolved:
            return resolved[tname]
        if tname in chain:
            cycle = " -> ".join((*chain[chain.index(tname):], tname))
            first = chain[chain.index(tname)]
            raise PolicyError(f"{where('tiers', first, 'extends')}: tiers.{first}.extends: "
                              f"expected a tier that does not extend itself, got the cycle {cycle}")
        tmodel: TierModel = model.tiers[tname]
        entries: list[tuple[CheckModel, tuple]] = []
        if tmodel.extends is not None:
            entries = list(resolve(tmodel.extends, (*chain, tname)))
            known = {c.key for c, _ in entries}
            for j, key in enumerate(tmodel.drop):
                if key not in known:
                    raise PolicyError(
                        f"{where('tiers', tname, 'drop', j)}: tiers.{tname}.drop[{j}]: expected a "
                        f"check of tier '{tmodel.extends}', got '{key}'"
                        + _did_you_mean(key, sorted(known)))
            entries = [(c, p) for c, p in entries if c.key not in set(tmodel.drop)]
        elif tmodel.drop:
            raise PolicyError(f"{where('tiers', tname, 'drop')}: tiers.{tname}.drop: only a tier "
                              "that 'extends' another can drop checks")
        for i, c in enumerate(tmodel.checks):
            loc = ("tiers", tname, "checks", i)
            for k, (old, _) in enumerate(entries):
                if old.key == c.key:  # an override of the inherited entry, in place
                    entries[k] = (c, loc)
                    break
            else:
                entries.append((c, loc))
        resolved[tname] = entries
        return entries

    tiers: dict[str, Tier] = {}
    for tname, tmodel in model.tiers.items():
        entries = resolve(tname, ())
        review = tmodel.review_interval_days
        base = tmodel.extends
        while review is None and base is not None:
            review, base = model.tiers[base].review_interval_days, model.tiers[base].extends
        owner = tname
        while model.tiers[owner].monitoring is None and model.tiers[owner].extends is not None:
            owner = model.tiers[owner].extends  # type: ignore[assignment]
        plan = model.tiers[owner].monitoring
        rowner = tname
        while model.tiers[rowner].release is None and model.tiers[rowner].extends is not None:
            rowner = model.tiers[rowner].extends  # type: ignore[assignment]
        release = model.tiers[rowner].release
        tiers[tname] = Tier(
            name=tname,
            description=tmodel.description,
            checks=[_spec(c, where(*loc)) for c, loc in entries],
            review_interval_days=review,
            extends=tmodel.extends,
            monitoring=None if plan is None else build_monitoring(
                plan, ("tiers", owner, "monitoring"), where, _did_you_mean),
            release=DEFAULT_PLAN if release is None else build_release(
                release, ("tiers", rowner, "release"), where, _did_you_mean),
        )
    return tiers


def _validate_check(c: CheckModel, loc: tuple[str | int, ...], registry: dict[str, CheckDef],
                    where: Any) -> None:
    defn = registry.get(c.id)
    if defn is None:
        family = c.id.split(".", 1)[0]
        if family in IMPORT_ERRORS:
            raise PolicyError(
                f"{where(*loc, 'id')}: {format_path((*loc, 'id'))}: check '{c.id}' is not "
                f"available: assay.checks.{family} could not be imported "
                f"({IMPORT_ERRORS[family]})")
        raise PolicyError(f"{where(*loc, 'id')}: {format_path((*loc, 'id'))}: unknown check "
                          f"'{c.id}'" + _did_you_mean(c.id, list(registry)))
    for pname in c.params:
        if pname not in defn.params:
            accepted = ", ".join(f"'{p}'" for p in defn.params) or "none"
            raise PolicyError(
                f"{where(*loc, 'params', pname)}: {format_path((*loc, 'params', pname))}: "
                f"check '{c.id}' has no parameter '{pname}' (accepted: {accepted})"
                + _did_you_mean(str(pname), list(defn.params)))


def _spec(c: CheckModel, source: str) -> CheckSpec:
    return CheckSpec(
        id=c.id,
        threshold=Threshold(min=c.threshold.min, max=c.threshold.max) if c.threshold else None,
        severity=Severity(c.severity),
        judge_on=JudgeOn(c.judge),
        params=dict(c.params),
        name=c.name,
        rationale=c.rationale,
        regulations=list(c.regulations),
        source=source,
    )


# --------------------------------------------------------------------------- messages


def _did_you_mean(word: str, choices: list[str]) -> str:
    return did_you_mean(word, choices)


def _did_you_mean_tier(name: str, tiers: list[str], positions: dict[Path_, Position]) -> str:
    """``; did you mean 'high' (defined at line 12)?`` for a tier name asked for."""
    close = difflib.get_close_matches(str(name), [str(t) for t in tiers], n=1, cutoff=0.6)
    if not close:
        return ""
    pos = position_of(("tiers", close[0]), positions)
    return f"; did you mean '{close[0]}'" + (f" (defined at line {pos[0]})" if pos else "") + "?"


def _closest_tier(name: str, tiers: list[str], positions: dict[Path_, Position],
                  used_at: int | None) -> str:
    """A hint for a tier name, used in the policy, that no tier has.

    Either the use or the definition may be the misspelt one (a tier renamed
    in its definition but not where it is used): point at both lines rather
    than suggest the definition's spelling, which may be the typo.
    """
    close = difflib.get_close_matches(str(name), [str(t) for t in tiers], n=1, cutoff=0.6)
    if not close:
        pos = position_of(("tiers",), positions)
        return (f"; the tiers are defined under 'tiers' at line {pos[0]}: if the tier was "
                "renamed, use its new name here") if pos and tiers else ""
    pos = position_of(("tiers", close[0]), positions)
    lines = f" at lines {pos[0]} and {used_at}" if pos and used_at else " in both places"
    defined = f" defined at line {pos[0]}" if pos else ""
    return (f"; the closest is tier '{close[0]}'{defined}: if one of the two names is misspelt "
            f"or the tier was renamed, use the same name{lines}")


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    given = err.get("input")
    loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = fields_of(loc) or field_names()
        return f"unknown field '{loc[-1]}'" + _did_you_mean(str(loc[-1]), sorted(allowed))
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {given!r}"
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("too_short", "string_too_short"):
        if loc == ("tiers",):
            return "expected at least one tier"
        if kind == "string_too_short":
            return "expected a non-empty text"
        return f"expected at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if "[key]" in loc:
        return f"expected names (text) as keys, got {given!r}"
    msg = str(err["msg"])
    msg = re.sub(r" or instance of \w+", "", msg).replace("a valid string", "text")
    if msg.startswith("Input should be "):
        msg = "expected " + msg.removeprefix("Input should be ")
    elif msg.startswith("Input "):
        msg = "expected input that " + msg.removeprefix("Input ")
    else:
        msg = msg[0].lower() + msg[1:]
    return msg + f", got {_kind_of(given)}"


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _from_validation(exc: ValidationError, source: str,
                     positions: dict[Path_, Position]) -> PolicyError:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"]
                    if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]")))
        pos = position_of(loc, positions)
        where = f"{source}:{pos[0]}:{pos[1]}" if pos else source
        problems.append((pos or (0, 0), f"{where}: {format_path(loc)}: {_describe(err)}"))
    problems.sort(key=lambda p: p[0])
    first = problems[0][1]
    more = len(problems) - 1
    if more:
        first += f" (and {more} more problem{'s' if more > 1 else ''})"
    return PolicyError(first, details={"problems": [m for _, m in problems]})
