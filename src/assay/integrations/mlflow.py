"""MLflow's model registry: ``models:/`` URIs, loading a registered model for a
certification, and writing the certification back to the model version.

* :func:`parse_model_uri`: ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``;
* :class:`Registry`: one MLflow tracking/registry server or store (the URI comes from the
  caller, else ``MLFLOW_TRACKING_URI``), every MLflow error turned into one clear
  :class:`~assay.errors.AssayError` (exit 2): an unknown model, version or alias, a store
  that does not exist, a server that does not answer;
* :func:`load_model`: the version's model as a :class:`~assay.data.ModelAdapter`. The
  scikit-learn flavour is preferred (``predict_proba`` is then available): a ``skops``
  file is loaded by MLflow with skops's type checks; a pickle or cloudpickle file is
  loaded by :func:`assay.data.load_model`, under the same rules as any model file given
  to ``assay certify``. A model without that flavour is loaded as an MLflow pyfunc
  model (``predict`` only). The digest is the SHA-256 of the flavour's model file (of
  every file of the model, for a pyfunc model);
* :func:`publish`: the verdict, the policy (name, version, tier, digest) and the
  digest of results.json as tags of the model version, and results.json, report.html
  and the attestation (results.intoto.json) as artefacts of the version's run (under
  ``assay/``), or of a new run of the ``assay`` experiment when the version has no run.

Nothing here touches assay's store: mirroring registered models into the inventory and
promoting an alias through the deployment gate live in
:mod:`assay.integrations.mlflow_sync`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from assay.errors import AssayError, ConflictError, InputError, ModelLoadError, NotFoundError

#: The environment variable MLflow reads its tracking URI from (and so does assay).
ENV_URI = "MLFLOW_TRACKING_URI"
SCHEME = "models:/"
#: The folder of the version's run that holds what :func:`publish` logs.
ARTIFACT_DIR = "assay"
#: The experiment of the runs :func:`publish` creates for a version without a run.
EXPERIMENT = "assay"
#: The evidence files :func:`publish` logs, when they are in the results folder.
EVIDENCE_FILES = ("results.json", "report.html", "results.intoto.json")
#: Tags :func:`publish` sets on the model version.
TAG_PREFIX = "assay."
#: How long the reachability probe of an HTTP tracking server waits (seconds).
PROBE_TIMEOUT = 5.0

_NAME = re.compile(r"^[^/@]+$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version named by number or by alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        return (f"{SCHEME}{self.name}/{self.version}" if self.version is not None
                else f"{SCHEME}{self.name}@{self.alias}")


def is_model_uri(value: object) -> bool:
    """Whether ``value`` is an MLflow ``models:/`` URI (not a file path)."""
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` as a :class:`ModelRef`."""
    expected = "expected models:/NAME/VERSION (a version number) or models:/NAME@ALIAS"
    if not is_model_uri(uri):
        raise InputError(f"{uri!r}: not an MLflow model URI; {expected}")
    rest = uri[len(SCHEME):]
    if "/" in rest:
        name, _, version = rest.partition("/")
        if not _NAME.match(name) or not version.isdigit():
            raise InputError(f"{uri!r}: {expected}")
        return ModelRef(name, version=str(int(version)))
    name, at, alias = rest.partition("@")
    if not at or not _NAME.match(name) or not alias or "@" in alias:
        raise InputError(f"{uri!r}: {expected}")
    return ModelRef(name, alias=alias)


def safe_uri(uri: str) -> str:
    """``uri`` without a password (for messages and the audit trail)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking/registry URI: ``uri``, else ``$MLFLOW_TRACKING_URI``; a local store
    (``sqlite:///FILE``, ``file:///DIR`` or a folder) must exist: assay reads a registry,
    it does not create an empty one."""
    value = (uri or os.environ.get(ENV_URI) or "").strip()
    if not value:
        raise InputError("no MLflow tracking URI: pass {uri} or set MLFLOW_TRACKING_URI",
                         fields={"uri": "tracking_uri=..."})
    if value in ("databricks", "databricks-uc") or value.startswith(("databricks://",
                                                                      "databricks-uc://")):
        return value
    if value.startswith("sqlite:"):
        path = value.removeprefix("sqlite:").split("?", 1)[0].lstrip("/")
        path = "/" + path if value.startswith("sqlite:////") else path
        if path in ("", ":memory:") or not Path(path).is_file():
            raise NotFoundError(f"MLflow store {value}: no such SQLite file ({path or '?'})")
    elif value.startswith("file:") or "://" not in value:
        path = value.removeprefix("file://") if value.startswith("file:") else value
        if not Path(path).is_dir():
            raise NotFoundError(f"MLflow store {value}: no such folder")
    elif urlsplit(value).scheme not in ("http", "https", "postgresql", "mysql", "mssql",
                                        "databricks", "databricks-uc"):
        raise InputError(f"MLflow tracking URI {safe_uri(value)!r}: unknown scheme; expected "
                         "http(s)://HOST:PORT, sqlite:///FILE, file:///DIR or a database URI")
    return value


def _probe(uri: str) -> None:
    """An HTTP tracking server answers, or one clear error (MLflow itself would retry for
    minutes before failing with a stack of connection errors)."""
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    import httpx

    try:
        httpx.get(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        raise InputError(f"MLflow server {safe_uri(uri)} does not answer "
                         f"({type(exc).__name__}: {exc or 'no response'})") from None


class Registry:
    """One MLflow tracking and model registry (``MlflowClient``) with assay's errors."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = resolve_tracking_uri(uri)
        _probe(self.uri)
        with self.errors("connecting"):
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    @property
    def display_uri(self) -> str:
        return safe_uri(self.uri)

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Every failure inside as one line naming the store and what was being done."""
        try:
            yield
        except AssayError:
            raise
        except Exception as exc:
            code = getattr(exc, "error_code", None)
            text = str(getattr(exc, "message", None) or exc).strip().splitlines()
            line = text[0] if text else type(exc).__name__
            if code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"MLflow at {self.display_uri}: {what}: {line}") from None
            raise InputError(f"MLflow at {self.display_uri}: {what} failed: {line}") from None

    # ------------------------------------------------------------------ reading

    def registered_model(self, name: str) -> Any:
        with self.errors(f"reading model '{name}'"):
            try:
                return self.client.get_registered_model(name)
            except Exception as exc:
                if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                    raise NotFoundError(f"MLflow at {self.display_uri}: no registered model "
                                        f"'{name}'") from None
                raise

    def versions(self, name: str) -> list[Any]:
        """Every version of the registered model ``name``, oldest first."""
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        with self.errors(f"listing the versions of '{name}'"):
            found = list(self.client.search_model_versions(f"name = '{quoted}'"))
        return sorted(found, key=lambda v: int(v.version))

    def registered_models(self, name: str | None = None) -> list[Any]:
        """The registered models (only ``name``, which must exist, when given)."""
        if name is not None:
            return [self.registered_model(name)]
        with self.errors("listing registered models"):
            found = list(self.client.search_registered_models())
        return sorted(found, key=lambda m: m.name)

    def version(self, ref: ModelRef) -> Any:
        """The model version ``ref`` names; NotFoundError naming what exists otherwise."""
        model = self.registered_model(ref.name)
        if ref.alias is not None:
            aliases = dict(getattr(model, "aliases", None) or {})
            if ref.alias not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise NotFoundError(f"MLflow at {self.display_uri}: model '{ref.name}' has no "
                                    f"alias '{ref.alias}' (aliases: {known})")
            with self.errors(f"reading {ref.uri}"):
                return self.client.get_model_version_by_alias(ref.name, ref.alias)
        with self.errors(f"reading {ref.uri}"):
            try:
                return self.client.get_model_version(ref.name, str(ref.version))
            except Exception as exc:
                if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                    raise
        known = ", ".join(str(v.version) for v in self.versions(ref.name)) or "none"
        raise NotFoundError(f"MLflow at {self.display_uri}: model '{ref.name}' has no version "
                            f"{ref.version} (versions: {known})")

    def run(self, run_id: str | None) -> Any | None:
        """The run that produced a version, or None (no run, or a run since deleted)."""
        if not run_id:
            return None
        with self.errors(f"reading run {run_id}"):
            try:
                return self.client.get_run(run_id)
            except Exception as exc:
                if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                    return None
                raise

    def download(self, name: str, version: str, dst: Path) -> Path:
        """The files of model version ``name``/``version`` in ``dst``."""
        with self.errors(f"downloading models:/{name}/{version}"):
            from mlflow.artifacts import download_artifacts

            source = self.client.get_model_version_download_uri(name, version)
            return Path(download_artifacts(artifact_uri=source, dst_path=str(dst),
                                           tracking_uri=self.uri))

    # ------------------------------------------------------------------ writing

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        with self.errors(f"tagging models:/{name}/{version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, version, key, value)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with self.errors(f"setting alias '{alias}' of '{name}' to version {version}"):
            self.client.set_registered_model_alias(name, alias, version)


# --------------------------------------------------------------------------- lineage


def version_metadata(registry: Registry, mv: Any) -> dict[str, Any]:
    """What assay mirrors of a model version: its run, source, code and data lineage.

    ``datasets`` are the run's logged inputs (name, digest, source, context);
    ``git_commit`` and ``source_name`` are the run's ``mlflow.source.git.commit`` and
    ``mlflow.source.name`` tags. The values are plain JSON."""
    run = registry.run(getattr(mv, "run_id", None))
    tags = dict(run.data.tags) if run is not None else {}
    datasets: list[dict[str, Any]] = []
    inputs = getattr(run, "inputs", None) if run is not None else None
    for entry in getattr(inputs, "dataset_inputs", None) or []:
        ds = entry.dataset
        context = {t.key: t.value for t in entry.tags or []}.get("mlflow.data.context", "")
        try:
            source = json.loads(ds.source)
        except (TypeError, ValueError):
            source = ds.source
        datasets.append({"name": ds.name, "digest": ds.digest, "context": context,
                         "source_type": ds.source_type,
                         "source": source.get("uri", source) if isinstance(source, dict)
                         else source})
    datasets.sort(key=lambda d: (d["context"], d["name"], d["digest"]))
    return {
        "run_id": getattr(mv, "run_id", None) or None,
        "source": getattr(mv, "source", None) or "",
        "status": str(getattr(mv, "status", "") or ""),
        "description": getattr(mv, "description", None) or "",
        "git_commit": tags.get("mlflow.source.git.commit", ""),
        "source_name": tags.get("mlflow.source.name", ""),
        "datasets": datasets,
        "aliases": sorted(getattr(mv, "aliases", None) or []),
    }


# --------------------------------------------------------------------------- loading


@dataclass
class LoadedFrom:
    """Where a model came from (``ModelAdapter.mlflow``): for the write-back."""

    tracking_uri: str
    name: str
    version: str
    alias: str | None = None
    flavor: str = ""
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_sha256(root: Path) -> str:
    """SHA-256 over every file of ``root`` (relative path and content, sorted by path)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(_sha256(path).encode() + b"\n")
    return h.hexdigest()


def _flavors(local: Path, uri: str) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{uri}: no readable MLmodel file ({exc})") from None
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    if not isinstance(flavors, dict):
        raise ModelLoadError(f"{uri}: the MLmodel file lists no flavours")
    return flavors


def _model_file(local: Path, name: str) -> tuple[Path | None, dict[str, Any]]:
    """The sklearn flavour's model file (None without that flavour) and every flavour."""
    flavors = _flavors(local, name)
    sk = flavors.get("sklearn")
    if not (isinstance(sk, dict) and sk.get("pickled_model")):
        return None, flavors
    path = local / str(sk["pickled_model"])
    if not path.is_file():
        raise ModelLoadError(f"{name}: the sklearn flavour's file {sk['pickled_model']} "
                             "is missing")
    return path, flavors


def model_digest(registry: Registry, name: str, version: str) -> str:
    """The SHA-256 :func:`load_model` gives the model of version ``name``/``version``
    (hex): of the sklearn flavour's model file, else of every file of the model."""
    with tempfile.TemporaryDirectory(prefix="assay-mlflow-") as tmp:
        local = registry.download(name, version, Path(tmp))
        path, _ = _model_file(local, f"{SCHEME}{name}/{version}")
        return _sha256(path) if path is not None else _tree_sha256(local)


def load_model(uri: str, *, tracking_uri: str | None = None) -> Any:
    """The registered model version ``uri`` (``models:/NAME/VERSION`` or
    ``models:/NAME@ALIAS``) as a :class:`~assay.data.ModelAdapter` named by its version.

    The adapter's ``mlflow`` attribute (:class:`LoadedFrom`) says which store, model,
    version and flavour it came from."""
    from assay.data import ModelAdapter
    from assay.data import load_model as load_model_file

    ref = parse_model_uri(uri)
    registry = Registry(tracking_uri)
    mv = registry.version(ref)
    version = str(mv.version)
    name = f"{SCHEME}{ref.name}/{version}"
    local_root = Path(tempfile.mkdtemp(prefix="assay-mlflow-"))
    keep = False
    try:
        local = registry.download(ref.name, version, local_root)
        path, flavors = _model_file(local, name)
        sk = flavors.get("sklearn") or {}
        if path is not None:
            if sk.get("serialization_format") == "skops":
                with registry.errors(f"loading {name} (skops)"):
                    import mlflow.sklearn

                    estimator = mlflow.sklearn.load_model(str(local))
                adapter = ModelAdapter(estimator, name=name, digest=_sha256(path))
            else:  # pickle or cloudpickle: the rules of any model file
                adapter = load_model_file(path)
                adapter = ModelAdapter(adapter.estimator, name=name, digest=adapter.digest)
            flavor = f"sklearn ({sk.get('serialization_format') or 'pickle'})"
        elif "python_function" in flavors:
            with registry.errors(f"loading {name} (pyfunc)"):
                import mlflow.pyfunc

                estimator = mlflow.pyfunc.load_model(str(local))
            adapter = ModelAdapter(estimator, name=name, digest=_tree_sha256(local))
            flavor = "python_function"
            keep = True  # a pyfunc model may read its files when it predicts
        else:
            raise ModelLoadError(f"{name}: no sklearn or python_function flavour (has "
                                 f"{', '.join(sorted(flavors)) or 'none'})")
    finally:
        if not keep:
            shutil.rmtree(local_root, ignore_errors=True)
    if keep:
        weakref.finalize(adapter, shutil.rmtree, local_root, True)
    adapter.mlflow = LoadedFrom(tracking_uri=registry.uri, name=ref.name, version=version,
                                alias=ref.alias, flavor=flavor,
                                run_id=getattr(mv, "run_id", None) or None)
    return adapter


# --------------------------------------------------------------------------- write-back


@dataclass
class Published:
    """What :func:`publish` wrote to a model version."""

    name: str
    version: str
    tags: dict[str, str]
    run_id: str
    artifacts: list[str]
    new_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.name, "version": self.version, "tags": dict(self.tags),
                "run_id": self.run_id, "artifacts": list(self.artifacts),
                "new_run": self.new_run}


def _read_results(folder: Path) -> tuple[dict[str, Any], bytes]:
    path = folder / "results.json"
    if not folder.is_dir():
        raise InputError(f"{folder}: results folder not found")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: not found; expected the results.json of "
                         "'assay certify --out DIR'") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: expected a results.json file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("policy"), dict) \
            or not doc.get("status"):
        raise InputError(f"{path}: expected a results.json written by 'assay certify' "
                         "(with 'status' and 'policy')")
    return doc, raw


def results_tags(doc: dict[str, Any], raw: bytes) -> dict[str, str]:
    """The model-version tags of a certification: verdict, policy and results digest."""
    policy = doc["policy"]
    tags = {
        "verdict": str(doc["status"]),
        "policy": str(policy.get("name") or ""),
        "policy.version": str(policy.get("version") or ""),
        "policy.tier": str(policy.get("tier") or ""),
        "policy.digest": f"sha256:{policy['sha256']}" if policy.get("sha256") else "",
        "results.digest": f"sha256:{hashlib.sha256(raw).hexdigest()}",
        "certified_at": str(doc.get("created_at") or ""),
    }
    model = doc.get("model") or {}
    if model.get("sha256"):
        tags["model.digest"] = f"sha256:{model['sha256']}"
    return {TAG_PREFIX + k: v for k, v in tags.items() if v}


def publish(name: str, version: str | None, results_dir: str | os.PathLike[str], *,
            tracking_uri: str | None = None, alias: str | None = None,
            verified_digest: str | None = None) -> Published:
    """Write the certification in ``results_dir`` back to MLflow model version
    ``name``/``version`` (or the version ``alias`` points at).

    The model-version tags (:func:`results_tags`) are set, and results.json, report.html
    and results.intoto.json (those present) are logged under ``assay/`` of the version's
    run; a version without a run gets a new run in the ``assay`` experiment, tagged with
    the model and version and named in the version's ``assay.run_id`` tag.

    The results must be of this version's model: their model digest is compared with the
    version's (:func:`model_digest`, which downloads the model; ``verified_digest`` is
    that digest when the caller has just computed it, as ``assay certify`` has). Results
    of another model, or of predictions read from columns (no model), are refused before
    anything is written."""
    folder = Path(results_dir)
    doc, raw = _read_results(folder)
    registry = Registry(tracking_uri)
    ref = ModelRef(name, version=version) if alias is None else ModelRef(name, alias=alias)
    if version is not None and not str(version).isdigit():
        raise InputError(f"version {version!r}: expected an MLflow version number")
    mv = registry.version(ref)
    version = str(mv.version)
    certified = str((doc.get("model") or {}).get("sha256") or "")
    if not certified:
        raise InputError(f"{folder / 'results.json'}: certifies no model (predictions read "
                         f"from columns): nothing ties it to models:/{name}/{version}")
    actual = verified_digest or model_digest(registry, name, version)
    if certified.removeprefix("sha256:") != actual.removeprefix("sha256:"):
        raise ConflictError(f"{folder / 'results.json'} certifies model sha256:"
                            f"{certified.removeprefix('sha256:')}, but models:/{name}/"
                            f"{version} is sha256:{actual.removeprefix('sha256:')}: these "
                            "results are not of this version")
    files = [folder / f for f in EVIDENCE_FILES if (folder / f).is_file()]
    run_id = getattr(mv, "run_id", None) or None
    new_run = registry.run(run_id) is None
    with registry.errors(f"logging the evidence of models:/{name}/{version}"):
        if new_run:
            client = registry.client
            exp = client.get_experiment_by_name(EXPERIMENT)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(
                EXPERIMENT)
            run = client.create_run(exp_id, run_name=f"assay {name} v{version}",
                                    tags={"assay.model": name, "assay.model_version": version})
            run_id = run.info.run_id
        for path in files:
            registry.client.log_artifact(run_id, str(path), ARTIFACT_DIR)
        if new_run:
            registry.client.set_terminated(run_id)
    tags = results_tags(doc, raw)
    tags[TAG_PREFIX + "run_id"] = str(run_id)
    tags[TAG_PREFIX + "artifacts"] = ARTIFACT_DIR
    registry.set_tags(name, version, tags)
    return Published(name=name, version=version, tags=tags, run_id=str(run_id),
                     artifacts=[f"{ARTIFACT_DIR}/{p.name}" for p in files], new_run=new_run)
