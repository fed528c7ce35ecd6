"""``eiplab doctor``: check an installation and say, for each problem, the one-line fix.

Each check gives a :class:`Check` (name, status, what was found, the fix). ``required`` checks
make the command exit non-zero when they fail (the KIM API, kimpy, the built-in datasets' EIPs,
torch, Dask); the others warn (Jupyter kernel and front-end extensions, GPAW, CUDA, free disk).

The KIM checks read the installed models through kimpy (or ``kim-api-collections-management``);
``kim_collection=DIR`` reads a folder of model directories instead -- e.g. an empty one, to see
what a machine without ``openkim-models`` is told.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Check outcomes.
OK, WARN, FAIL = "ok", "warn", "FAIL"
#: Elements of the built-in mlearn datasets (their EIPs are discovered, not listed).
MLEARN_ELEMENTS = {"ge-mlearn": "Ge", "li-mlearn": "Li", "mo-mlearn": "Mo"}
#: Free space (GB) below which the cache folder gets a warning.
MIN_FREE_GB = 2.0
#: The Jupyter kernel scripts/setup.sh registers (the notebooks name it).
KERNEL = "eiplab"
APT_KIM = "apt-get install -y libkim-api-dev openkim-models pkg-config (or: make setup)"


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is OK, WARN or FAIL; ``fix`` a one-line remedy (empty when OK)."""

    name: str
    status: str
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _import_check(name: str, module: str, dist: str, fix: str, required: bool = True) -> Check:
    try:
        importlib.import_module(module)
    except Exception as exc:  # an import that fails for any reason is the finding
        return Check(name, FAIL if required else WARN, f"import {module} failed: {exc}", fix, required)
    return Check(name, OK, f"{dist} {_version(dist) or '?'}", required=required)


def check_kim_api() -> Check:
    """The KIM API library (its version from pkg-config or the collections tool)."""
    version = None
    if shutil.which("pkg-config"):
        out = subprocess.run(["pkg-config", "--modversion", "libkim-api"], capture_output=True, text=True)
        version = out.stdout.strip() or None
    tool = shutil.which("kim-api-collections-management")
    if version is None and tool:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True)
        version = (out.stdout or out.stderr).strip() or None
    if version is None:
        return Check("KIM API", FAIL, "libkim-api not found (pkg-config, kim-api-collections-management)", APT_KIM)
    return Check("KIM API", OK, f"libkim-api {version}")


def installed_models(kim_collection: str | Path | None = None) -> list[str]:
    """Installed portable KIM model ids: from the KIM API, or the model folders in ``kim_collection``."""
    if kim_collection is not None:
        return sorted(p.name for p in Path(kim_collection).iterdir() if p.is_dir())
    from .eips import list_installed

    return list_installed()


def _elements(model_id: str) -> set[str]:
    m = re.search(r"_([A-Za-z]+)__MO_", model_id)
    return set(re.findall(r"[A-Z][a-z]?", m.group(1))) if m else set()


def check_dataset_eips(installed: Sequence[str], use_discovery: bool) -> list[Check]:
    """Each Table-2 EIP of the paper's systems and the EIPs of the mlearn sets, installed?"""
    from .eips import models_for, system_names

    checks = []
    by_stem = {re.sub(r"_\d{3}$", "", m): m for m in installed}
    for system in system_names():
        missing, other = [], []
        for spec in models_for(system):
            if not spec.is_kim or spec.model_id in installed:
                continue
            found = by_stem.get(re.sub(r"_\d{3}$", "", spec.model_id))
            if found:
                other.append(f"{spec.name}: {found}")
            else:
                missing.append(spec.model_id)
        detail = f"{len(models_for(system)) - len(missing)}/{len(models_for(system))} Table 2 EIPs installed"
        if other:
            detail += f" (another version: {'; '.join(other)})"
        if missing:
            checks.append(Check(f"EIPs of {system}", FAIL, f"{detail}; missing: {', '.join(missing)}", APT_KIM))
        else:
            checks.append(Check(f"EIPs of {system}", OK, detail))
    for dataset, element in MLEARN_ELEMENTS.items():
        if use_discovery:
            from .eips import installed_eips

            ids = [s.model_id for s in installed_eips([element])]
        else:
            ids = [m for m in installed if element in _elements(m)]
        if ids:
            checks.append(Check(f"EIPs of {dataset}", OK, f"{len(ids)} installed {element} model(s)"))
        else:
            checks.append(Check(f"EIPs of {dataset}", FAIL, f"no installed KIM model supports {element}", APT_KIM))
    return checks


def check_kernel() -> Check:
    """The Jupyter kernel the notebooks name."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception as exc:  # no jupyter_client: the same fix
        specs, why = {}, f" ({exc})"
    else:
        why = ""
    if KERNEL in specs:
        return Check("Jupyter kernel", OK, f"'{KERNEL}' in {specs[KERNEL]}", required=False)
    return Check("Jupyter kernel", WARN, f"no '{KERNEL}' kernel{why}",
                 f"{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL} --display-name 'Python (eiplab)'",
                 required=False)


def check_frontend() -> list[Check]:
    """JupyterLab and the front-end extensions of ipywidgets, nglview and plotly."""
    lab = _version("jupyterlab")
    prefix = Path(sys.prefix) / "share" / "jupyter" / "labextensions"
    wanted = {"ipywidgets": ("jupyterlab_widgets", "@jupyter-widgets/jupyterlab-manager"),
              "nglview": ("nglview", "nglview-js-widgets"), "plotly": ("plotly", "jupyterlab-plotly")}
    checks = [Check("JupyterLab", OK if lab else WARN, f"jupyterlab {lab}" if lab else "not installed",
                    "" if lab else "pip install -r requirements.txt", required=False)]
    major = int(lab.split(".")[0]) if lab else 0
    for name, (dist, ext) in wanted.items():
        version, folder = _version(dist), prefix / ext
        if version is None or not folder.is_dir():
            checks.append(Check(f"{name} front end", WARN, f"{dist} {version}, extension {ext} not in {prefix}",
                                f"pip install --force-reinstall {dist}=={version or '<pinned>'}", required=False))
            continue
        ok = not (name == "ipywidgets" and major >= 4 and int(version.split(".")[0]) < 3)
        checks.append(Check(f"{name} front end", OK if ok else WARN, f"{dist} {version}, {ext} installed",
                            "" if ok else "jupyterlab_widgets >= 3 is needed by JupyterLab 4", required=False))
    return checks


def check_torch() -> list[Check]:
    """torch (and the CUDA device it sees) and torch-geometric."""
    try:
        import torch
    except Exception as exc:  # an import that fails for any reason is the finding
        return [Check("torch", FAIL, f"import failed: {exc}", "pip install torch==2.13.0 (before the rest; make setup)")]
    cuda = (f"CUDA {torch.version.cuda}, device {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
            else "no CUDA device seen (training runs on the CPU)")
    checks = [Check("torch", OK, f"torch {torch.__version__}"),
              Check("CUDA", OK if torch.cuda.is_available() else WARN, cuda,
                    "" if torch.cuda.is_available() else "optional: a CUDA build of torch and a GPU", required=False)]
    checks.append(_import_check("torch-geometric", "torch_geometric", "torch-geometric",
                                "pip install -r requirements.txt"))
    return checks


def check_gpaw() -> Check:
    """GPAW and its PAW setups (gpaw-data), needed only for reference DFT (eiplab.dft)."""
    try:
        import gpaw  # noqa: F401
        import gpaw_data
    except Exception as exc:  # optional: any failure is a warning
        return Check("GPAW", WARN, f"not usable: {exc}", "CC=g++ pip install gpaw==26.7.0 gpaw-data==1.2.1 (make setup)",
                     required=False)
    return Check("GPAW", OK, f"gpaw {_version('gpaw')}, PAW setups gpaw-data {gpaw_data.__version__}", required=False)


def check_disk(folder: Path | None = None) -> Check:
    """Free space where eiplab caches EIP energies, SOAP features and runs."""
    from .paths import cache_dir

    folder = Path(folder or cache_dir())
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free / 1e9
    if free < MIN_FREE_GB:
        return Check("cache disk", WARN, f"{free:.1f} GB free at {folder}",
                     f"free space or set EIPLAB_CACHE to a larger disk (>= {MIN_FREE_GB:g} GB)", required=False)
    return Check("cache disk", OK, f"{free:.1f} GB free at {folder}", required=False)


def run_checks(kim_collection: str | Path | None = None) -> list[Check]:
    """Every check, in the order they are printed."""
    checks = [Check("python", OK, sys.version.split()[0]), check_kim_api(),
              _import_check("kimpy", "kimpy", "kimpy", "pip install kimpy==2.1.4 (after the KIM API; make setup)")]
    try:
        installed = installed_models(kim_collection)
    except Exception as exc:  # reading the collection failed: report it rather than crash
        checks.append(Check("KIM models", FAIL, f"could not list installed models: {exc}", APT_KIM))
    else:
        checks.append(Check("KIM models", OK if installed else FAIL, f"{len(installed)} portable models installed",
                            "" if installed else APT_KIM))
        checks += check_dataset_eips(installed, use_discovery=kim_collection is None)
    checks += check_torch()
    checks += [_import_check("Dask", "distributed", "distributed", "pip install dask==2026.8.0 distributed==2026.8.0")]
    checks += [check_kernel(), *check_frontend(), check_gpaw(), check_disk()]
    return checks


def report(checks: Sequence[Check], write: Callable[[str], None] = print) -> int:
    """Print the checks, one per line with the fix under each problem; 1 if a required one failed."""
    width = max(len(c.name) for c in checks)
    for c in checks:
        write(f"[{c.status:>4}] {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            write(f"{'':>7}{'':<{width}}  fix: {c.fix}")
    failed = [c.name for c in checks if c.required and c.status == FAIL]
    write("eiplab doctor: " + (f"missing what eiplab needs: {', '.join(failed)}" if failed else "everything required is here"))
    return 1 if failed else 0
