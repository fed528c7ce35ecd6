"""What made a stored result: its inputs, kept next to it, so it is reused only when they match.

Every stored intermediate of a grid (an LA classifier and its pool selection, an MP backbone,
one alpha's fit, a confidence-group fit, a run's result) has a folder; ``made_with.json`` in it
holds the inputs that produced it (settings, EIP ids, a fingerprint of the split, the
fingerprints of the intermediates it was built from). Before a stored result is reused, the
inputs of the current call are compared with it: a difference (tau changed, other EIPs, another
split, other training settings) means the result is redone, never silently reused.

Low level (like :mod:`eiplab.atomic_io`): imports nothing of eiplab's method.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .atomic_io import write_text_atomic

MADE_WITH_FILE = "made_with.json"
NO_RECORD = "no record of the inputs that made it"


def canonical(value: Any) -> Any:
    """``value`` as plain JSON types (tuples as lists, numpy scalars as Python numbers)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot record {type(value).__name__} {value!r} as an input")


def fingerprint(value: Any) -> str:
    """A stable 16-hex-digit hash of ``value`` (canonical JSON, sorted keys)."""
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """Fingerprint of (key, value) string pairs in any order (e.g. a split: config_id -> part)."""
    return fingerprint(sorted((str(k), str(v)) for k, v in pairs))


def read_made_with(folder: str | Path) -> dict | None:
    """The inputs stored in ``folder`` (None when it holds no record)."""
    path = Path(folder) / MADE_WITH_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_made_with(folder: str | Path, inputs: Mapping[str, Any]) -> Path:
    """Store ``inputs`` in ``folder`` (atomically)."""
    return write_text_atomic(Path(folder) / MADE_WITH_FILE, json.dumps(canonical(dict(inputs)), indent=2, sort_keys=True))


def differences(stored: Mapping[str, Any] | None, inputs: Mapping[str, Any]) -> str | None:
    """Why ``stored`` inputs are not ``inputs`` (None when they match), naming what changed."""
    if stored is None:
        return NO_RECORD
    old_flat, new_flat = _flatten(stored), _flatten(canonical(dict(inputs)))
    changed = [f"{key}: {_short(old_flat.get(key))} -> {_short(new_flat.get(key))}"
               for key in sorted(set(old_flat) | set(new_flat)) if old_flat.get(key) != new_flat.get(key)]
    return "; ".join(changed) if changed else None


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys (``train.epochs``), so a difference names its field."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            flat.update(_flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def mismatch(folder: str | Path, inputs: Mapping[str, Any]) -> str | None:
    """Why the result stored in ``folder`` was made with other inputs (None when they match)."""
    return differences(read_made_with(folder), inputs)


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."
