"""Suite-wide settings: hypothesis runs without per-example deadlines on loaded CI machines."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# `tests.helpers` is imported as `helpers` from every suite.
sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile("roost", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("roost")
