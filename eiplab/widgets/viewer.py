"""ipywidgets + nglview panels for looking at configurations in JupyterLab."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np

from .. import keys
from ..data import ConfigSet
from ..eips import spec_for

if TYPE_CHECKING:
    import ase
    import nglview


def _nglview():
    """nglview, imported lazily (heavy, and only needed in interactive sessions) and without the
    ``pkg_resources`` deprecation warning its 3.1 release raises on import: a red box above the
    first picker that says nothing to the user (nglview's own import, not eiplab's use)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import nglview
    return nglview


def show_config(atoms: ase.Atoms, repeat: int = 1) -> nglview.NGLWidget:
    """An nglview widget showing one configuration (periodic cells repeated ``repeat`` times)."""
    nglview = _nglview()
    shown = atoms.repeat([repeat if p else 1 for p in atoms.pbc]) if repeat > 1 else atoms
    view = nglview.show_ase(shown)
    view.add_unitcell()
    view.add_ball_and_stick()
    return view


def describe_config(atoms: ase.Atoms) -> str:
    """A short HTML description: id, formula, phase, DFT and EIP energies per atom."""
    n = len(atoms)
    lines = [
        f"<b>{atoms.info[keys.CONFIG_ID]}</b>: {atoms.get_chemical_formula()} ({n} atoms), "
        f"phase {atoms.info.get(keys.PHASE, 'unknown')}, pbc {atoms.pbc.tolist()}"
    ]
    e = atoms.info.get(keys.ENERGY_DFT)
    if e is not None:
        lines.append(f"E_DFT = {e:.4f} eV ({e / n:.4f} eV/atom)")
    for model, ek in sorted(atoms.info.get(keys.ENERGY_EIP, {}).items()):
        name = spec_for(model).name  # the short name shown in every table (the id for other models)
        lines.append(f"{name}: {ek:.4f} eV ({ek / n:.4f} eV/atom)" if np.isfinite(ek) else f"{name}: failed")
    return "<br>".join(lines)


def config_picker(configs: ConfigSet, repeat: int = 2) -> widgets.VBox:
    """A phase filter + config dropdown that shows the chosen configuration in nglview."""
    phases = ["all"] + sorted({a.info.get(keys.PHASE, "unknown") for a in configs})
    phase_w = widgets.Dropdown(options=phases, value="all", description="phase")
    config_w = widgets.Dropdown(options=configs.ids[:2000], description="config")
    repeat_w = widgets.IntSlider(value=repeat, min=1, max=4, description="repeat")
    info = widgets.HTML()
    box = widgets.VBox()
    by_id = configs.by_id()

    def ids_for(phase: str) -> list[str]:
        ids = [a.info[keys.CONFIG_ID] for a in configs if phase == "all" or a.info.get(keys.PHASE) == phase]
        return ids[:2000]  # a dropdown of thousands of entries is unusable; filter by phase first

    def redraw(*_):
        atoms = by_id[config_w.value]
        info.value = describe_config(atoms)
        box.children = [widgets.HBox([phase_w, config_w, repeat_w]), info, show_config(atoms, repeat_w.value)]

    def on_phase(change):
        config_w.options = ids_for(change["new"])

    phase_w.observe(on_phase, names="value")
    config_w.observe(redraw, names="value")
    repeat_w.observe(redraw, names="value")
    redraw()
    return box
