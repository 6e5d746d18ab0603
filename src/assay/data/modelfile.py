"""Scan a model file for the code it would run, before it is loaded.

A pickle (and a joblib file, which is a pickle with NumPy arrays stored
beside it, possibly compressed) names the functions and classes that
unpickling imports and calls: ``GLOBAL``/``STACK_GLOBAL``/``INST`` opcodes
and the ``REDUCE``/``NEWOBJ``/``BUILD`` opcodes that call them. A malicious
file names ``os.system``, ``builtins.exec``, ``subprocess.Popen`` and the like.

:func:`scan_model_file` reads the file with a *non-executing* unpickler: the
pickle machine runs, so the stack, the memo and ``STACK_GLOBAL``'s operands
are exact, but every import is replaced by an inert placeholder that records
its name, and every call of a placeholder gives another placeholder. Nothing
the file names is imported or called. (A plain opcode listing such as
``pickletools.genops`` cannot follow a joblib file: joblib writes raw array
bytes in the middle of the pickle stream; the scanner skips them the way
joblib reads them, from the array's shape and dtype.) Only NumPy's ``dtype``,
``ndarray`` and ``memmap`` classes and joblib's array wrapper are real, since
skipping an array needs its size.

Every import outside the allow-list (:data:`ALLOWED_MODULES` and
:data:`ALLOWED_NAMES`, extended with ``allow``) is a *finding*; a file that
cannot be parsed is a finding too. ``.skops`` files are read with
``skops.io.get_untrusted_types`` and judged against the same allow-list.

Limits: an allow-listed package is trusted as a whole (a gadget inside NumPy
or scikit-learn would not be seen), and the scan says what a file *would*
import, not whether that is harmful.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from assay.errors import ModelLoadError

#: Top-level packages whose classes and functions a model file may name.
ALLOWED_MODULES: tuple[str, ...] = (
    "numpy", "scipy", "sklearn", "pandas", "joblib",
    "xgboost", "lightgbm", "catboost", "statsmodels",
)

#: Standard-library names that pickles of ordinary objects use (containers, copyreg's
#: reconstructors, NumPy's byte strings through ``_codecs.encode``).
ALLOWED_NAMES: frozenset[str] = frozenset({
    "builtins.object", "builtins.set", "builtins.frozenset", "builtins.slice",
    "builtins.complex", "builtins.bytearray", "builtins.dict", "builtins.list",
    "builtins.tuple", "builtins.float", "builtins.int", "builtins.bool", "builtins.str",
    "builtins.bytes", "builtins.range",
    "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
    "collections.OrderedDict", "collections.defaultdict", "collections.deque",
    "_codecs.encode", "datetime.datetime", "datetime.date", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "uuid.UUID",
})

PICKLE = "pickle"
JOBLIB = "joblib"
SKOPS = "skops"


class UnsafeModelError(ModelLoadError):
    """A model file that names code outside the allow-list (refused unless trusted)."""

    code = "unsafe_model"


@dataclass
class ScanResult:
    """What a model file would import, and which of those imports are not allowed."""

    path: str
    format: str  # "pickle", "joblib" (with compression), "skops"
    sha256: str
    imports: dict[str, int] = field(default_factory=dict)  # "module.name" -> times named
    findings: list[str] = field(default_factory=list)  # imports outside the allow-list
    error: str | None = None  # the file could not be scanned to its end
    trusted: bool = False  # loaded despite findings because the user said so

    @property
    def safe(self) -> bool:
        return not self.findings and self.error is None

    def judge(self, allow: Iterable[str] = ()) -> list[str]:
        """The findings under a wider allow-list (``allow`` adds modules or exact names)."""
        extra = tuple(allow)
        return [name for name in self.findings if not is_allowed(name, extra)]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "sha256": self.sha256,
                "imports": dict(sorted(self.imports.items())), "findings": list(self.findings),
                "error": self.error, "trusted": self.trusted}

    def describe(self) -> str:
        """One line naming the first offending imports (or the scan error)."""
        if self.error:
            return f"could not be scanned: {self.error}"
        shown = ", ".join(self.findings[:5])
        more = f" and {len(self.findings) - 5} more" if len(self.findings) > 5 else ""
        return f"imports {shown}{more}, outside the allow-list"


def is_allowed(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``module.name`` is on the allow-list (``extra``: more modules or names)."""
    if name in ALLOWED_NAMES:
        return True
    for prefix in (*ALLOWED_MODULES, *extra):
        if name == prefix or name.startswith(prefix + "."):
            return True
    return False


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_skops(path: Path) -> bool:
    """A ``.skops`` file (a zip archive with a ``schema.json``)."""
    if path.suffix.lower() != ".skops":
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def scan_model_file(path: str | Path, *, allow: Iterable[str] = ()) -> ScanResult:
    """Scan ``path`` without loading it: the imports it names and those not allowed."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"{p}: model file not found")
    if p.is_dir():
        raise ModelLoadError(f"{p}: is a directory; expected a joblib, pickle or skops file")
    digest = file_sha256(p)
    extra = tuple(allow)
    result = _scan_skops(p, digest) if is_skops(p) else _scan_pickle(p, digest)
    result.findings = sorted(n for n in result.imports if not is_allowed(n, extra))
    return result


def _scan_skops(p: Path, digest: str) -> ScanResult:
    result = ScanResult(path=str(p), format=SKOPS, sha256=digest)
    try:
        from skops.io import get_untrusted_types
    except ImportError:  # pragma: no cover - skops is a dependency
        result.error = "skops is not installed"
        return result
    try:
        untrusted = get_untrusted_types(file=p)
    except Exception as exc:
        result.error = f"not a readable skops file ({type(exc).__name__}: {exc})"
        return result
    result.imports = {str(t): 1 for t in untrusted}
    return result


# --------------------------------------------------------------------------- pickle scan


class _Inert:
    """Stands for anything a pickle imports or builds: records nothing, runs nothing."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert(f"{self.name}(...)")

    def __setstate__(self, state: Any) -> None:
        return None

    def __reduce__(self) -> Any:  # pragma: no cover - never pickled
        raise TypeError("inert placeholder")


def _real_classes() -> dict[str, Any]:
    """The few real objects the scan needs to skip joblib's raw array bytes."""
    import numpy as np

    real: dict[str, Any] = {"numpy.dtype": np.dtype, "numpy.ndarray": np.ndarray,
                            "numpy.memmap": np.memmap}
    try:
        from joblib.numpy_pickle import NumpyArrayWrapper
    except ImportError:  # pragma: no cover
        return real
    real["joblib.numpy_pickle.NumpyArrayWrapper"] = NumpyArrayWrapper
    return real


def _np_dtype() -> type:
    import numpy as np

    return np.dtype


class _Scanner(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Runs the pickle machine with inert imports; skips joblib's raw array bytes."""

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, fh: Any, imports: Counter[str], real: dict[str, Any]) -> None:
        super().__init__(fh)
        self._fh = fh
        self._imports = imports
        self._real = real
        self._real_ids = {id(v) for v in real.values()}

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle maps them
            import _compat_pickle

            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        self._imports[full] += 1
        return self._real.get(full) or _Inert(full)

    def persistent_load(self, pid: Any) -> Any:
        self._imports[f"<persistent id {str(pid)[:40]}>"] += 1
        return _Inert("persistent")

    def _new(self, cls: Any, args: Any) -> None:
        if id(cls) in self._real_ids and isinstance(cls, type) and cls is not _np_dtype():
            self.append(cls.__new__(cls))  # joblib's array wrapper: a plain object
        else:
            self.append(_Inert(f"{getattr(cls, 'name', cls)}.__new__"))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        self._new(self.stack.pop(), args)

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        self.stack.pop()
        args = self.stack.pop()
        self._new(self.stack.pop(), args)

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if func is _np_dtype() and isinstance(args, tuple) and args and isinstance(args[0], str):
            self.stack[-1] = func(args[0])  # a dtype from its code ('f8'): needed for sizes
        else:
            self.stack[-1] = _Inert(f"{getattr(func, 'name', type(func).__name__)}(...)")

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, _np_dtype()):
            inst.__setstate__(state)  # byte order, sizes of strings and records
            return
        wrapper = self._real.get("joblib.numpy_pickle.NumpyArrayWrapper")
        if wrapper is None or type(inst) is not wrapper or not isinstance(state, dict):
            return  # every other object stays inert: its state is never applied
        self.stack.pop()
        self._skip_array(state)
        self.append(_Inert("array"))

    dispatch[pickle.BUILD[0]] = load_build

    def _skip_array(self, state: dict[str, Any]) -> None:
        """Read past the array joblib wrote after its wrapper, as joblib reads it."""
        dtype, shape = state.get("dtype"), state.get("shape")
        if not isinstance(dtype, _np_dtype()) or not isinstance(shape, tuple):
            raise pickle.UnpicklingError("a joblib array without a readable dtype or shape")
        if dtype.hasobject:  # a nested pickle stream: scanned the same way
            _Scanner(self._fh, self._imports, self._real).load()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self._fh.read(1)
            if pad and pad[0]:
                self._fh.read(pad[0])
        count = 1
        for d in shape:
            count *= int(d)
        size = count * dtype.itemsize
        while size > 0:
            chunk = self._fh.read(min(size, 1 << 24))
            if not chunk:
                raise pickle.UnpicklingError("the file ends inside an array's data")
            size -= len(chunk)


def _scan_pickle(p: Path, digest: str) -> ScanResult:
    from joblib.numpy_pickle_utils import _detect_compressor, _validate_fileobject_and_memmap

    imports: Counter[str] = Counter()
    fmt = PICKLE
    with open(p, "rb") as raw:
        compressor = _detect_compressor(raw)
        raw.seek(0)
        if compressor == "compat":
            error: str | None = ("a joblib file older than joblib 0.10, which cannot be "
                                 "scanned")
        elif compressor != "not-compressed":
            fmt = f"{JOBLIB} ({compressor})"
            with _validate_fileobject_and_memmap(raw, str(p)) as (fh, _):
                error = _run_scan(fh, imports)
        else:
            error = _run_scan(raw, imports)
    if fmt == PICKLE and "joblib.numpy_pickle.NumpyArrayWrapper" in imports:
        fmt = JOBLIB
    return ScanResult(path=str(p), format=fmt, sha256=digest, imports=dict(imports),
                      error=error)


def _run_scan(fh: io.IOBase | Any, imports: Counter[str]) -> str | None:
    scanner = _Scanner(fh, imports, _real_classes())
    try:
        scanner.load()
    except Exception as exc:
        return f"not a joblib or pickle model file ({type(exc).__name__}: {exc})"
    return None
