"""The documentation describes what exists: every error code has its section."""

from __future__ import annotations

import re

from rtp.errors import CODES
from tests.conftest import ROOT


def test_every_error_code_is_documented():
    text = (ROOT / "docs" / "errors.md").read_text()
    documented = dict(re.findall(r"^### (RTP\d{3}) (.+)$", text, re.M))
    assert documented == CODES
