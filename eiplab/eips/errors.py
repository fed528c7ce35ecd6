"""Exceptions raised by :mod:`eiplab.eips` (one base class, one subclass per failure kind)."""

from __future__ import annotations


class EIPError(Exception):
    """Base class of every error raised by :mod:`eiplab.eips`."""


class ModelNotFoundError(EIPError, LookupError):
    """A model id is neither installed in a KIM collection nor registered as a non-KIM EIP."""


class SimulatorModelError(EIPError, ValueError):
    """A KIM *simulator* model (``Sim_..._SM_...``) was requested; these do not load via kimpy."""


class SpeciesNotSupportedError(EIPError, ValueError):
    """A configuration holds an element the model does not support."""


class KIMError(EIPError, RuntimeError):
    """The KIM API (through kimpy) failed; the message names the model id and the cause."""


class AlignmentError(EIPError, ValueError):
    """Per-species energy offsets cannot be fitted (e.g. compositions do not identify them)."""


class AlignmentWarning(UserWarning):
    """An offset fit finished without converging (the message names the EIP): its offsets may be
    off; look at that EIP's residuals (a few huge failures, too few configs)."""


class LeakageError(EIPError, ValueError):
    """A model was fitted on the very dataset it is asked to serve as an EIP for."""
