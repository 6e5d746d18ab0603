"""What the browser tests share: where Chromium is, how it is started, where screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: Debian's Chromium (scripts/test installs it); ASSAY_CHROMIUM points elsewhere.
CHROMIUM = os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium")
#: Screenshots the browser tests leave for people to look at (git ignores the folder).
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
#: Headless Chromium without anything that reaches the network or needs a GPU.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage"]


def need_chromium() -> None:
    """Skip the calling test when there is no Chromium to drive."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
