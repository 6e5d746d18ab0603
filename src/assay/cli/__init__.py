"""The ``assay`` command line.

Each command group lives in its own module with a ``register(app)`` function;
commands only parse input, call the domain layer and render output. Errors
deriving from :class:`assay.errors.AssayError` are printed on one line (no
traceback) and exit with their exit code (2 for bad input).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

from assay import __version__
from assay.errors import AssayError


class _FlagsWithoutType:
    """Help that shows no value placeholder (``<bool>``) for a flag, which takes no value."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class AssayCommand(_FlagsWithoutType, TyperCommand):
    """Every ``assay`` command."""


class AssayGroup(_FlagsWithoutType, TyperGroup):
    """``assay`` and its command groups (``assay policy``, ``assay user``...)."""


app = typer.Typer(
    name="assay",
    cls=AssayGroup,
    help="Certify, govern and monitor machine-learning models with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = [
    "assay.cli.certify",
    "assay.cli.governance",
    "assay.cli.risk",
    "assay.cli.workflow",
    "assay.cli.monitor",
    "assay.cli.server",
]


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


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not built yet
                continue
            raise
        mod.register(app)
    _use_assay_classes(app)


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


_load_commands()


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``assay`` console script."""
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
