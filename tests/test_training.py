"""The training loop: schedules, metrics, baseline fit, overfitting, resume, records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from eiplab import keys
from eiplab import training as T
from eiplab.graphs import make_loader
from eiplab.graphs.build import Y
from eiplab.metrics import energy_metrics, mae_atom, mae_config
from eiplab.models import ModelConfig, build_model
from eiplab.training import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILE,
    LR,
    RECORD_FILE,
    TRAIN_LOSS,
    VAL_ACCURACY,
    VAL_MAE_CONFIG,
    TrainSettings,
    energy_mse,
    fit_energy_model,
    fit_species_baseline,
    learning_rate_at,
    model_inputs,
    predict,
    prepare_for_fit,
    resolve_device,
    train,
    train_settings,
)

TINY = {"width": 16, "n_layers": 2, "n_gaussians": 16, "cutoff": 4.0}


def _si_configs(n: int, seed: int = 0) -> list[Atoms]:
    """Rattled, strained diamond cells (2 or 4 atoms) with a smooth made-up energy (eV)."""
    rng = np.random.default_rng(seed)
    configs = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * rng.uniform(0.96, 1.04))
        if k % 2:
            atoms = atoms.repeat((1, 1, 2))
        atoms.rattle(0.1, seed=seed * 1000 + k)
        volume = atoms.get_volume() / len(atoms)
        atoms.info[keys.ENERGY_DFT] = len(atoms) * (-5.42 + 0.05 * (volume - 20.0) ** 2)
        atoms.info[keys.CONFIG_ID] = f"si-{seed}-{k}"
        configs.append(atoms)
    return configs


# --- schedules ---------------------------------------------------------------------------------
def test_linear_schedule_values():
    s = TrainSettings(epochs=100, lr=1e-3, lr_end=1e-5, schedule="linear")
    assert learning_rate_at(s, 0) == pytest.approx(1e-3)
    assert learning_rate_at(s, 50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate_at(s, 100) == pytest.approx(1e-5)


def test_slanted_triangular_schedule_values():
    s = TrainSettings(epochs=100, lr=1e-3, schedule="slanted_triangular")
    assert learning_rate_at(s, 0) == pytest.approx(1e-3 / 32)
    assert learning_rate_at(s, 10) == pytest.approx((1e-3 / 32 + 1e-3) / 2)
    assert learning_rate_at(s, 20) == pytest.approx(1e-3)
    assert learning_rate_at(s, 60) == pytest.approx((1e-3 + 1e-3 / 32) / 2)
    assert learning_rate_at(s, 100) == pytest.approx(1e-3 / 32)


def test_optimizer_follows_the_schedule():
    configs = _si_configs(8)
    settings = TrainSettings(epochs=4, batch_size=4, schedule="slanted_triangular", progress=False)
    torch.manual_seed(0)
    model = build_model(ModelConfig("schnet", **TINY))
    graphs = model_inputs(configs, model.config)
    prepare_for_fit(model, graphs, energy_baseline=True)
    result = train(model, make_loader(graphs, 4, shuffle=True), None, energy_mse, settings)
    lrs = [h[LR] for h in result.history]
    assert lrs == pytest.approx([learning_rate_at(settings, e) for e in range(4)])


def test_profiles():
    assert train_settings("paper") == TrainSettings()
    assert train_settings("paper").epochs == 100 and train_settings("paper").batch_size == 32
    quick = train_settings("quick", seed=3)
    assert quick.epochs <= 3 and quick.max_configs == 64 and quick.seed == 3
    assert train_settings("cpu").epochs < 100
    with pytest.raises(ValueError):
        train_settings("nope")
    with pytest.raises(ValueError):
        TrainSettings(schedule="cosine")
    assert TrainSettings(select_on=VAL_ACCURACY).mode == "max"
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")


# --- metrics and baseline -----------------------------------------------------------------------
def test_metrics_by_hand():
    predicted = [1.0, -2.0, 4.0]
    reference = [0.0, 0.0, 1.0]
    n_atoms = [1, 4, 3]
    assert mae_config(predicted, reference) == pytest.approx((1 + 2 + 3) / 3)
    assert mae_atom(predicted, reference, n_atoms) == pytest.approx((1 / 1 + 2 / 4 + 3 / 3) / 3)
    both = energy_metrics(predicted, reference, n_atoms)
    assert both[keys.MAE_CONFIG] == pytest.approx(2.0)
    assert both[keys.MAE_ATOM] == pytest.approx(2.5 / 3)
    with pytest.raises(ValueError):
        mae_config([1.0], [1.0, 2.0])


def test_species_baseline_recovers_linear_energies():
    rng = np.random.default_rng(1)
    configs = []
    for k in range(12):
        n_al, n_si = int(rng.integers(0, 4)), int(rng.integers(1, 4))
        atoms = Atoms("Al" * n_al + "Si" * n_si, positions=rng.uniform(0, 6, size=(n_al + n_si, 3)))
        atoms.info[keys.ENERGY_DFT] = -3.7 * n_al - 5.4 * n_si
        atoms.info[keys.CONFIG_ID] = str(k)
        configs.append(atoms)
    graphs = model_inputs(configs, ModelConfig("schnet", **TINY))
    baseline = fit_species_baseline(graphs)
    assert baseline == pytest.approx({13: -3.7, 14: -5.4})
    # one fixed composition cannot identify two species
    fixed = model_inputs(
        [Atoms("AlSi", positions=[[0, 0, 0], [2, 0, 0]], info={keys.ENERGY_DFT: -9.0})],
        ModelConfig("schnet", **TINY),
    )
    with pytest.raises(ValueError, match="cannot identify"):
        fit_species_baseline(fixed)


# --- learning ------------------------------------------------------------------------------------
def test_tiny_model_overfits_a_tiny_set():
    configs = _si_configs(8, seed=2)
    torch.manual_seed(0)
    model = build_model(ModelConfig("schnet", **{**TINY, "width": 32}))
    graphs = model_inputs(configs, model.config)
    prepare_for_fit(model, graphs, energy_baseline=True)
    settings = TrainSettings(epochs=150, batch_size=8, lr=5e-3, schedule="constant", progress=False)
    result = train(model, make_loader(graphs, 8, shuffle=True), None, energy_mse, settings)
    losses = [h[TRAIN_LOSS] for h in result.history]
    assert losses[-1] < losses[0] / 50
    assert (
        np.abs(predict(result.model, graphs) - [c.info[keys.ENERGY_DFT] for c in configs]).max()
        < 0.25
    )


def test_loop_takes_other_losses_and_metrics():
    """A K+1 classifier (graph head, cross-entropy, accuracy selection) uses the same loop."""
    configs = _si_configs(12, seed=3)
    torch.manual_seed(0)
    model = build_model(ModelConfig("schnet", **TINY, n_out=3, head="graph"))
    graphs = model_inputs(configs, model.config, target=None)
    for k, graph in enumerate(graphs):
        graph[Y] = torch.tensor([k % 3])

    def cross_entropy(logits, batch):
        return torch.nn.functional.cross_entropy(logits, batch[Y])

    def accuracy(model, loader, device):
        right = total = 0
        with torch.no_grad():
            for batch in loader:
                right += int((model(batch.to(device)).argmax(1) == batch[Y]).sum())
                total += len(batch[Y])
        return {VAL_ACCURACY: right / total}

    settings = TrainSettings(
        epochs=3,
        batch_size=4,
        select_on=VAL_ACCURACY,
        schedule="slanted_triangular",
        progress=False,
    )
    result = train(
        model,
        make_loader(graphs, 4, shuffle=True),
        make_loader(graphs, 4),
        cross_entropy,
        settings,
        metrics_fn=accuracy,
    )
    best = max(h[VAL_ACCURACY] for h in result.history)
    assert result.best_metrics[VAL_ACCURACY] == best


class _Interrupt(Exception):
    pass


def _resume_run(out_dir, interrupt_after: int | None):
    configs = _si_configs(12, seed=4)
    settings = TrainSettings(epochs=4, batch_size=4, seed=7, progress=False)
    torch.manual_seed(settings.seed)
    model = build_model(ModelConfig("cgcnn", **TINY))
    graphs = model_inputs(configs, model.config)
    prepare_for_fit(model, graphs[:8], energy_baseline=True)
    loaders = (
        make_loader(graphs[:8], 4, shuffle=True, seed=settings.seed),
        make_loader(graphs[8:], 4),
    )

    def stop(epoch, entry):
        if epoch == interrupt_after:
            raise _Interrupt

    return train(model, *loaders, energy_mse, settings, out_dir=out_dir, callbacks=[stop])


def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path):
    straight = _resume_run(tmp_path / "a", interrupt_after=None)
    with pytest.raises(_Interrupt):
        _resume_run(tmp_path / "b", interrupt_after=1)
    assert (tmp_path / "b" / CHECKPOINT_FILE).exists()
    resumed = _resume_run(tmp_path / "b", interrupt_after=None)
    assert resumed.history == straight.history
    assert resumed.best_epoch == straight.best_epoch
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((tmp_path / "b" / RECORD_FILE).read_text())
    assert len(record[T.RUN_HISTORY]) == 4


def test_fit_energy_model_end_to_end(tmp_path):
    configs = _si_configs(30, seed=5)
    settings = train_settings("quick", batch_size=8, progress=False)
    result = fit_energy_model(
        configs[:20],
        configs[20:25],
        configs[25:],
        model=ModelConfig("schnet", **TINY),
        settings=settings,
        out_dir=tmp_path,
        run_info={T.RUN_DATASET: "toy-si", T.RUN_SPLIT: 0},
    )
    assert len(result.history) == settings.epochs
    assert {TRAIN_LOSS, VAL_MAE_CONFIG, LR} <= set(result.history[0])
    assert set(result.test_metrics) == {
        T.TEST_PREFIX + keys.MAE_CONFIG,
        T.TEST_PREFIX + keys.MAE_ATOM,
    }
    assert result.baseline[14] == pytest.approx(-5.42, abs=0.2)
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    for field in (
        T.RUN_DATASET,
        T.RUN_SPLIT,
        T.RUN_MODEL,
        T.RUN_STRATEGY,
        T.RUN_SETTINGS,
        T.RUN_SEED,
        T.RUN_METRICS,
        T.RUN_GIT,
        T.RUN_WALL_TIME,
    ):
        assert field in record
    assert (tmp_path / BEST_MODEL_FILE).exists()
    energies = predict(result.model, configs[25:])
    assert energies.shape == (5,) and np.isfinite(energies).all()
    with pytest.raises(ValueError, match="species"):
        fit_energy_model(
            configs[:4],
            [Atoms("Al", info={keys.ENERGY_DFT: -3.0})],
            model=ModelConfig("schnet", **TINY),
            settings=settings,
        )


def test_fit_soapnet_builds_its_features(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path))
    configs = _si_configs(12, seed=6)
    settings = TrainSettings(epochs=2, batch_size=4, progress=False)
    result = fit_energy_model(
        configs[:8],
        configs[8:],
        model=ModelConfig("soapnet", width=16, n_layers=2, cutoff=4.0),
        settings=settings,
    )
    assert result.model.config.soap["species"] == [14]
    assert result.model.config.n_features > 0
    assert np.isfinite(predict(result.model, configs[8:])).all()


def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path):
    """Run records go through write_text_atomic: a reader never sees half a file, and a write
    that fails leaves the previous record whole."""
    from eiplab.atomic_io import write_text_atomic
    from eiplab.training.records import write_run_record

    path = write_run_record(tmp_path / "sub" / "run.json", {"wall_time_s": 1.5, "metrics": {"val": float("nan")}})
    assert json.loads(path.read_text()) == {"metrics": {"val": None}, "wall_time_s": 1.5}
    with pytest.raises(TypeError):
        write_text_atomic(path, None)  # type: ignore[arg-type]
    assert json.loads(path.read_text())["wall_time_s"] == 1.5
    write_text_atomic(path, "{}")
    assert path.read_text() == "{}"
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temporary file left


def test_run_record_names_the_revision_read_before_training(monkeypatch):
    """A checkout during a long fit must not relabel it: the record keeps the revision of the
    code that trained (read when training starts), not the one checked out when it ends."""
    import eiplab.training.loop as loop

    checked_out = {"later": False}  # a callback "checks out another commit" after the first epoch
    monkeypatch.setattr(loop, "git_revision", lambda: "rev-after-a-checkout" if checked_out["later"] else "rev-at-start")
    configs = _si_configs(4, seed=4)
    torch.manual_seed(0)
    model = build_model(ModelConfig("schnet", **TINY))
    graphs = model_inputs(configs, model.config)
    prepare_for_fit(model, graphs, energy_baseline=True)
    settings = TrainSettings(epochs=1, batch_size=4, schedule="constant", progress=False)
    result = train(model, make_loader(graphs, 4), None, energy_mse, settings,
                   callbacks=[lambda epoch, entry: checked_out.update(later=True)])
    assert result.record["git_revision"] == "rev-at-start"



def test_git_revision_is_read_once_per_process(monkeypatch):
    import subprocess

    from eiplab.training import records

    calls = []

    def fake_run(*args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout=f"rev{len(calls)}\n", stderr="")

    records.git_revision.cache_clear()
    monkeypatch.setattr(records.subprocess, "run", fake_run)
    try:
        assert records.git_revision() == "rev1" and records.git_revision() == "rev1"
        assert len(calls) == 1
    finally:
        records.git_revision.cache_clear()


def _compile_run(compile_steps: bool, out_dir=None):
    configs = _si_configs(12, seed=5)
    settings = TrainSettings(epochs=3, batch_size=4, seed=3, progress=False, compile=compile_steps)
    torch.manual_seed(settings.seed)
    model = build_model(ModelConfig("schnet", **TINY))
    graphs = model_inputs(configs, model.config)
    prepare_for_fit(model, graphs[:8], energy_baseline=True)
    loaders = (make_loader(graphs[:8], 4, shuffle=True, seed=settings.seed), make_loader(graphs[8:], 4))
    return train(model, *loaders, energy_mse, settings, out_dir=out_dir)


def test_compiled_training_steps_follow_the_eager_ones(tmp_path):
    """compile=True trains the same network (same losses to rounding), checkpoints the plain
    module (loadable without compile) and is not a stored input: a resumed run may switch it."""
    from torch._dynamo.utils import counters

    eager = _compile_run(False)
    counters.clear()
    compiled = _compile_run(True, out_dir=tmp_path)
    assert counters["stats"]["unique_graphs"] > 0  # the steps did go through torch.compile
    assert type(compiled.model) is type(eager.model)  # the plain module comes back, not the compiled wrapper
    for a, b in zip(eager.history, compiled.history, strict=True):
        assert b[TRAIN_LOSS] == pytest.approx(a[TRAIN_LOSS], rel=1e-4, abs=1e-6)
        assert b[VAL_MAE_CONFIG] == pytest.approx(a[VAL_MAE_CONFIG], rel=1e-4, abs=1e-6)
    state = torch.load(tmp_path / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state["model"])
    assert _compile_run(False, out_dir=tmp_path).history == compiled.history  # resumed (finished) without compile


def test_compile_refuses_force_training():
    from eiplab.training import energy_force_loss

    model = build_model(ModelConfig("schnet", **TINY))
    graphs = model_inputs(_si_configs(4), model.config)
    prepare_for_fit(model, graphs, energy_baseline=True)
    settings = TrainSettings(epochs=1, batch_size=4, progress=False, compile=True)
    with pytest.raises(ValueError, match="double backward"):
        train(model, make_loader(graphs, 4), None, energy_force_loss(10.0), settings)


def test_a_non_finite_loss_stops_training_before_any_step():
    """The step refuses a NaN loss before backward / optimizer.step (the weights are untouched)
    and the loop names the epoch."""
    from eiplab.training import training_step

    model = build_model(ModelConfig("schnet", **TINY))
    graphs = model_inputs(_si_configs(4), model.config)
    prepare_for_fit(model, graphs, energy_baseline=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def nan_loss(prediction, batch):
        return energy_mse(prediction, batch) * float("nan")

    batch = next(iter(make_loader(graphs, 4)))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        training_step(model, batch, nan_loss, optimizer, torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    settings = TrainSettings(epochs=1, batch_size=4, progress=False)
    with pytest.raises(FloatingPointError, match="at epoch 0"):
        train(model, make_loader(graphs, 4), None, nan_loss, settings)
