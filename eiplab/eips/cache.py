"""On-disk cache of EIP energies (and forces), keyed by a configuration's content hash and the model id.

Layout: ``<cache_dir>/<model_id>/chunk-<digest>.json``, each file one finished chunk::

    {"format": 2, "model_id": "...",
     "entries": [[config_hash, energy_eV_or_null, reason_or_null, forces_or_null], ...]}

``forces`` is the flat list of the config's forces (eV/Angstrom, row-major [n_atoms, 3]) when
they were asked for, else null. Format 1 (eiplab before forces: three fields per entry, energies
only) is read as format 2 without forces -- those configs' energies are reused and their forces
computed when first asked for; a newer format is refused with a clear error (update eiplab or
use another cache folder).

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

FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: energies only (three fields per entry)
__all__ = ["FORMAT", "CacheFormatError", "LabelCache", "config_hash"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

#: (energy eV or NaN, failure reason or None, forces [n_atoms, 3] eV/Angstrom or None)
Entry = tuple[float, str | None, np.ndarray | None]
Row = tuple  # (config hash, energy eV or NaN, reason or None[, forces [n_atoms, 3] or None])


class CacheFormatError(ValueError):
    """A cache chunk written by a newer eiplab (format unknown to this one)."""


def _forces(value: object) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=float).reshape(-1, 3)


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
        """All cached entries of one model: config hash -> (energy eV or NaN, reason or None,
        forces [n_atoms, 3] eV/Angstrom or None). An entry with forces wins over one without.

        Raises:
            CacheFormatError: a chunk of a format this eiplab does not know (a newer one).
        """
        out: dict[str, Entry] = {}
        for path in self.chunk_files(model_id):
            try:
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
                version = doc.get("format")
                if isinstance(version, int) and version > FORMAT:
                    raise CacheFormatError(
                        f"EIP label cache {path} has format {version}, newer than this eiplab's {FORMAT}: "
                        f"update eiplab, or label into another cache folder")
                if version not in READABLE_FORMATS or doc.get("model_id") != model_id:
                    raise ValueError("unexpected format or model id")
                entries = [
                    (str(row[0]), float("nan") if row[1] is None else float(row[1]),
                     None if row[2] is None else str(row[2]), _forces(row[3]) if len(row) > 3 else None)
                    for row in doc["entries"]
                ]
            except CacheFormatError:
                raise
            except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
                log.warning("ignoring unreadable cache file %s (%s)", path, e)
                continue
            for h, e, r, f in entries:
                # an entry whose forces were evaluated (forces, or a failure reason) beats an energy-only one
                if h not in out or (out[h][1] is None and out[h][2] is None and (f is not None or r is not None)):
                    out[h] = (e, r, f)
        return out

    def write_chunk(self, model_id: str, entries: Iterable[Row]) -> Path:
        """Write one finished chunk atomically; returns its path.

        ``entries``: (config hash, energy eV or NaN, failure reason or None[, forces
        [n_atoms, 3] eV/Angstrom or None]).
        """
        rows = [[r[0], None if not np.isfinite(r[1]) else float(r[1]), r[2],
                 None if len(r) < 4 or r[3] is None else np.asarray(r[3], dtype=float).ravel().tolist()]
                for r in entries]
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
