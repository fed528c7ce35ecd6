"""The resumable DFT store: one JSON line per finished configuration, appended and fsynced.

A record is found by (config id, structure hash, settings digest): a config whose structure or
settings changed is computed again. An interrupted write leaves at most one partial last line,
which :meth:`DFTStore.load` drops (that config is computed again).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DFTRecord:
    """One DFT result (or failure).

    Attributes:
        config_id: the config's id.
        structure_hash: :func:`eiplab.data.hashing.config_hash` of the structure.
        settings_digest: :meth:`DFTSettings.digest` of the settings used.
        energy: total energy, eV (GPAW ``get_potential_energy``: extrapolated to zero
            smearing); NaN when the calculation failed.
        free_energy: Fermi-Dirac free energy, eV (NaN when failed).
        forces: [n_atoms][3] eV/Angstrom, consistent with ``free_energy`` (None when failed).
        status: ``"ok"`` or ``"failed"``.
        reason: why it failed (exception type and message), else None.
        seconds: wall time of the calculation, s.
        cpu_seconds: CPU time of the calculating process, s (comparable on a busy machine).
        kpts: the Monkhorst-Pack grid used.
        n_atoms: atom count.
        settings: the full settings (:meth:`DFTSettings.as_dict`).
        code: code versions (``{"gpaw": ..., "ase": ...}``).
    """

    config_id: str
    structure_hash: str
    settings_digest: str
    energy: float
    free_energy: float
    forces: list[list[float]] | None
    status: str
    reason: str | None
    seconds: float
    cpu_seconds: float
    kpts: list[int]
    n_atoms: int
    settings: dict[str, Any] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        """Store key: (config id, structure hash, settings digest)."""
        return (self.config_id, self.structure_hash, self.settings_digest)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and math.isfinite(self.energy)

    def to_json(self) -> str:
        d = asdict(self)
        for k in ("energy", "free_energy"):  # JSON has no NaN: store null
            if not math.isfinite(d[k]):
                d[k] = None
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> DFTRecord:
        d = json.loads(line)
        for k in ("energy", "free_energy"):
            d[k] = float("nan") if d[k] is None else float(d[k])
        return cls(**d)


class DFTStore:
    """Append-only JSON-lines file of :class:`DFTRecord` (one line per finished config).

    Args:
        path: the ``.jsonl`` file (its folder is created).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self, repair: bool = True) -> dict[tuple[str, str, str], DFTRecord]:
        """All complete records by key (a later record of the same key wins).

        A partial last line (a write cut by a kill) is dropped and, with ``repair``, truncated
        away, so the next append starts on a fresh line. ``repair=False`` only reads: for a
        reader beside a running writer, whose last line may be half written.
        """
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        records: dict[tuple[str, str, str], DFTRecord] = {}
        good_end = 0
        pos = 0
        for line in raw.splitlines(keepends=True):
            pos += len(line)
            if not line.endswith(b"\n"):
                break
            try:
                rec = DFTRecord.from_json(line.decode())
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(
                    f"{self.path}: unreadable record at byte {pos - len(line)}: {e}"
                ) from e
            records[rec.key] = rec
            good_end = pos
        if repair and good_end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
        return records

    def append(self, record: DFTRecord) -> None:
        """Write one record and fsync it (it survives a kill right after)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(record.to_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
