"""While a command runs, the garbage collector collects in larger steps; afterwards
the process's own setting is back (the CLI is also called in-process, by tests and
by scripts)."""

from __future__ import annotations

import gc

import pytest

import assay.cli as cli


def test_threshold_raised_during_a_command_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []

    def command(*args: object, **kwargs: object) -> int:
        seen.append(gc.get_threshold())
        return 0

    before = gc.get_threshold()
    monkeypatch.setattr(cli, "app", command)
    cli.main(["--version"])
    assert seen == [tuple(max(a, b) for a, b in zip(before, cli.GC_THRESHOLDS, strict=True))]
    assert gc.get_threshold() == before


def test_restored_when_the_command_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def command(*args: object, **kwargs: object) -> int:
        raise cli.AssayError("bad input")

    before = gc.get_threshold()
    monkeypatch.setattr(cli, "app", command)
    with pytest.raises(SystemExit) as exc:
        cli.main(["certify"])
    assert exc.value.code == 2
    assert gc.get_threshold() == before


def test_a_higher_threshold_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    before = gc.get_threshold()
    monkeypatch.setattr(cli, "app", lambda *a, **k: seen.append(gc.get_threshold()[0]) or 0)
    gc.set_threshold(cli.GC_THRESHOLDS[0] * 3, *before[1:])
    try:
        cli.main(["--version"])
    finally:
        gc.set_threshold(*before)
    assert seen == [cli.GC_THRESHOLDS[0] * 3]


def test_objects_are_frozen_at_exit_not_during_the_run() -> None:
    """At exit the collector's permanent generation holds the process's objects, so the
    shutdown's full collections do not traverse them; an in-process caller of ``main``
    is not frozen while it runs."""
    import subprocess
    import sys

    script = (
        "import atexit, gc\n"
        # registered before main(): atexit runs it after assay's own handler
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "import assay.cli as cli\n"
        "cli.main(['--version'])\n"
        "print('frozen after main:', gc.get_freeze_count() > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert proc.stdout.splitlines()[-2:] == ["frozen after main: False",
                                             "frozen at exit: True"], proc.stdout + proc.stderr


def test_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import atexit

    registered: list[object] = []
    monkeypatch.setattr(cli, "_EXIT_FREEZE", False)
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(cli, "app", lambda *a, **k: 0)
    cli.main(["--version"])
    cli.main(["--version"])
    assert registered == [gc.freeze]
