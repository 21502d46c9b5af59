"""Tests that need a part of the machine Python does not install (ffmpeg, a PostgreSQL server).

On a developer's machine without it such a test is skipped, saying what to install; under CI
(``.ci/run`` sets ``VOICETAP_REQUIRE_SYSTEM_PARTS=1`` after installing them) a missing part is a
failure, so a suite that silently skipped them can never pass for green.
"""

import os

import pytest

REQUIRE_ENV = "VOICETAP_REQUIRE_SYSTEM_PARTS"


def missing(part: str, how: str) -> None:
    """Skip (or, when the parts are required, fail) a test that needs ``part``."""
    message = f"{part} is not available: {how}"
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{message} ({REQUIRE_ENV} is set, so this is a failure)")
    pytest.skip(message)
