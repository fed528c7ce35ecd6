"""The one KIM boundary: a KIM portable model driven directly through kimpy.

kimpy is imported lazily (importing :mod:`eiplab.eips` never needs it). Every kimpy call that
can fail goes through :func:`_checked`, which raises :class:`KIMError` naming the model id,
``from`` the original exception. Units are requested once: Angstrom, eV, e, K, ps. The rest
of eiplab sees numpy arrays and floats in eV.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from .configs import Config
from .errors import KIMError, SpeciesNotSupportedError
from .neighbours import KIMParticles, kim_particles
from .registry import resolve

T = TypeVar("T")
_EMPTY = np.zeros(0, dtype=np.intc)
#: The KIM API's log file (written in the working directory).
KIM_LOG = "kim.log"
#: The KIM API's own line when a model's Compute() fails (KIM_ModelImplementation.cpp).
_COMPUTE_FAILED = "Compute() routine returned error"


def log_size(path: str | os.PathLike = KIM_LOG) -> int:
    """Bytes in the KIM API log now (0 when there is none): where the next call's lines start."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def model_error_from_log(
    path: str | os.PathLike = KIM_LOG, start: int = 0, tail_bytes: int = 65_536
) -> str | None:
    """The model's own reason for a failed Compute(), from the KIM API log, or None.

    The KIM API's exception only says that the model's routine returned an error; the model
    writes why to the log (e.g. an EAM: "Particle has density value outside of embedding function
    interpolation domain"). Log lines read ``time * n * level * log-id * source:line * message``;
    the reason is the last error line a model source (not the KIM API's own ``KIM_*`` files)
    wrote under the same log id before the API's last "Compute() routine returned error".

    Args:
        path: the log (the working directory's ``kim.log``).
        start: read only what was written from this byte on (:func:`log_size` taken just before
            the call), so an earlier failure -- another run's, another worker's -- is not reported.
        tail_bytes: read at most this many bytes from the end.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(start, f.tell() - tail_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    fields = [[part.strip() for part in line.split(" * ", 5)] for line in lines]
    failed = [k for k, f in enumerate(fields) if len(f) == 6 and f[2] == "error" and _COMPUTE_FAILED in f[5]]
    if not failed:
        return None
    log_id = fields[failed[-1]][3]
    for f in reversed(fields[: failed[-1]]):
        if len(f) == 6 and f[2] == "error" and f[3] == log_id and not f[4].startswith("KIM_"):
            return f[5]
    return None


@functools.cache
def kimpy_module() -> Any:
    """The kimpy module (imported on first use).

    Raises:
        ImportError: kimpy (or the KIM API it binds) is not installed.
    """
    try:
        import kimpy
    except ImportError as e:
        raise ImportError(
            "kimpy is not importable: install the KIM API (Debian libkim-api-dev) and "
            "`pip install kimpy` (see scripts/setup.sh)"
        ) from e
    return kimpy


@contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Silence what model libraries print to the process's stdout/stderr while they load
    (some EAM drivers print their parameter files' headers)."""
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        _flush_c_stdio()  # C++ libraries buffer their output: flush it into /dev/null, not after
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach (not on Linux/macOS): nothing buffered there
        pass


def _checked(model_id: str, what: str, f: Callable[..., T], *args: Any) -> T:
    """Call a kimpy function; turn its RuntimeError into a KIMError naming the model."""
    try:
        return f(*args)
    except RuntimeError as e:
        raise KIMError(f"KIM model {model_id}: {what} failed: {e}") from e


def _get_neighbours(
    data: dict, cutoffs: np.ndarray, list_index: int, particle: int
) -> tuple[np.ndarray, int]:
    """kimpy GetNeighborList callback: a view into the current CSR list (error code 1 if none).

    The returned int32 array must outlive the call: it is a view of the particles' lists,
    which the model keeps alive until the next configuration.
    """
    p: KIMParticles = data["particles"]
    if 0 <= particle < p.n_contributing:
        lists = p.lists
    elif p.n_contributing <= particle < p.n_listed:
        lists = p.all_lists()
    else:
        return _EMPTY, 1
    if list_index >= len(lists):
        return _EMPTY, 1
    neighbours, ptr = lists[list_index]
    return neighbours[ptr[particle] : ptr[particle + 1]], 0


class KIMModel:
    """A KIM portable model, created once and evaluated on many configurations.

    Args:
        model_id: KIM ID; a different installed version is accepted (see
            :func:`eiplab.eips.resolve`).

    Attributes:
        model_id: the installed KIM ID actually loaded.
        species: element symbols the model supports, sorted.
        influence_distance: Angstrom.
        cutoffs: [n_lists] Angstrom, the neighbour-list cutoffs.
        padding_needs_neighbours: whether the model asks for neighbours of padding atoms.

    Raises:
        ModelNotFoundError, SimulatorModelError: from :func:`resolve`.
        KIMError: the KIM API could not create the model (``ModelCreate failed``) or the model
            needs compute arguments/callbacks eiplab does not provide.
    """

    def __init__(self, model_id: str) -> None:
        kimpy = kimpy_module()
        self.model_id = resolve(model_id)
        mid = self.model_id
        try:
            with _quiet_native_output():  # some drivers print their parameter files' headers
                accepted, self._model = kimpy.model.create(
                    kimpy.numbering.zeroBased,
                    kimpy.length_unit.A,
                    kimpy.energy_unit.eV,
                    kimpy.charge_unit.e,
                    kimpy.temperature_unit.K,
                    kimpy.time_unit.ps,
                    mid,
                )
        except RuntimeError as e:
            raise KIMError(
                f"KIM model {mid}: ModelCreate failed ({e}). The model or its driver could not "
                "be loaded; see kim.log in the working directory for the KIM API's reason"
            ) from e
        if not accepted:
            raise KIMError(f"KIM model {mid} does not accept the units A, eV, e, K, ps")

        self.influence_distance = float(
            _checked(mid, "get_influence_distance", self._model.get_influence_distance)
        )
        cutoffs, hints = _checked(
            mid,
            "get_neighbor_list_cutoffs_and_hints",
            self._model.get_neighbor_list_cutoffs_and_hints,
        )
        self.cutoffs = np.asarray(cutoffs, dtype=np.float64)
        self.padding_needs_neighbours = not bool(np.all(hints))

        self._codes = np.full(len(chemical_symbols), -1, dtype=np.intc)
        for symbol in chemical_symbols[1:]:
            name = getattr(kimpy.species_name, symbol, None)
            if name is None:
                continue
            supported, code = _checked(
                mid, "get_species_support_and_code", self._model.get_species_support_and_code, name
            )
            if supported:
                self._codes[atomic_numbers[symbol]] = code
        self.species = sorted(chemical_symbols[z] for z in np.flatnonzero(self._codes >= 0))

        self._args = _checked(mid, "compute_arguments_create", self._model.compute_arguments_create)
        self._forces_required = self._check_arguments(kimpy)
        self._neigh: dict[str, Any] = {"particles": None}
        _checked(
            mid,
            "set_callback(GetNeighborList)",
            self._args.set_callback,
            kimpy.compute_callback_name.GetNeighborList,
            _get_neighbours,
            self._neigh,
        )
        self._energy = np.zeros(1, dtype=np.float64)  # eV
        self._n_particles = np.zeros(1, dtype=np.intc)
        self._names = kimpy.compute_argument_name
        self._forces_set = False
        for name, ptr in (
            (self._names.numberOfParticles, self._n_particles),
            (self._names.partialEnergy, self._energy),
        ):
            _checked(
                mid, f"set_argument_pointer({name})", self._args.set_argument_pointer, name, ptr
            )
        _checked(
            mid,
            "set_argument_null_pointer(partialForces)",
            self._args.set_argument_null_pointer,
            self._names.partialForces,
        )
        self._buffers: tuple[np.ndarray, ...] = ()

    def _check_arguments(self, kimpy: Any) -> bool:
        """Refuse models needing arguments we do not provide; return whether forces are required."""
        can_provide = {"partialEnergy", "partialForces"}
        required = kimpy.support_status.required
        not_supported = kimpy.support_status.notSupported
        forces_required = False
        for k in range(kimpy.compute_argument_name.get_number_of_compute_argument_names()):
            name = kimpy.compute_argument_name.get_compute_argument_name(k)
            status = _checked(
                self.model_id,
                "get_argument_support_status",
                self._args.get_argument_support_status,
                name,
            )
            if str(name) == "partialEnergy" and status == not_supported:
                raise KIMError(f"KIM model {self.model_id} cannot compute energies")
            if str(name) == "partialForces" and status == required:
                forces_required = True
            elif status == required and str(name) not in can_provide:
                raise KIMError(f"KIM model {self.model_id} requires compute argument {name}")
        for k in range(kimpy.compute_callback_name.get_number_of_compute_callback_names()):
            name = kimpy.compute_callback_name.get_compute_callback_name(k)
            status = _checked(
                self.model_id,
                "get_callback_support_status",
                self._args.get_callback_support_status,
                name,
            )
            if status == required and str(name) != "GetNeighborList":
                raise KIMError(f"KIM model {self.model_id} requires callback {name}")
        return forces_required

    def supports(self, numbers: np.ndarray) -> bool:
        """Whether every atomic number in ``numbers`` is a species of this model."""
        numbers = np.asarray(numbers)
        return bool(self._codes[numbers].min() >= 0) if numbers.size else True

    def check_species(self, atoms: Config) -> None:
        """Raise :class:`SpeciesNotSupportedError` when ``atoms`` holds an unsupported element."""
        numbers = atoms.numbers
        if not self.supports(numbers):
            missing = sorted({chemical_symbols[z] for z in numbers if self._codes[z] < 0})
            raise SpeciesNotSupportedError(
                f"KIM model {self.model_id} does not support species {missing} "
                f"(it supports {self.species})"
            )

    def _compute(self, atoms: Config, forces: bool) -> tuple[float, np.ndarray | None]:
        numbers = atoms.numbers
        if len(numbers) == 0:  # the KIM API cannot take zero particles
            return 0.0, np.zeros((0, 3)) if forces else None
        if not self.supports(numbers):
            self.check_species(atoms)
        particles: KIMParticles = kim_particles(
            atoms.positions,
            np.asarray(atoms.cell),
            atoms.pbc,
            self.influence_distance,
            self.cutoffs,
            self.padding_needs_neighbours,
        )
        n_all = len(particles.coords)
        n = particles.n_contributing
        species = self._codes[numbers[particles.image_of]]
        contributing = np.zeros(n_all, dtype=np.intc)
        contributing[:n] = 1
        coords = particles.coords
        f_all = np.zeros((n_all, 3)) if forces or self._forces_required else None
        self._neigh["particles"] = particles
        # Every array the KIM API points to stays alive until the next configuration;
        # numberOfParticles and partialEnergy point to fixed one-element arrays (see __init__).
        self._buffers = (species, contributing, coords, f_all)
        self._n_particles[0] = n_all
        self._energy[0] = 0.0
        names = self._names
        set_ptr = self._args.set_argument_pointer
        log_start = log_size()  # one stat per call: a failure's reason is read from here on
        try:
            set_ptr(names.particleSpeciesCodes, species)
            set_ptr(names.particleContributing, contributing)
            set_ptr(names.coordinates, coords)
            if f_all is not None:
                set_ptr(names.partialForces, f_all)
                self._forces_set = True
            elif self._forces_set:
                self._args.set_argument_null_pointer(names.partialForces)
                self._forces_set = False
            self._model.compute(self._args, False)
        except RuntimeError as e:
            reason = model_error_from_log(start=log_start)
            detail = (f"{reason} (the model's message in {KIM_LOG})" if reason else
                      f"the model returned an error, see {KIM_LOG}: {' '.join(str(e).split())}")
            raise KIMError(f"KIM model {self.model_id}: compute failed: {detail}") from e

        energy = float(self._energy[0])
        if not forces:
            return energy, None
        f = f_all[:n].copy()
        np.add.at(f, particles.image_of[n:], f_all[n:])
        return energy, f

    def energy(self, atoms: Config) -> float:
        """Total potential energy of ``atoms`` in eV (may be non-finite if the model diverges).

        Raises:
            SpeciesNotSupportedError: ``atoms`` holds an element the model lacks.
            KIMError: the model's compute routine failed.
        """
        return self._compute(atoms, forces=False)[0]

    def energy_and_forces(self, atoms: Config) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces ([n_atoms, 3], eV/Angstrom) of ``atoms``."""
        energy, forces = self._compute(atoms, forces=True)
        assert forces is not None
        return energy, forces

    def __repr__(self) -> str:
        return f"KIMModel({self.model_id!r})"
