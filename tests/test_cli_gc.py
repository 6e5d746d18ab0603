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
