"""The model inventory: users and roles, models, versions and their lineage, certifications.

Every function takes the session and the acting :class:`User`, checks the
actor's rights, writes, and appends an audit event in the same transaction.
None of them commits: the caller owns the transaction (``store.transaction()``),
so an operation is recorded whole, with its audit event, or not at all.

The package holds public names only; the logic lives in one module per concept:

* :mod:`assay.registry.users`: users and their roles;
* :mod:`assay.registry.models`: models, versions and their lineage;
* :mod:`assay.registry.policies`: the policies a store knows (shipped, registered);
* :mod:`assay.registry.results`: checking a results.json against its policy;
* :mod:`assay.registry.certifications`: recording certification runs;
* :mod:`assay.registry.overview`: the inventory view and record coverage.
"""

from __future__ import annotations

from assay.registry.certifications import (
    latest_certification,
    list_certifications,
    record_certification,
)
from assay.registry.models import (
    LATEST,
    MODEL_FIELDS,
    VERSION_FIELDS,
    add_version,
    get_model,
    get_version,
    list_models,
    list_versions,
    register_model,
    set_model_tier,
    update_model,
)
from assay.registry.overview import InventoryRow, approval_states, inventory, unaudited_records
from assay.registry.policies import (
    known_policy,
    list_registered_policies,
    register_policy,
    settings_of,
)
from assay.registry.results import verify_results
from assay.registry.tables import Certification, Model, ModelVersion, RegisteredPolicy, User
from assay.registry.users import (
    add_user,
    get_user,
    grant_role,
    list_users,
    require_role,
    revoke_role,
    set_user_active,
)

__all__ = [
    "LATEST",
    "MODEL_FIELDS",
    "VERSION_FIELDS",
    "Certification",
    "InventoryRow",
    "Model",
    "ModelVersion",
    "RegisteredPolicy",
    "User",
    "add_user",
    "add_version",
    "approval_states",
    "get_model",
    "get_user",
    "get_version",
    "grant_role",
    "inventory",
    "known_policy",
    "latest_certification",
    "list_certifications",
    "list_models",
    "list_registered_policies",
    "list_users",
    "list_versions",
    "record_certification",
    "register_model",
    "register_policy",
    "require_role",
    "revoke_role",
    "set_model_tier",
    "set_user_active",
    "settings_of",
    "unaudited_records",
    "update_model",
    "verify_results",
]
