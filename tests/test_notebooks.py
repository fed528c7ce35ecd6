"""Every notebook runs headless with papermill on the quick profile; notebooks are stored clean."""

import ast
import importlib
import json

import pytest

from eiplab.reproduce import find_notebooks, run_notebooks

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterised(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged 'parameters'"
    params = "".join(code[0]["source"])
    for name in ("dataset", "profile", "out_dir", "device"):
        assert f"{name} =" in params
    assert all(not c.get("outputs") for c in code), "commit notebooks without outputs"


def _public(module: str) -> set[str]:
    """Names a top-level eiplab package exports (``eiplab`` itself or ``eiplab.<package>``)."""
    return set(getattr(importlib.import_module(module), "__all__", ()))


def _private_imports(source: str) -> list[str]:
    """Imports in ``source`` outside eiplab's public API: a name a top-level package (``eiplab`` or
    ``eiplab.<package>``) does not export in ``__all__``, or any deeper module."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eiplab"):
            if node.module.count(".") > 1:
                bad.append(f"from {node.module} import ...")
                continue
            bad += [f"from {node.module} import {a.name}" for a in node.names if a.name not in _public(node.module)]
        elif isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names if a.name.startswith("eiplab.")]
    return bad


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_only_public_api_and_the_eiplab_kernel(nb):
    """Notebooks stay thin: calls on eiplab's public API (``eiplab.Study`` and what the top-level
    packages export), run on the eiplab kernel that scripts/setup.sh registers."""
    book = json.loads(nb.read_text())
    assert book["metadata"]["kernelspec"]["name"] == "eiplab"
    source = "\n".join("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code")
    assert not _private_imports(source), f"{nb.name} imports outside eiplab's public API: {_private_imports(source)}"
    assert "Study(" in source, "notebooks set up through eiplab.Study"


def test_public_api_check_catches_private_imports():
    source = ("from eiplab import Study\nfrom eiplab.analysis import save_table, results as res\n"
              "from eiplab.analysis.tables import save_figure\nfrom eiplab.workflows import _private\n"
              "import eiplab.paths\n")
    assert _private_imports(source) == ["from eiplab.analysis.tables import ...",
                                        "from eiplab.workflows import _private", "import eiplab.paths"]


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))
    done = run_notebooks("si-pyxtal", "quick", out=tmp_path, only=[nb.stem], force=True, log=lambda *_: None)
    assert len(done) == 1 and done[0].exists()
    executed = json.loads(done[0].read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    injected = next(c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    # the training notebooks get the profile's workers (quick: 1); the others are not passed it
    assert ("workers = 1" in "".join(injected["source"])) == nb.stem.startswith(("03", "04"))
    tables = list((tmp_path / f"{nb.stem}-si-pyxtal-quick").glob("*.csv"))
    assert tables, "each notebook writes at least one table under out_dir"


@pytest.mark.notebook
def test_table5_notebook_runs_a_chosen_split_and_alpha_grid(tmp_path, monkeypatch):
    """`confidence_seeds` and `alphas` restrict notebook 04's Table 5 retraining (e.g. one split
    at the paper profile); the audit still covers every split, and one-split rows say n=1. The
    fits run on a local Dask cluster of 2 worker processes started from the kernel (``workers``)."""
    import pandas as pd
    import papermill as pm

    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))
    nb = next(p for p in NOTEBOOKS if p.stem.startswith("04"))
    out = tmp_path / "tables"
    pm.execute_notebook(str(nb), str(tmp_path / "04.ipynb"), cwd=str(nb.parent), progress_bar=False,
                        parameters={"profile": "quick", "model": "schnet", "out_dir": str(out),
                                    "confidence_seeds": [1], "alphas": [0.5], "workers": 2})
    assert "on 2 local Dask worker(s)" in (tmp_path / "04.ipynb").read_text()
    runs = pd.read_csv(out / "confidence_group_runs.csv")
    assert set(runs["seed"]) == {1} and set(runs["group"]) == {"low", "medium", "high"}
    assert set(runs["alpha"]) == {0.5}
    table5 = pd.read_csv(out / "table5.csv")
    assert table5["Config (eV)"].str.endswith("(n=1)").all()
    assert sorted(pd.read_csv(out / "audit_per_split.csv")["seed"]) == [0, 1, 2]


@pytest.mark.notebook
def test_strategies_notebook_shows_the_alpha_sensitivity(tmp_path, monkeypatch):
    """With several alphas, notebook 03 tabulates each alpha's validation and test MAE and, per
    split, the alpha chosen on validation against the best on test."""
    import pandas as pd
    import papermill as pm

    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))
    nb = next(p for p in NOTEBOOKS if p.stem.startswith("03"))
    out = tmp_path / "tables"
    pm.execute_notebook(str(nb), str(tmp_path / "03.ipynb"), cwd=str(nb.parent), progress_bar=False,
                        parameters={"profile": "quick", "models": ["schnet"], "strategies": ["baseline", "la"],
                                    "alphas": [0.5, 2.0], "out_dir": str(out)})
    sensitivity = pd.read_csv(out / "alpha_sensitivity.csv")
    assert sorted(sensitivity["alpha"]) == [0.5, 2.0] and (sensitivity["splits"] == 3).all()
    assert sensitivity["chosen on (splits)"].sum() == 3  # one chosen alpha per split
    choice = pd.read_csv(out / "alpha_choice.csv")
    assert len(choice) == 3 and (choice["cost of choice (eV)"] >= 0).all()
    assert (out / "alpha_curves.html").exists() and "<table" in (out / "alpha_sensitivity.html").read_text()


@pytest.mark.notebook
def test_notebooks_run_on_an_mlearn_dataset(tmp_path, monkeypatch):
    """The mlearn sets go through the same notebooks: KIM-Si style splits, their own EIPs and
    tau="auto", and the classifier audited on the held-out test configs (the pool has no DFT)."""
    import pandas as pd
    import papermill as pm

    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))
    done = run_notebooks("mo-mlearn", "quick", out=tmp_path, only=["01", "02"], force=True, log=lambda *_: None)
    assert len(done) == 2
    builtins = pd.read_csv(tmp_path / "01_datasets-mo-mlearn-quick/builtin_datasets.csv", index_col=0)
    assert {"si-pyxtal", "ge-mlearn", "li-mlearn", "mo-mlearn"} <= set(builtins.index)
    table2 = pd.read_csv(tmp_path / "02_eip_benchmark-mo-mlearn-quick/table2_align_species.csv", index_col=0)
    assert "MEAM (ParkFellingerLenosky 2012)" in table2.index and not table2.index.str.startswith("SNAP").any()
    nb = next(p for p in NOTEBOOKS if p.stem.startswith("04"))
    out = tmp_path / "04"
    pm.execute_notebook(str(nb), str(tmp_path / "04.ipynb"), cwd=str(nb.parent), progress_bar=False,
                        parameters={"dataset": "mo-mlearn", "profile": "quick", "model": "soapnet", "out_dir": str(out),
                                    "confidence_runs": False})
    audits = pd.read_csv(out / "audit_per_split.csv")
    assert set(audits["audited_on"]) == {"test"} and (audits["n_pool_with_dft"] > 0).all()


@pytest.mark.notebook
def test_md_notebook_runs_networks_trained_on_forces(tmp_path, monkeypatch):
    """Train with forces (DFT and the EIPs'), load the runs as ASE calculators and run MD: notebook
    06 with ``force_weight`` and ``eip_forces`` (issue 20's end-to-end path)."""
    import pandas as pd
    import papermill as pm

    from eiplab import Study

    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))
    nb = next(p for p in NOTEBOOKS if p.stem.startswith("06"))
    out = tmp_path / "tables"
    pm.execute_notebook(str(nb), str(tmp_path / "06.ipynb"), cwd=str(nb.parent), progress_bar=False,
                        parameters={"profile": "quick", "out_dir": str(out), "force_weight": 10.0, "eip_forces": True})
    runs = Study("si-pyxtal", "quick", models=["schnet"], force_weight=10.0, eip_forces=True).results()
    assert set(runs["tag"]) >= {"baseline", "mp"} and runs["test_mae_force"].notna().all()
    assert (runs["force_weight"] == 10.0).all()
    assert list((out).glob("*.csv")), "the MD tables are written"
    assert pd.read_csv(next(out.glob("relaxation*.csv"))).shape[0] == 3  # two networks + the best EIP


def _sleepy_notebook(folder, marker):
    """A notebook whose second cell hangs (sleeps 600 s) unless ``marker`` exists; the first run
    creates the marker, so a re-run goes through."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("dataset = profile = out_dir = device = None")
    params.metadata["tags"] = ["parameters"]
    hang = nbformat.v4.new_code_cell(
        f"import pathlib, time\nm = pathlib.Path({str(marker)!r})\nif not m.exists():\n    m.touch()\n    time.sleep(600)")
    nb.cells = [params, hang]
    folder.mkdir()
    nbformat.write(nb, folder / "01_sleepy.ipynb")


@pytest.mark.parametrize("hangs_twice", [False, True])
def test_a_hung_cell_is_retried_once_then_named(tmp_path, hangs_twice):
    _sleepy_notebook(tmp_path / "nbs", tmp_path / "marker")
    if hangs_twice:  # the hang no longer depends on the marker: every run hangs
        (tmp_path / "nbs" / "01_sleepy.ipynb").write_text(
            (tmp_path / "nbs" / "01_sleepy.ipynb").read_text().replace("m.exists()", "False"))
    logged = []
    run = lambda: run_notebooks("si-pyxtal", "quick", out=tmp_path / "out", folder=tmp_path / "nbs", force=True,  # noqa: E731
                                cell_timeout=5, log=logged.append)
    if hangs_twice:
        with pytest.raises(RuntimeError, match=r"01_sleepy.ipynb: a cell gave no reply within 5 s twice"):
            run()
    else:
        assert run() == [tmp_path / "out" / "01_sleepy-si-pyxtal-quick.ipynb"]
    assert sum("no reply within 5 s; running the notebook again" in line for line in logged) == 1
