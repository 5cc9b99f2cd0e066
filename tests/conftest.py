"""Suite-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# In CI, property tests use a fixed sequence of examples so a run is reproducible; locally they
# explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
