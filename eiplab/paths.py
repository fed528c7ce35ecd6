"""Default folders (cache), overridable with environment variables."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Cache root: ``$EIPLAB_CACHE`` or ``~/.cache/eiplab`` (EIP energies, SOAP features)."""
    return Path(os.environ.get("EIPLAB_CACHE", Path.home() / ".cache" / "eiplab"))
