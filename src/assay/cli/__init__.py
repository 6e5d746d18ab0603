"""The ``assay`` command line.

Each command group lives in its own module with a ``register(app)`` function;
commands only parse input, call the domain layer and render output. Errors
deriving from :class:`assay.errors.AssayError` are printed on one line (no
traceback) and exit with their exit code (2 for bad input).
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from assay import __version__
from assay.errors import AssayError

app = typer.Typer(
    name="assay",
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``assay`` console script."""
    try:
        # Without standalone mode, click returns the code of a ``typer.Exit`` instead of
        # exiting: pass it on, so "blocked by the policy" really exits 1.
        code = app(args=argv, standalone_mode=False)
    except AssayError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        if isinstance(exc, _usage_error_types()):
            exc.show()  # type: ignore[attr-defined]
            code = exc.exit_code  # type: ignore[attr-defined]
            sys.exit(2 if code not in (0, 1) else code or 2)
        raise
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
