"""The policies a store knows: those shipped with assay and those registered in it.

A certification is recorded only under a policy the store knows, identified
by name, version and SHA-256 together: the checks, thresholds and severities
of a ``results.json`` are then compared with the policy itself, not with the
copy the results carry. A custom policy file is registered once
(``assay policy register FILE``, ``POST /api/policies``) by an admin or a
validator; its bytes go to the evidence store (content addressed) and an
audit event names who registered it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.config import Settings, load_settings
from assay.errors import ConflictError, InputError
from assay.policy import SHIPPED_DIR, Policy, parse_policy
from assay.registry import roles as R
from assay.registry.tables import RegisteredPolicy, User
from assay.registry.users import require_role
from assay.store.audit import append_event
from assay.store.db import utcnow

__all__ = [
    "POLICY_REGISTRARS",
    "RegisteredPolicy",
    "known_policy",
    "list_registered_policies",
    "policy_named",
    "register_policy",
    "settings_of",
    "shipped_policy_records",
]

#: Roles that may register a policy file in the store.
POLICY_REGISTRARS: tuple[str, ...] = (R.ADMIN, R.VALIDATOR)

#: Largest policy file accepted for registration.
MAX_POLICY_BYTES = 1024 * 1024

REGISTER_HINT = ("register the policy file first: `assay policy register FILE` "
                 "or POST /api/policies (admin or validator)")


def settings_of(session: Session, settings: Settings | None = None) -> Settings:
    """The settings of the store this session belongs to (for the evidence store)."""
    if settings is not None:
        return settings
    found = session.info.get("settings")
    return found if isinstance(found, Settings) else load_settings()


def _shipped() -> dict[str, tuple[bytes, str]]:
    """Digest (``sha256:<hex>``) -> (bytes, file name) of every shipped policy file."""
    out: dict[str, tuple[bytes, str]] = {}
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        raw = path.read_bytes()
        out["sha256:" + hashlib.sha256(raw).hexdigest()] = (raw, path.name)
    return out


def register_policy(session: Session, actor: User, content: bytes, *, source: str = "policy.yaml",
                    settings: Settings | None = None) -> RegisteredPolicy:
    """Register a policy file (admins and validators); its digest identifies it from now on.

    The file is validated like any policy (a :class:`PolicyError` names the
    line). Registering the same bytes again returns the existing record;
    another file with the name and version of a registered or shipped
    policy is refused: a changed policy needs a new version.
    """
    from assay.evidence import store_bytes

    require_role(actor, *POLICY_REGISTRARS, action="register policies")
    if not isinstance(content, bytes | bytearray) or not content:
        raise InputError(f"{source}: expected the policy file's content, got an empty file")
    if len(content) > MAX_POLICY_BYTES:
        raise InputError(f"{source}: larger than {MAX_POLICY_BYTES // 1024} KiB; a policy file "
                         "is expected to be small")
    content = bytes(content)
    name = (source or "policy.yaml").replace("\\", "/").rsplit("/", 1)[-1][:300]
    policy = parse_policy(content, source=name)
    digest = "sha256:" + policy.sha256
    existing = session.scalars(select(RegisteredPolicy)
                               .where(RegisteredPolicy.digest == digest)).first()
    if existing is not None:
        return existing
    shipped = _shipped()
    if digest in shipped:
        raise ConflictError(f"{name}: this is the shipped policy '{policy.name}' version "
                            f"{policy.version}; shipped policies are known without registering")
    for other in shipped_policy_records():
        if (other["name"], other["version"]) == (policy.name, policy.version):
            raise ConflictError(
                f"{name}: policy '{policy.name}' version {policy.version} is shipped with assay "
                f"({other['source']}) with other content; give the edited policy another name "
                "or version")
    clash = session.scalars(select(RegisteredPolicy).where(
        RegisteredPolicy.name == policy.name, RegisteredPolicy.version == policy.version)).first()
    if clash is not None:
        raise ConflictError(
            f"{name}: policy '{policy.name}' version {policy.version} is already registered "
            f"with other content ({clash.digest}); a changed policy needs a new version")
    stored = store_bytes(settings_of(session, settings), content)
    row = RegisteredPolicy(name=policy.name, version=policy.version, digest=stored,
                           source=name, registered_by=actor.id, registered_at=utcnow())
    session.add(row)
    session.flush()
    append_event(session, actor=actor, action="policy.register", subject_type="policy",
                 subject_id=f"{policy.name}@{policy.version}",
                 payload={"name": policy.name, "version": policy.version, "source": name,
                          "tiers": list(policy.tiers)},
                 evidence={"policy": stored})
    return row


def shipped_policy_records() -> list[dict[str, Any]]:
    """Name, version, digest and file of every shipped policy (known without registering)."""
    out = []
    for digest, (raw, file_name) in _shipped().items():
        p = parse_policy(raw, source=file_name)
        out.append({"name": p.name, "version": p.version, "digest": digest,
                    "source": file_name, "shipped": True})
    return sorted(out, key=lambda r: r["name"])


def list_registered_policies(session: Session) -> list[RegisteredPolicy]:
    """The policies registered in this store, oldest first."""
    return list(session.scalars(select(RegisteredPolicy).order_by(RegisteredPolicy.id)))


def known_policy(session: Session, claimed: Mapping[str, Any], *,
                 settings: Settings | None = None, where: str = "results.json policy") -> Policy:
    """The policy a ``results.json`` names, as the store knows it.

    ``claimed`` is the ``policy`` block of the results (name, version,
    sha256). The digest must be that of a shipped or registered policy file,
    and the name and version must be that file's. Otherwise ConflictError,
    saying which of the three differs and how to register a custom policy.
    """
    from assay.evidence import normalise_digest, open_artifact

    name = str(claimed.get("name") or "")
    version = str(claimed.get("version") or "")
    try:
        digest = normalise_digest(str(claimed.get("sha256") or ""))
    except InputError:
        raise InputError(f"{where}.sha256 '{claimed.get('sha256')}': expected a SHA-256 hex "
                         "digest") from None
    label = f"'{name}' version {version or '(none)'}"
    shipped = _shipped()
    policy: Policy | None = None
    if digest in shipped:
        raw, file_name = shipped[digest]
        policy = parse_policy(raw, source=file_name, path=SHIPPED_DIR / file_name)
    else:
        row = session.scalars(select(RegisteredPolicy)
                              .where(RegisteredPolicy.digest == digest)).first()
        if row is not None:
            raw = open_artifact(settings_of(session, settings), row.digest)
            policy = parse_policy(raw, source=row.source)
    if policy is None:
        same = [p for p in _named(session) if p[:2] == (name, version)]
        if same:
            raise ConflictError(
                f"{where}: policy {label} is known as {same[0][2]}, but the results name "
                f"{digest}: the policy file was edited. Certify with the policy as it "
                f"is known, or give the edited policy a new version and {REGISTER_HINT}")
        raise ConflictError(f"{where}: policy {label} ({digest}) is not a policy this store "
                            f"knows (shipped with assay or registered); {REGISTER_HINT}")
    if (policy.name, policy.version) != (name, version):
        raise ConflictError(
            f"{where}: the results name policy {label}, but the policy file {digest} is "
            f"'{policy.name}' version {policy.version}")
    return policy


def policy_named(session: Session, name: str, *, settings: Settings | None = None) -> Policy:
    """The policy called ``name`` that the store knows: the newest registered version of
    that name, else the shipped one. Never a file path (the API names policies, it does
    not point at files on the server); NotFoundError lists the known names."""
    from assay.errors import NotFoundError
    from assay.evidence import open_artifact

    row = session.scalars(select(RegisteredPolicy).where(RegisteredPolicy.name == name)
                          .order_by(RegisteredPolicy.id.desc()).limit(1)).first()
    if row is not None:
        return parse_policy(open_artifact(settings_of(session, settings), row.digest),
                            source=row.source)
    for raw, file_name in _shipped().values():
        policy = parse_policy(raw, source=file_name, path=SHIPPED_DIR / file_name)
        if policy.name == name or file_name.rsplit(".", 1)[0] == name:
            return policy
    known = sorted({n for n, _, _ in _named(session)})
    raise NotFoundError(f"policy '{name}': not a policy this store knows (known: "
                        f"{', '.join(known)}); {REGISTER_HINT}")


def _named(session: Session) -> list[tuple[str, str, str]]:
    """(name, version, digest) of every policy the store knows."""
    out = [(r["name"], r["version"], r["digest"]) for r in shipped_policy_records()]
    for row in list_registered_policies(session):
        out.append((row.name, row.version, row.digest))
    return out
