"""The report's compiled template is cached between processes, and the cache never
changes the report nor makes it fail."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from assay.report import html as report_html
from test_report import sample_results


def render(cache: Any) -> str:
    env = report_html._new_environment(cache)
    ctx = report_html.build_context(sample_results())
    return env.get_template("report.html.j2").render(**ctx)


@pytest.fixture(scope="module")
def uncached() -> str:
    return render(None)


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("assay-*.cache"))


def test_second_render_uses_the_cached_template(tmp_path: Path, uncached: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cache = report_html._TemplateCache(str(tmp_path), pattern="assay-%s.cache")
    assert render(cache) == uncached
    assert len(entries(tmp_path)) == 1

    def no_compile(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the template was compiled although a cached copy exists")

    env = report_html._new_environment(
        report_html._TemplateCache(str(tmp_path), pattern="assay-%s.cache"))
    monkeypatch.setattr(env, "compile", no_compile)
    ctx = report_html.build_context(sample_results())
    assert env.get_template("report.html.j2").render(**ctx) == uncached


def test_a_damaged_cache_entry_is_compiled_again(tmp_path: Path, uncached: str) -> None:
    render(report_html._TemplateCache(str(tmp_path), pattern="assay-%s.cache"))
    [entry] = entries(tmp_path)
    entry.write_bytes(b"not a compiled template")
    assert render(report_html._TemplateCache(str(tmp_path), pattern="assay-%s.cache")) \
        == uncached


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path: Path, uncached: str) -> None:
    missing = tmp_path / "no-such-directory"
    assert render(report_html._TemplateCache(str(missing), pattern="assay-%s.cache")) \
        == uncached
    assert not missing.exists()


def test_the_default_cache_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    cache = report_html._template_cache()
    assert cache is not None
    mode = Path(cache.directory).stat().st_mode  # type: ignore[attr-defined]
    assert stat.S_IMODE(mode) == 0o700


def test_no_safe_cache_directory_means_no_cache(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache directory that someone else could write is refused: compile instead."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("os.getuid", lambda: 4242)  # the directory's owner is someone else
    assert report_html._template_cache() is None
