"""An ASE calculator for a trained eiplab network: energy, forces and stress.

``NNCalculator.from_run(path)`` loads the best-validation network of a finished run (a model
file, or a run / fit folder holding ``model_best.pt``; loaded with ``weights_only=True``) and
gives, for any periodic or non-periodic ``ase.Atoms``:

- ``energy`` (eV): the network's total energy, per-species baseline included;
- ``forces`` (eV/Angstrom), float [n_atoms, 3]: ``-dE/dpositions`` by autograd, through the
  periodic images (edge vectors are recomputed from positions inside the model);
- ``stress`` (eV/Angstrom^3, Voigt order xx yy zz yz xz xy) for 3D-periodic cells: the
  derivative of E under a homogeneous strain of positions and cell, divided by the volume.

SOAPNet reads precomputed SOAP features and has no gradient with respect to positions: asking it
for forces or stress raises a clear error (its energies are available). Elements the network was
not trained on (no per-species baseline fitted for them) are refused, naming the elements.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

from .graphs import make_loader
from .graphs.build import CELL, POS
from .models import EnergyModel, load_model
from .training import BEST_MODEL_FILE, model_inputs, resolve_device
from .training.evaluate import energy_gradients


class NNCalculator(Calculator):
    """ASE calculator wrapping a trained :class:`eiplab.models.EnergyModel` (one energy output).

    Args:
        model: the trained network (e.g. ``fit.model`` of :func:`eiplab.training.fit_energy_model`).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: EnergyModel, device: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        if model.n_out != 1:
            raise ValueError(f"NNCalculator needs a 1-output energy network; this one has {model.n_out} outputs "
                             "(a pretraining or classifier head)")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.network = f"eiplab {model.config.name}"
        self.trained_species = {int(z) for z in torch.nonzero(model.baseline).flatten().tolist()}

    @classmethod
    def from_run(cls, path: str | Path, device: str = "auto") -> NNCalculator:
        """The calculator of a trained run: a model file, or a folder holding ``model_best.pt``
        (a run's fit folder; ``eiplab.workflows.RunStore.model_file`` finds it in a grid)."""
        path = Path(path)
        file = path / BEST_MODEL_FILE if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(f"no trained network at {file}: pass a model file or a fit folder with "
                                    f"{BEST_MODEL_FILE} (a finished run)")
        return cls(load_model(file, map_location="cpu"), device=device)

    @property
    def energy_only(self) -> bool:
        """True for SOAPNet (precomputed SOAP features: no forces or stress)."""
        return bool(getattr(self.model.config, "soap", None))

    def _check(self, atoms: Atoms, properties: list[str]) -> None:
        unknown = sorted(set(atoms.numbers.tolist()) - self.trained_species)
        if unknown:
            names = ", ".join(chemical_symbols[z] for z in unknown)
            trained = ", ".join(chemical_symbols[z] for z in sorted(self.trained_species))
            raise ValueError(f"{self.network} was not trained on {names} (trained on: {trained}); "
                             "train it on data with these elements or use an EIP for them")
        if self.energy_only and {"forces", "stress"} & set(properties):
            raise NotImplementedError(f"{self.network} reads precomputed SOAP features, which have no gradient with "
                                      "respect to positions: it gives energies only. Use SchNet, CGCNN or GemNet "
                                      "for forces and stress.")
        if "stress" in properties and not atoms.pbc.all():
            raise ValueError("stress needs a 3D-periodic cell (atoms.pbc all True)")

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        properties = list(properties or ["energy"])
        super().calculate(atoms, properties, system_changes)
        self._check(self.atoms, properties)
        graph = model_inputs([self.atoms], self.model.config, target=None)[0]
        batch = next(iter(make_loader([graph], 1))).to(self.device)
        want_forces = "forces" in properties or "stress" in properties
        pos = batch[POS]  # the leaf: dE/dpos is minus the forces
        strain = torch.zeros(3, 3, dtype=pos.dtype, device=self.device)
        if want_forces:
            pos.requires_grad_(True)
            if "stress" in properties:
                # a homogeneous strain of positions and cell (zero here): dE/dstrain / V is the stress
                strain.requires_grad_(True)
                batch[POS] = pos + pos @ strain
                batch[CELL] = batch[CELL].to(pos.dtype) + batch[CELL].to(pos.dtype) @ strain
        with torch.set_grad_enabled(want_forces):
            energy = self.model(batch)[0, 0]
        self.results["energy"] = self.results["free_energy"] = float(energy.detach())
        if not want_forces:
            return
        wrt = [pos, strain] if "stress" in properties else [pos]
        grads = energy_gradients(energy, wrt)
        self.results["forces"] = -grads[0].detach().cpu().numpy().astype(np.float64)
        if "stress" in properties:
            sigma = 0.5 * (grads[1] + grads[1].T).detach().cpu().numpy() / self.atoms.get_volume()
            self.results["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]].astype(np.float64)
