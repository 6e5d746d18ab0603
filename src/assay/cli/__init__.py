"""The ``assay`` command line.

Each command group lives in its own module with a ``register(app)`` function;
commands only parse input, call the domain layer and render output. A new
top-level command or group also gets a line in :data:`COMMANDS` (its name, its
modules, its help panel and the first paragraph of its help): ``assay --help``
is drawn from that table and a command module is imported only when one of its
commands runs; ``tests/test_cli_startup.py`` fails when the table and the
modules disagree. Errors
deriving from :class:`assay.errors.AssayError` are printed on one line (no
traceback) and exit with their exit code (2 for bad input).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import sys
import types
from typing import Any

import typer
import typer.core
import typer.main
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

from assay import __version__
from assay.errors import AssayError


class _DeferredMarkdown:
    """Stands for ``rich.markdown.Markdown`` in typer's help formatter until it is used."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.markdown import Markdown

        return Markdown(*args, **kwargs)


class _DeferredTraceback:
    """Stands for ``rich.traceback.Traceback`` in typer's help formatter until it is used."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback

        return Traceback(*args, **kwargs)

    @classmethod
    def from_exception(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback

        return Traceback.from_exception(*args, **kwargs)


def _import_help_formatter() -> None:
    """Import ``typer.rich_utils`` (typer's rich help and error formatter) without the
    modules it imports only for markdown help and pretty tracebacks, neither of which
    assay uses: ``rich.markdown`` (with markdown-it and Pygments) and ``rich.traceback``
    are half the time of ``assay --help``. They are imported on first use instead; the
    help looks the same. If typer's formatter needs more of them than the two names, it
    is imported the ordinary way."""
    if "typer.rich_utils" in sys.modules or not typer.core.HAS_RICH:
        return
    deferred = {"rich.markdown": ("Markdown", _DeferredMarkdown),
                "rich.traceback": ("Traceback", _DeferredTraceback)}
    stand_ins = {}
    for module, (attr, cls) in deferred.items():
        if module not in sys.modules:
            stand_in = types.ModuleType(module)
            setattr(stand_in, attr, cls)
            stand_ins[module] = sys.modules[module] = stand_in
    try:
        importlib.import_module("typer.rich_utils")
    except ImportError:
        sys.modules.pop("typer.rich_utils", None)
    finally:
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]
    if "typer.rich_utils" not in sys.modules:
        importlib.import_module("typer.rich_utils")


class _FlagsWithoutType:
    """Help that shows no value placeholder (``<bool>``) for a flag, which takes no value;
    typer's help formatter imported without what assay's help does not use."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _import_help_formatter()
        super().format_help(ctx, formatter)  # type: ignore[misc]

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def get_help_option(self, ctx: Any) -> Any:
        # typer leaves the default of ``--help`` at None, and coerces None through a
        # pydantic adapter whenever a command runs without --help (importing pydantic,
        # 40-60 ms): a flag that is not given is False.
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None and option.default is None:
            option.default = False
        return option


class AssayCommand(_FlagsWithoutType, TyperCommand):
    """Every ``assay`` command."""


class AssayGroup(_FlagsWithoutType, TyperGroup):
    """``assay`` and its command groups (``assay policy``, ``assay user``...)."""


# Every top-level command: its name, the command modules that register it (in this
# order), its help panel and the first paragraph of its help, in the order of --help.
# ``assay --help`` is drawn from this table; a command module is imported and its
# command built only when that command runs (or shows its own help), so help and
# start-up do not pay for the ~140 commands' parameters. tests/test_cli_startup.py
# checks the table against what the modules register.
COMMANDS: tuple[tuple[str, tuple[str, ...], str | None, str], ...] = (
    ("certify", ("certify",), None,
     "Certify a model against a policy tier; write results.json and report.html."),
    ("demo", ("certify",), None,
     "Train a model on the shipped UCI Adult data and certify it end to end."),
    ("report", ("certify",), None,
     "Render the HTML validation report again from a results.json file."),
    ("checks", ("certify",), None,
     "List the checks a policy can name, with their parameters."),
    ("inventory", ("governance",), None,
     "Every model by tier, status and review date, with overdue reviews flagged."),
    ("compare", ("compare",), None,
     "Is the new model better? Differences with intervals and significance."),
    ("submit", ("workflow",), "Approval workflow",
     "Submit a model version for approval (opens the workflow)."),
    ("review", ("workflow",), "Approval workflow",
     "Show the current stage: what it needs and who may sign it."),
    ("approve", ("workflow",), "Approval workflow",
     "Sign off a stage (with optional conditions, expiry, comment, documents)."),
    ("reject", ("workflow",), "Approval workflow",
     "Reject a stage (closes the submission; fix and submit again)."),
    ("comment", ("workflow",), "Approval workflow",
     "Comment on a submission or one of its stages, optionally attaching documents."),
    ("condition-met", ("workflow",), "Approval workflow",
     "Record that a condition of an approval is met."),
    ("waive", ("workflow",), "Approval workflow",
     "Grant a waiver with a justification and an expiry date."),
    ("revoke-waiver", ("workflow",), "Approval workflow",
     "End a waiver now."),
    ("status", ("workflow",), "Approval workflow",
     "Timeline of every stage, sign-off, comment, condition and waiver, and the gate."),
    ("recheck", ("workflow",), "Approval workflow",
     "Record change control: send an approved version back to certification if its\n"
     "policy, certification or approval changed."),
    ("gate", ("workflow",), "Approval workflow",
     "The deployment gate: exit 0 if the version may be deployed, 1 if not."),
    ("serve", ("server",), None,
     "Serve the REST API and the web UI (API reference at /docs)."),
    ("init", ("server",), None,
     "Create the store and the first admin; print the admin's one-time password."),
    ("reproduce", ("card",), None,
     "Re-run a certification from its recorded inputs and compare number by number:\n"
     "exit 0 if it reproduces, 1 if it differs, 2 on bad input."),
    ("policy", ("certify",), None,
     "Inspect, validate and register policies."),
    ("db", ("governance",), None,
     "Create and upgrade the database."),
    ("user", ("governance", "server"), None,
     "Users and their roles."),
    ("model", ("governance",), None,
     "The model inventory: models, versions, certifications."),
    ("audit", ("governance",), None,
     "The tamper-evident audit trail."),
    ("evidence", ("governance",), None,
     "The content-addressed evidence store."),
    ("risk", ("risk",), None,
     "Risk tiering, the risk register and the mitigation backlog."),
    ("impact", ("impact",), None,
     "Impact: the value of decisions, the price of fairness, scenarios and sensitivity."),
    ("mitigate", ("compare",), None,
     "Bias mitigation proposals (group thresholds, reweighing); nothing is applied."),
    ("compliance", ("compliance",), None,
     "Compliance mapping packs: coverage per clause, documentation packs, ML-BOM."),
    ("monitor", ("monitor",), "Monitoring",
     "Monitor models in production: windows, rules, alerts."),
    ("alert", ("monitor",), "Monitoring",
     "Alerts raised by monitoring: list, acknowledge, resolve."),
    ("channel", ("notify",), "Monitoring",
     "Notification channels: SMTP e-mail and signed webhooks."),
    ("notify", ("notify",), "Monitoring",
     "The notification log: list, show, dispatch, retry."),
    ("program", ("program",), "Operating models",
     "Program metrics computed from the store: time to approve, coverage, burn-down."),
    ("release", ("release",), "Operating models",
     "Releases per environment: shadow, canary, full; promotion, rollback,\n"
     "champion-challenger."),
    ("incident", ("incident",), "Operating models",
     "Incidents: deadlines, playbooks, post-mortems and escalation."),
    ("redteam", ("redteam",), "Operating models",
     "The red-team record: findings of attacks on a model version."),
    ("token", ("server",), None,
     "Create, list and revoke API tokens."),
    ("card", ("card",), None,
     "Model cards generated from the store, their narrative and the notice for the people "
     "affected."),
    ("attest", ("attest",), None,
     "Signed attestations (in-toto statements in DSSE envelopes) and the trusted keys\n"
     "that verify them."),
    ("mlflow", ("mlflow",), None,
     "MLflow's model registry: import models, write certifications back, set aliases\n"
     "through the deployment gate."),
)
_COMMAND_INDEX = {entry[0]: entry for entry in COMMANDS}

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = [
    "assay.cli.certify",
    "assay.cli.governance",
    "assay.cli.risk",
    "assay.cli.impact",
    "assay.cli.compare",
    "assay.cli.compliance",
    "assay.cli.workflow",
    "assay.cli.monitor",
    "assay.cli.notify",
    "assay.cli.program",
    "assay.cli.release",
    "assay.cli.incident",
    "assay.cli.redteam",
    "assay.cli.server",
    "assay.cli.card",
    "assay.cli.attest",
    "assay.cli.mlflow",
]


def _registered_name(info: Any) -> str | None:
    if info.name:
        return info.name
    callback = getattr(info, "callback", None)
    return typer.main.get_command_name(callback.__name__) if callback else None


def build_command(name: str) -> Any:
    """The click command (or command group) ``assay NAME``, built from its modules only."""
    _, modules, _, _ = _COMMAND_INDEX[name]
    partial = typer.Typer(cls=AssayGroup, add_completion=False)
    for module in modules:
        importlib.import_module(f"assay.cli.{module}").register(partial)
    partial.registered_commands = [c for c in partial.registered_commands
                                   if _registered_name(c) == name]
    partial.registered_groups = [g for g in partial.registered_groups if g.name == name]
    _use_assay_classes(partial)
    return typer.main.get_group(partial).commands[name]


class AssayRootGroup(AssayGroup):
    """``assay`` itself: lists its commands from :data:`COMMANDS` and builds one only when
    it is asked for (to run it or to show its help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built: dict[str, Any] = {}
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [entry[0] for entry in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = _COMMAND_INDEX.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the list in ``assay --help``: name, panel, one-line help
            return _summary(entry)
        if cmd_name not in self._built:
            self._built[cmd_name] = build_command(cmd_name)
        return self._built[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _summary(entry: tuple[str, tuple[str, ...], str | None, str]) -> Any:
    name, _, panel, help_text = entry
    command = TyperCommand(name, help=help_text, short_help=help_text,
                           rich_help_panel=panel)
    return command


app = typer.Typer(
    name="assay",
    cls=AssayRootGroup,
    help="Certify, govern and monitor machine-learning models with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"assay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Certify, govern and monitor machine-learning models with evidence."""


def build_app() -> typer.Typer:
    """Every command registered at once on one typer app, as the modules define them (for
    checking :data:`COMMANDS`; the command line itself builds only what runs)."""
    full = typer.Typer(name="assay", cls=AssayGroup, help=app.info.help,
                       no_args_is_help=True, add_completion=False)
    full.callback()(_root)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(full)
    _use_assay_classes(full)
    return full


def _use_assay_classes(group: typer.Typer) -> None:
    """Build every command and command group registered on ``group`` with the assay classes."""
    for command in group.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = AssayCommand
    for sub in group.registered_groups:
        if sub.typer_instance is None:
            continue
        if isinstance(sub.cls, DefaultPlaceholder) or sub.cls in (None, TyperGroup):
            sub.cls = AssayGroup
        _use_assay_classes(sub.typer_instance)


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Click's usage-error class, and the one of the click that recent typer versions bundle."""
    found: list[type[Exception]] = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            found.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _choice_error(exc: Exception) -> AssayError | None:
    """An option given a value outside its choices, said as assay says it (flag, choices,
    did you mean); None for any other usage error."""
    from assay.errors import choice_error

    param = getattr(exc, "param", None)
    descriptor = getattr(param, "type_descriptor", None)
    choices = getattr(descriptor, "choices", None) if getattr(descriptor, "is_choice",
                                                              False) else None
    errors = getattr(exc.__cause__, "errors", None)
    if not choices or not callable(errors) or not getattr(param, "opts", None):
        return None
    try:
        given = errors()[0]["input"]
    except (LookupError, TypeError):
        return None
    flag = max(param.opts, key=len)  # type: ignore[union-attr]
    return choice_error(flag, given, [getattr(c, "value", c) for c in choices])


def _print_error(exc: AssayError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                      soft_wrap=True)


#: The garbage collector's thresholds while a command runs (Python's defaults are 700,
#: 10, 10). A certification imports scikit-learn, SciPy and pandas and builds many
#: small objects: with the defaults, collections that scan every imported object took
#: ~0.17 s of a 10,000-row ``assay certify`` (0.04 s with these). Cycles are still
#: collected, in larger steps.
GC_THRESHOLDS = (10_000, 50, 100)


def _freeze_at_exit() -> None:
    """At interpreter exit, move every object to the collector's permanent generation.

    Python's shutdown runs full collections over every object still alive: after a
    certification (scikit-learn, SciPy, pandas and the rest imported) they took
    about 0.3 s of a 10,000-row ``assay certify``, after the results were written.
    Frozen objects are not traversed, so the process ends at once. Nothing is lost:
    assay closes and syncs what it writes explicitly, and ``atexit`` handlers
    registered before this one (logging's flush among them) still run after it.
    Registered at most once per process, and only at exit: a process that calls
    :func:`main` in-process keeps collecting as before until it ends.
    """
    global _EXIT_FREEZE
    if not _EXIT_FREEZE:
        atexit.register(gc.freeze)
        _EXIT_FREEZE = True


_EXIT_FREEZE = False


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``assay`` console script."""
    _freeze_at_exit()
    thresholds = gc.get_threshold()
    gc.set_threshold(*(max(now, ours) for now, ours in zip(thresholds, GC_THRESHOLDS,
                                                           strict=False)))
    try:
        _main(argv)
    finally:
        gc.set_threshold(*thresholds)


def _main(argv: list[str] | None) -> None:
    try:
        # Without standalone mode, click returns the code of a ``typer.Exit`` instead of
        # exiting: pass it on, so "blocked by the policy" really exits 1.
        code = app(args=argv, standalone_mode=False)
    except AssayError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        if isinstance(exc, _usage_error_types()):
            choice_error = _choice_error(exc)
            if choice_error is not None:
                _print_error(choice_error)
                sys.exit(choice_error.exit_code)
            exc.show()  # type: ignore[attr-defined]
            code = exc.exit_code  # type: ignore[attr-defined]
            sys.exit(2 if code not in (0, 1) else code or 2)
        raise
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
