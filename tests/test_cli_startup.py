"""`assay --help` and every command's --help load nothing heavy.

Help must be instant on any machine, so the command line imports the domain
(and with it NumPy, pandas, SQLAlchemy...) only inside the command that runs.
The test runs in a fresh interpreter: it walks the whole command tree, asks
every command and subcommand for its help, and records which heavy package
each one loaded. It asserts behaviour (what is imported), not timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("pydantic", "numpy", "pandas", "pyarrow", "scipy", "sklearn", "sqlalchemy", "alembic",
         "psycopg", "matplotlib", "fastapi", "starlette", "uvicorn", "joblib", "jinja2",
         "httpx", "cryptography", "argon2", "statsmodels", "PIL", "yaml",
         # typer's help formatter imports these for markdown help and pretty tracebacks,
         # which assay does not use; rich.progress is for certify's progress bar only
         "markdown_it", "pygments", "rich.markdown", "rich.traceback", "rich.progress")

PROBE = textwrap.dedent("""
    import contextlib, io, json, sys

    HEAVY = set(sys.argv[1].split(","))

    def heavy():
        return sorted(name for name in sys.modules
                      if name in HEAVY or name.split(".")[0] in HEAVY)

    from assay.cli import app, main
    report = {"import assay.cli": heavy(), "helps": {}, "bad": {}}

    # ``assay --help`` alone: which command modules it imported (none should be)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(["--help"])
        except SystemExit:
            pass
    report["root help modules"] = sorted(
        name for name in sys.modules if name.startswith("assay.cli.")) + heavy()

    import typer.main

    def walk(command, path):
        yield path
        if hasattr(command, "list_commands"):
            for name in sorted(command.list_commands(None)):
                yield from walk(command.get_command(None, name), [*path, name])

    paths = list(walk(typer.main.get_command(app), []))
    for path in [*paths, ["--version"]]:
        args = path if path == ["--version"] else [*path, "--help"]
        out = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code
        text = out.getvalue()
        key = " ".join(["assay", *args])
        report["helps"][key] = heavy()
        expected = "assay" if path == ["--version"] else "Usage"
        if code not in (0, None) or expected not in text:
            report["bad"][key] = [code, text[-500:]]
    print(json.dumps(report))
""")


def _probe() -> dict:
    src = Path(__file__).resolve().parent.parent / "src"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "100"
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_of_every_command_imports_nothing_heavy():
    report = _probe()
    assert report["import assay.cli"] == [], \
        f"importing the command line loads {report['import assay.cli']}"
    # ``assay --help`` is drawn from the table of commands: no command module is imported
    assert report["root help modules"] == [], report["root help modules"]
    helps = report["helps"]
    # the walk reached every group and subcommand (a vacuous walk would pass)
    for key in ("assay --help", "assay certify --help", "assay policy show --help",
                "assay model register --help", "assay risk assess --help",
                "assay audit verify --help", "assay token create --help",
                "assay approve --help", "assay serve --help", "assay --version"):
        assert key in helps, sorted(helps)
    assert len(helps) >= 50, sorted(helps)
    assert report["bad"] == {}, report["bad"]
    # modules only accumulate: report the first command whose help loaded something
    loaded = {key: mods for key, mods in helps.items() if mods}
    first = next(iter(loaded.items()), None)
    assert first is None, f"{first[0]} imports {first[1]}"


def test_the_table_of_commands_is_what_the_command_modules_register():
    """``assay --help`` lists the commands from ``assay.cli.COMMANDS`` and builds a command
    from the modules the table names: the table must say exactly what the modules define."""
    import inspect

    import typer.main

    from assay.cli import COMMANDS, build_app, build_command

    full = typer.main.get_command(build_app())
    listed = []
    for name, command in full.commands.items():
        panel = getattr(command, "rich_help_panel", None)
        text = inspect.cleandoc(command.short_help or command.help or "")
        listed.append((name, panel if isinstance(panel, str) else None,
                       text.split("\n\n")[0].strip()))
    assert [(name, panel, text) for name, _, panel, text in COMMANDS] == listed
    # every command built lazily has the same parameters and subcommands as the full build
    for name, _, _, _ in COMMANDS:
        lazy, eager = build_command(name), full.commands[name]
        assert type(lazy) is type(eager), name
        assert [p.name for p in lazy.params] == [p.name for p in eager.params], name
        assert sorted(getattr(lazy, "commands", {})) == sorted(getattr(eager, "commands", {})), name


def test_assay_help_is_the_help_of_the_full_command_tree(capsys, monkeypatch):
    import typer.main

    from assay.cli import app, build_app

    monkeypatch.setenv("COLUMNS", "100")
    helps = []
    for typer_app in (app, build_app()):
        with pytest.raises(SystemExit):
            typer.main.get_command(typer_app).main(["--help"], prog_name="assay")
        helps.append(capsys.readouterr().out)
    lazy, eager = helps
    assert "certify" in lazy and "Approval workflow" in lazy and "Monitoring" in lazy
    assert "--version" in lazy
    assert lazy == eager


def test_the_help_formatter_still_renders_markdown_and_tracebacks_when_asked():
    """``rich.markdown`` and ``rich.traceback`` are imported on first use, not dropped."""
    code = textwrap.dedent("""
        import contextlib, io, sys
        from assay.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main(["--help"])
            except SystemExit:
                pass
        assert "Usage" in out.getvalue()
        assert "rich.markdown" not in sys.modules and "rich.traceback" not in sys.modules
        import typer.rich_utils as ru
        from rich.markdown import Markdown
        from rich.traceback import Traceback
        assert isinstance(ru._make_rich_text(text="*x*", markup_mode="markdown"), Markdown)
        try:
            1 / 0
        except ZeroDivisionError as exc:
            tb = ru.Traceback.from_exception(type(exc), exc, exc.__traceback__)
        assert isinstance(tb, Traceback)
        print("ok")
    """)
    src = Path(__file__).resolve().parent.parent / "src"
    env = dict(os.environ, PYTHONPATH=str(src))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
