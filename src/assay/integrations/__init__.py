"""Integrations with the tools around assay: a model registry (MLflow) today.

The package holds public names only; each integration is one module:

* :mod:`assay.integrations.mlflow`: ``models:/`` URIs, loading a registered model,
  writing a certification back to its version (tags and artefacts);
* :mod:`assay.integrations.mlflow_sync`: mirroring registered models into assay's
  inventory and setting an alias only when the deployment gate allows it.
"""
