"""On-disk cache of EIP energies, keyed by a configuration's content hash and the model id.

Layout: ``<cache_dir>/<model_id>/chunk-<digest>.json``, each file one finished chunk::

    {"format": 1, "model_id": "...", "entries": [[config_hash, energy_eV_or_null, reason_or_null], ...]}

A chunk is written to a temporary file in the same folder and renamed over its final name
(``os.replace``, atomic on POSIX), so a reader sees a whole chunk or none: a killed process
loses at most the chunks in progress. There is no fsync (it cost ~5 ms a chunk here): after an
OS crash or power loss a chunk may be empty or truncated, and files that do not parse are
skipped with a warning (never trusted) and recomputed. Leftover temporary files are ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..data.hashing import config_hash

log = logging.getLogger(__name__)

FORMAT = 1
__all__ = ["FORMAT", "LabelCache", "config_hash"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

Entry = tuple[float, str | None]  # (energy eV or NaN, failure reason or None)


class LabelCache:
    """Chunked, atomically written cache of EIP energies under ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def model_dir(self, model_id: str) -> Path:
        """Folder holding the chunks of one model."""
        return self.root / _SAFE.sub("_", model_id)

    def chunk_files(self, model_id: str) -> list[Path]:
        """Finished chunk files of one model (sorted by name)."""
        d = self.model_dir(model_id)
        return sorted(d.glob("chunk-*.json")) if d.is_dir() else []

    def load(self, model_id: str) -> dict[str, Entry]:
        """All cached entries of one model: config hash -> (energy eV or NaN, reason or None)."""
        out: dict[str, Entry] = {}
        for path in self.chunk_files(model_id):
            try:
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
                if doc.get("format") != FORMAT or doc.get("model_id") != model_id:
                    raise ValueError("unexpected format or model id")
                entries = [
                    (str(h), float("nan") if e is None else float(e), r)
                    for h, e, r in doc["entries"]
                ]
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("ignoring unreadable cache file %s (%s)", path, e)
                continue
            for h, e, r in entries:
                out[h] = (e, None if r is None else str(r))
        return out

    def write_chunk(self, model_id: str, entries: Iterable[tuple[str, float, str | None]]) -> Path:
        """Write one finished chunk atomically; returns its path.

        ``entries``: (config hash, energy eV or NaN, failure reason or None).
        """
        rows = [[h, None if not np.isfinite(e) else float(e), r] for h, e, r in entries]
        digest = hashlib.blake2b(
            "".join(sorted(r[0] for r in rows)).encode(), digest_size=10
        ).hexdigest()
        d = self.model_dir(model_id)
        d.mkdir(parents=True, exist_ok=True)
        final = d / f"chunk-{digest}.json"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-chunk-", suffix=".json", dir=d)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps({"format": FORMAT, "model_id": model_id, "entries": rows}))  # dumps: C encoder
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return final
