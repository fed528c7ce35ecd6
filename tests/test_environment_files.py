"""requirements.txt, environment.yml and binder/environment.yml list the same packages; what git keeps of
the long grids in grid-work/."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# pip name -> conda-forge name where they differ
PIP_TO_CONDA = {"torch": "pytorch", "torch-geometric": "pytorch_geometric"}
CONDA_ONLY = {"python", "kim-api", "openkim-models", "pip"}


def _pip_names() -> set[str]:
    names = {"torch"}  # installed first by scripts/setup.sh, pinned there
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~ ]", line)[0].lower())
    return {PIP_TO_CONDA.get(n, n) for n in names}


def _conda_names(path: Path) -> set[str]:
    names = set()
    text = path.read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m:
            names.add(m.group(1).lower())
    return names - CONDA_ONLY


def test_environment_yml_matches_requirements():
    assert _conda_names(ROOT / "environment.yml") == _pip_names()


def test_binder_matches_environment_yml():
    assert _conda_names(ROOT / "binder" / "environment.yml") == _conda_names(ROOT / "environment.yml")


def test_torch_pinned_first_in_setup():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert setup.index("torch==2.13.0") < setup.index("-r requirements.txt")
    assert "pytorch=2.13.0" in (ROOT / "environment.yml").read_text()


def test_binder_registers_the_kernel_the_notebooks_name():
    import json

    names = {json.loads(nb.read_text())["metadata"]["kernelspec"]["name"] for nb in (ROOT / "notebooks").glob("*.ipynb")}
    post = (ROOT / "binder" / "postBuild").read_text()
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert names == {"eiplab"}
    assert "--name eiplab" in post and "--name eiplab" in setup


def test_grid_work_keeps_records_and_backbones_not_checkpoints():
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        import pytest

        pytest.skip("not a git checkout")
    kept = ["grid-work/g/runs/schnet/mp+la/seed0/alpha_1/run.json",
            "grid-work/g/runs/schnet/mp+la/seed0/result.json",
            "grid-work/g/la/schnet/all/seed0/selection.csv",
            "grid-work/g/pretrain/schnet/eips-0123456789ab/model_best.pt"]
    dropped = ["grid-work/g/runs/schnet/mp+la/seed0/alpha_1/checkpoint_last.pt",
               "grid-work/g/runs/schnet/mp+la/seed0/alpha_1/model_best.pt",
               "grid-work/g/pretrain/schnet/eips-0123456789ab/checkpoint_last.pt",
               "grid-work/g/la/schnet/all/seed0/.lock"]
    for path in kept + dropped:  # check-ignore exits 0 for an ignored path, 1 for a kept one
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT).returncode == 0
        assert ignored == (path in dropped), path
