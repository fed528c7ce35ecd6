"""Peak memory and time of ONE training step: eiplab GemNet vs PyG DimeNet++ on ANI-Al-like cells.

A step = forward + backward + Adam step, energy-only MSE loss, sum pooling + small head.
Cells: 250-atom fcc Al (5x5x10 primitive supercell, a = 4.048 A, i.e. 2.70 g/cm3),
rattled (0.15 A) and randomly strained (2%) -- about 87 neighbours per atom inside 7 A.
Every measurement runs in a fresh subprocess: CPU peak = ru_maxrss after the step minus
ru_maxrss once model, optimizer and batch are built (the imports and data do not count);
on CUDA also torch.cuda.max_memory_allocated minus the memory allocated before the step.
Workers run with MALLOC_MMAP_THRESHOLD_=131072: by default glibc raises its mmap threshold
after large frees and then keeps freed tensors in the heap, so RSS would measure allocator
hoarding (up to ~1 GiB extra here) rather than what the step needs; same for both models.
Step times are wall-clock and process CPU seconds (2 steps: the first includes warm-up);
other jobs on the machine inflate wall times, so the load average is printed with them.

DimeNet++ is torch_geometric.nn.models.DimeNetPlusPlus with its own modules and weights,
but its ``forward`` needs torch-cluster (radius_graph) and torch-sparse (triplets), which
are not installed here, and it has no periodic images. ``dimenet_pp_energy`` below replays
its forward (same modules, same order, same maths) on our periodic edges (cell shifts) with
triplets from ``eiplab.graphs.triplets.build_triplets`` (all edges, reverse edge excluded:
the same triplet set PyG builds for a non-periodic graph).

Usage:
    python benchmarks/bench_gemnet_memory.py            # the default set of runs
    python benchmarks/bench_gemnet_memory.py --quick    # small batches only
    python benchmarks/bench_gemnet_memory.py --worker gemnet --batch 4   # one measurement
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CUTOFF = 7.0
WIDTH, N_BLOCKS = 128, 5
FCC_A = 4.048  # Angstrom; 4 * 26.98 u / a^3 = 2.70 g/cm3


def ani_al_like_cells(n_configs: int, seed: int = 0):
    """250-atom rattled, strained fcc Al cells (ase.Atoms)."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n_configs):
        atoms = bulk("Al", "fcc", a=FCC_A) * (5, 5, 10)  # 250 atoms
        strain = np.eye(3) + rng.normal(0, 0.02, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0, 0.15, atoms.positions.shape)
        cells.append(atoms)
    return cells


def dimenet_pp_energy(model, batch):
    """PyG DimeNet++ forward on periodic edges (see module docstring). -> [n_configs, 1]."""
    import torch
    from torch_geometric.utils import scatter

    from eiplab.graphs.build import CELL_SHIFT, EDGE_INDEX, Z, edge_vectors
    from eiplab.graphs.triplets import build_triplets

    j, i = batch[EDGE_INDEX]  # PyG's DimeNet uses the same j -> i convention
    vec = edge_vectors(batch)  # [E, 3] = pos_j - pos_i (+ shift)
    dist = vec.norm(dim=-1)
    trip = build_triplets(batch[EDGE_INDEX], batch[CELL_SHIFT])  # all edges: ids are global
    idx_kj, idx_ji = trip.idx_kj, trip.idx_ji
    # DimeNet++ angle between pos_i - pos_j and pos_j - pos_k, from periodic edge vectors
    pos_ij, pos_jk = -vec[idx_ji], -vec[idx_kj]
    a = (pos_ij * pos_jk).sum(dim=-1)
    b = torch.cross(pos_ij, pos_jk, dim=1).norm(dim=-1)
    angle = torch.atan2(b, a)
    rbf = model.rbf(dist)
    sbf = model.sbf(dist, angle, idx_kj)
    x = model.emb(batch[Z], rbf, i, j)
    n_atoms = batch[Z].size(0)
    P = model.output_blocks[0](x, rbf, i, num_nodes=n_atoms)
    for interaction, output in zip(model.interaction_blocks, model.output_blocks[1:], strict=True):
        x = interaction(x, rbf, sbf, idx_kj, idx_ji)
        P = P + output(x, rbf, i, num_nodes=n_atoms)
    return scatter(P, batch.batch, dim=0, reduce="sum")


def worker(name: str, batch_size: int, options: dict) -> dict:
    """Build one model and batch, run two training steps; return the measurements."""
    import torch
    from torch_geometric.data import Batch

    from eiplab.graphs.build import atoms_to_data, edge_vectors
    from eiplab.graphs.triplets import build_triplets

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    graphs = [atoms_to_data(a, CUTOFF) for a in ani_al_like_cells(batch_size)]
    batch = Batch.from_data_list(graphs).to(device)
    target = torch.randn(batch_size, device=device)
    n_edges = int(batch.edge_index.shape[1])

    if name == "gemnet":
        from eiplab.models.base import AtomwiseHead
        from eiplab.models.gemnet import GemNet

        rep = GemNet(width=WIDTH, n_layers=N_BLOCKS, cutoff=CUTOFF, **options)
        model = torch.nn.ModuleDict({"rep": rep, "head": AtomwiseHead(WIDTH, 1)}).to(device)

        def energy():
            return model["head"](model["rep"](batch), batch).squeeze(1)

        with torch.no_grad():
            dist = edge_vectors(batch).norm(dim=-1)
            n_triplets = len(
                build_triplets(batch.edge_index, batch.cell_shift, dist, rep.config.triplet_cutoff)
            )
    elif name == "dimenet++":
        from torch_geometric.nn.models import DimeNetPlusPlus

        model = DimeNetPlusPlus(
            hidden_channels=WIDTH,
            out_channels=1,
            num_blocks=N_BLOCKS,
            int_emb_size=64,
            basis_emb_size=8,
            out_emb_channels=256,
            num_spherical=7,
            num_radial=6,
            cutoff=CUTOFF,
        ).to(device)

        def energy():
            return dimenet_pp_energy(model, batch).squeeze(1)

        with torch.no_grad():
            n_triplets = len(build_triplets(batch.edge_index, batch.cell_shift))
    else:
        raise ValueError(f"unknown model {name!r}")

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in model.parameters())

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(energy(), target)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_before = torch.cuda.memory_allocated()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times, cpu_times = [], []
    for _ in range(2):  # the first step sets the peak (Adam state included); time both
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "model": name,
        "batch": batch_size,
        "options": options,
        "n_atoms": int(batch.num_nodes),
        "n_edges": n_edges,
        "n_triplets": n_triplets,
        "n_params": n_params,
        "cpu_peak_gib": (rss_after - rss_before) / 2**20,
        "step_s": times,
        "step_cpu_s": cpu_times,
        "load_avg": os.getloadavg()[0],
        "device": device.type,
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        result["cuda_peak_gib"] = (torch.cuda.max_memory_allocated() - cuda_before) / 2**30
    return result


def run(name: str, batch_size: int, options: dict | None = None, timeout: int = 7200) -> dict:
    """One measurement in a fresh subprocess (OOM kill or crash -> an 'error' entry)."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--batch",
        str(batch_size),
        "--options",
        json.dumps(options or {}),
    ]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        result = {
            "model": name,
            "batch": batch_size,
            "options": options or {},
            "error": f"timed out after {timeout} s",
        }
        show(result)
        return result
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-400:]
        result = {
            "model": name,
            "batch": batch_size,
            "options": options or {},
            "error": f"exit {proc.returncode}: {tail}",
        }
    else:
        result = json.loads(lines[-1])
    show(result)
    return result


def available_gib() -> float:
    """MemAvailable from /proc/meminfo (GiB); inf where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def show(r: dict) -> None:
    if "error" in r:
        print(
            f"{r['model']:10s} b={r['batch']:<3d} {r['options']}  FAILED {r['error']}", flush=True
        )
        return
    cuda = f"  cuda peak {r['cuda_peak_gib']:.2f} GiB" if "cuda_peak_gib" in r else ""
    print(
        f"{r['model']:10s} b={r['batch']:<3d} {json.dumps(r['options']):26s} edges {r['n_edges']:>7d} "
        f"triplets {r['n_triplets']:>9d}  cpu peak {r['cpu_peak_gib']:6.2f} GiB{cuda}  step "
        f"{r['step_s'][0]:5.1f}/{r['step_s'][1]:5.1f} s wall, {r['step_cpu_s'][1]:5.1f} s cpu "
        f"(load {r['load_avg']:.1f})",
        flush=True,
    )


def fit_per_config(results: list[dict], name: str, options: dict | None = None):
    """Least-squares line peak = a + b * batch over the successful runs -> (a, b) or None."""
    ok = [
        r
        for r in results
        if r["model"] == name and "error" not in r and r["options"] == (options or {})
    ]
    if len({r["batch"] for r in ok}) < 2:
        return None
    b, a = np.polyfit([r["batch"] for r in ok], [r["cpu_peak_gib"] for r in ok], 1)
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["gemnet", "dimenet++"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--options", default="{}", help="JSON: GemNet keyword options")
    parser.add_argument("--quick", action="store_true", help="small batches only")
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.batch, json.loads(args.options))), flush=True)
        return

    ckpt = {"checkpoint": True}  # the default (checkpoint=None) turns it on from 50k edges
    results = [run("gemnet", b, ckpt) for b in ([1, 4] if args.quick else [1, 4, 8, 32])]
    results.append(run("gemnet", 1, {"checkpoint": False}))
    if not args.quick:
        results.append(run("gemnet", 2, {"checkpoint": False}))
    results.append(run("gemnet", 1, {**ckpt, "triplet_cutoff": CUTOFF}))  # all triplets
    results.append(run("dimenet++", 1))
    dpp1 = results[-1]
    if not args.quick and "error" not in dpp1:
        need = 2.2 * dpp1["cpu_peak_gib"]
        if need < 0.85 * available_gib():
            results.append(run("dimenet++", 2))
        else:
            print(
                f"skipping DimeNet++ batch 2: needs ~{need:.0f} GiB, "
                f"{available_gib():.0f} GiB available",
                flush=True,
            )

    print()
    for name, opts, label in [
        ("gemnet", ckpt, "GemNet"),
        ("dimenet++", None, "DimeNet++"),
        ("gemnet", {"checkpoint": False}, "GemNet no checkpointing"),
    ]:
        fit = fit_per_config(results, name, opts)
        if fit:
            print(
                f"{label:26s} peak ~ {fit[0]:5.2f} + {fit[1]:5.3f} GiB x batch  ->  batch 32: "
                f"{fit[0] + 32 * fit[1]:6.1f} GiB (extrapolated)"
            )
    gem32 = [
        r
        for r in results
        if r["model"] == "gemnet" and r["batch"] == 32 and r["options"] == ckpt and "error" not in r
    ]
    dfit = fit_per_config(results, "dimenet++")
    if dfit is None and "error" not in dpp1:  # one point: proportional to batch
        dfit = (0.0, dpp1["cpu_peak_gib"])
    if gem32 and dfit:
        d32 = dfit[0] + 32 * dfit[1]
        g32 = gem32[0]["cpu_peak_gib"]
        print(
            f"batch 32: GemNet {g32:.2f} GiB MEASURED, DimeNet++ {d32:.0f} GiB EXTRAPOLATED"
            f"  ->  ratio DimeNet++ / GemNet = {d32 / g32:.0f}x"
        )
    for b in (1, 2):
        gem = [
            r
            for r in results
            if r["model"] == "gemnet"
            and r["batch"] == b
            and r["options"] == ckpt
            and "error" not in r
        ]
        dpp = [
            r for r in results if r["model"] == "dimenet++" and r["batch"] == b and "error" not in r
        ]
        if gem and dpp:
            ratio = dpp[0]["cpu_peak_gib"] / gem[0]["cpu_peak_gib"]
            print(
                f"batch {b} MEASURED: DimeNet++ {dpp[0]['cpu_peak_gib']:.2f} GiB / GemNet "
                f"{gem[0]['cpu_peak_gib']:.2f} GiB = {ratio:.0f}x"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
