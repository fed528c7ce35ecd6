"""``eiplab doctor``: passes on this set-up, fails with the right hint without KIM models."""

import pytest

from eiplab.cli import main
from eiplab.doctor import APT_KIM, FAIL, OK, Check, check_dataset_eips, report, run_checks


@pytest.mark.kim
def test_doctor_passes_on_a_full_setup(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "everything required is here" in out
    for name in ("KIM API", "kimpy", "EIPs of Si", "EIPs of mo-mlearn", "torch", "Dask"):
        assert any(line.startswith("[  ok]") and name in line for line in out.splitlines()), name


def test_doctor_fails_with_the_fix_on_an_empty_kim_collection(tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    assert main(["doctor", "--kim-collection", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] KIM models" in out and "0 portable models installed" in out
    assert "EIPs of Si" in out and "missing: " in out and f"fix: {APT_KIM}" in out
    assert "missing what eiplab needs" in out


def test_a_model_in_another_version_is_named_and_mlearn_elements_are_read_from_ids():
    from eiplab.eips import models_for

    kim = [s.model_id for s in models_for("Si") if s.is_kim]
    installed = [kim[0][:-3] + "999", *kim[2:], "EAM_Dynamo_Foo_2004_Mo__MO_000000000000_000"]
    checks = {c.name: c for c in check_dataset_eips(installed, use_discovery=False)}
    si = checks["EIPs of Si"]
    assert si.status == FAIL and f"missing: {kim[1]}" in si.detail and kim[0][:-3] + "999" in si.detail
    assert checks["EIPs of mo-mlearn"].status == OK and checks["EIPs of ge-mlearn"].status == FAIL


def test_report_exit_code_counts_required_failures_only():
    lines = []
    assert report([Check("a", OK, "x"), Check("b", FAIL, "y", "do z", required=False)], lines.append) == 0
    assert "fix: do z" in "\n".join(lines)
    assert report([Check("a", FAIL, "y", "do z")], lines.append) == 1


def test_run_checks_lists_every_area(tmp_path):
    names = {c.name for c in run_checks(tmp_path)}
    assert {"KIM API", "kimpy", "torch", "Dask", "Jupyter kernel", "GPAW", "cache disk"} <= names
