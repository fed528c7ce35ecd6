"""The GPU checks, in one run of under 10 minutes on one CUDA device (``benchmarks/gpu_checks.sh``).

1. A ``quick`` grid -- all four networks, every strategy (baseline, LA, MP, MP+LA) -- on a Dask
   worker (a local cluster of one worker process) with ``device="auto"``: every fit on the GPU.
2. GemNet's peak ``torch.cuda.max_memory_allocated`` for one training step on the 250-atom,
   7 Angstrom Al batch of 32 (``bench_gemnet_memory.py``'s cells).
3. SchNet training throughput (configs per second, batch 32, si-pyxtal-like cells) on the GPU,
   against the same steps on the CPU in the same run (the baseline).
4. Forces on the GPU (issue 20): the MP per-head force MSE and the LA loss with EIP forces give
   the same values on CUDA as on the CPU for the same network and batch, and a ``quick`` SchNet
   grid trained with DFT and EIP forces (baseline, MP, LA) runs on the GPU.

Writes every figure to one JSON file (``--out``) and prints it. Fails at once, with a message
saying so, when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


class NoCudaError(SystemExit):
    pass


def require_cuda() -> str:
    """The CUDA device's name; exits with status 2 and a clear message when there is none."""
    import torch

    if not torch.cuda.is_available():
        raise NoCudaError("gpu_checks: no CUDA device is visible to torch (torch.cuda.is_available() is False); "
                          "run this on a machine with an NVIDIA GPU and a CUDA build of torch")
    return torch.cuda.get_device_name(0)


def quick_grid(work: Path) -> dict:
    """Every network and strategy of the quick profile on one Dask worker, device auto."""
    from eiplab.data import dataset_splits, load_dataset
    from eiplab.eips import models_for_dataset
    from eiplab.workflows import grid_from_profile, run_grid, specs_for

    configs = load_dataset("si-pyxtal", limit=240, seed=0)
    seeds = (0,)
    splits = dataset_splits(configs, seeds=seeds)
    eips = [m.model_id for m in models_for_dataset(configs)]
    models = ["soapnet", "schnet", "cgcnn", "gemnet"]
    grid = grid_from_profile("quick", configs, models=models, device="auto")
    specs = specs_for(models, seeds)
    t0 = time.perf_counter()
    results = run_grid(configs, splits, seeds, eips, specs, grid, work / "grid", workers=2, threads=0, log=print)
    devices = sorted({json.loads(p.read_text())["device"] for p in (work / "grid").rglob("run.json")})
    return {"runs": len(results), "seconds": round(time.perf_counter() - t0, 1), "devices": devices,
            "test_mae_config": {f"{r.model} {r.tag}": round(float(r.test_mae_config), 4) for r in results.itertuples()}}


def gemnet_peak_memory() -> dict:
    """Peak CUDA memory of one GemNet training step, 250-atom Al cells at 7 A, batch 32."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_gemnet_memory as bench

    return bench.run("gemnet", 32, timeout=300)  # a fresh subprocess on the visible CUDA device


def schnet_throughput(steps: int = 20) -> dict:
    """Configs per second of SchNet (paper size) training steps, batch 32, on the GPU and the CPU."""
    import torch

    from eiplab.data import load_dataset
    from eiplab.graphs import make_loader
    from eiplab.models import ModelConfig, build_model
    from eiplab.training import energy_mse, model_inputs, prepare_for_fit

    configs = load_dataset("si-pyxtal", limit=32 * 4, seed=1)
    config = ModelConfig("schnet", cutoff=5.0)
    graphs = model_inputs(list(configs), config)
    batches = list(make_loader(graphs, 32, shuffle=False))
    out = {}
    for device in ("cuda", "cpu"):
        torch.manual_seed(0)
        model = build_model(config)
        prepare_for_fit(model, graphs, energy_baseline=True)
        model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        n = steps if device == "cuda" else max(steps // 5, 2)
        for k in range(n + 2):  # 2 warm-up steps
            if k == 2:
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            batch = batches[k % len(batches)].to(device)
            optimizer.zero_grad()
            energy_mse(model(batch), batch).backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        out[device] = round(32 * n / (time.perf_counter() - t0), 1)
    out["ratio_gpu_over_cpu"] = round(out["cuda"] / out["cpu"], 1)
    return out


def forces_on_cuda(work: Path) -> dict:
    """The force losses on CUDA against the CPU (same weights, same batch), and a force grid."""
    import torch

    from eiplab import Study, keys
    from eiplab.graphs import make_loader
    from eiplab.graphs.build import POS
    from eiplab.models import ModelConfig, build_model
    from eiplab.strategies.augment import IS_EIP, AugmentedLoss
    from eiplab.strategies.experiment import label_with_eips
    from eiplab.strategies.pretrain import _mtl_graphs, fit_scaler, per_head_force_mse

    study = Study("si-pyxtal", "quick", models=["schnet"], device="auto", grid_dir=work / "force-grid",
                  force_weight=10.0, eip_forces=True)
    exp = study.experiment(0)
    pool, ids = exp.parts[keys.POOL][:32], exp.model_ids[:2]
    label_with_eips(pool, ids, progress=False, forces=True)
    config = ModelConfig("schnet", width=32, n_layers=2, cutoff=4.0, n_out=2, head="atomwise")
    graphs = _mtl_graphs(pool, exp.aligned, fit_scaler(pool, exp.aligned, ids), config, forces=True)
    torch.manual_seed(0)
    model = build_model(config)
    values = {}
    for device in ("cpu", "cuda"):
        batch = next(iter(make_loader(graphs, 32))).to(device)
        values[device] = float(per_head_force_mse(model.to(device), batch))
    one = build_model(config.replace(n_out=1))
    la = {}
    for device in ("cpu", "cuda"):
        batch = next(iter(make_loader(graphs, 32))).to(device)
        batch.y = batch.y[:, :1].reshape(-1)
        batch.forces = torch.nan_to_num(batch.eip_forces[:, 0]) * 0.1
        batch[IS_EIP] = (torch.arange(batch.num_graphs, device=device) % 2 == 0)
        batch[POS].requires_grad_(True)
        la[device] = float(AugmentedLoss(0.5, force_weight=2.0, eip_forces=True)(one.to(device)(batch), batch))
    t0 = time.perf_counter()
    runs = study.run(["baseline", "mp", "la"], seeds=[0])
    devices = sorted({json.loads(p.read_text())["device"] for p in (work / "force-grid").rglob("run.json")})
    return {"mp_per_head_force_mse": values, "la_loss_with_eip_forces": la,
            "max_relative_difference": max(abs(values["cuda"] - values["cpu"]) / abs(values["cpu"]),
                                           abs(la["cuda"] - la["cpu"]) / abs(la["cpu"])),
            "force_grid_seconds": round(time.perf_counter() - t0, 1), "force_grid_devices": devices,
            "test_mae_force": {r.tag: round(float(r.test_mae_force), 4) for r in runs.itertuples()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_checks.json")
    args = parser.parse_args()
    report = {"device": require_cuda(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    work = Path(tempfile.mkdtemp(prefix="gpu-checks-"))
    os.environ.setdefault("EIPLAB_CACHE", str(work / "cache"))
    for name, check in (("schnet_throughput_configs_per_s", schnet_throughput),
                        ("gemnet_peak_memory", gemnet_peak_memory),
                        ("quick_grid", lambda: quick_grid(work)),
                        ("forces_on_cuda", lambda: forces_on_cuda(work))):
        t0 = time.perf_counter()
        try:
            report[name] = check()
        except Exception as e:  # one failing check must not lose the others' figures
            report[name] = {"error": f"{type(e).__name__}: {e}"}
        report[name + "_seconds"] = round(time.perf_counter() - t0, 1)
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
