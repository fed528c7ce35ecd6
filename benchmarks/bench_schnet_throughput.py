"""Training throughput (configs/s) of eiplab's SchNet vs SchNetPack's SchNet.

Same settings for both: width 128, 5 interactions, 128 Gaussians on [0, 5 A], cosine
cutoff 5 A, atomwise MLP head (128 -> 64 -> 1), Adam, MSE on total energy, batch 32, the same
random Si-like periodic configurations (8-16 atoms) and the same neighbour
lists (built once with eiplab/vesin; SchNetPack gets them as idx_i/idx_j/offsets). Measured:
forward + loss + backward + optimiser step on pre-collated batches (data loading excluded for
both), after warm-up steps; the two models take turns step by step (so a changing load on shared
cores hits both alike) and the median over rounds is reported. Prints the ratio eiplab / SchNetPack (target >= 1).

``--force-weight W`` (> 0) times energy + force training instead (issue 20): loss = energy MSE +
W x per-component force MSE against fixed random target forces; eiplab through its training loss
(``energy_force_loss``: forces by autograd with ``create_graph``), SchNetPack through its own
``Forces`` output module; the same-function check then compares forces too.

Run: ``python benchmarks/bench_schnet_throughput.py [--steps 20] [--rounds 3] [--threads 2] [--force-weight 10]``.
Needs ``schnetpack`` (see benchmarks/RESULTS.md for how it was installed).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from eiplab.graphs import atoms_to_data, make_loader
from eiplab.graphs.build import CELL, CELL_SHIFT, EDGE_INDEX, FORCES, N_ATOMS, POS, Y, Z, atom_batch
from eiplab.models import ModelConfig, build_model
from eiplab.training.evaluate import energy_force_loss, predicted_forces

WIDTH, N_LAYERS, N_GAUSSIANS, CUTOFF, BATCH = 128, 5, 128, 5.0, 32
ENERGY = "energy"  # SchNetPack output key and the synthetic target in atoms.info
FORCES_KEY = "forces"  # SchNetPack's force output key


def random_si_configs(n: int, seed: int = 0) -> list[Atoms]:
    """Si-like periodic cells of 8-16 atoms: a strained 16-atom diamond cell (1x1x2 cubic),
    random atoms removed, positions rattled by 0.1 A."""
    rng = np.random.default_rng(seed)
    configs = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * rng.uniform(0.95, 1.05), cubic=True)
        atoms = atoms.repeat((1, 1, 2))
        atoms.set_cell(
            atoms.cell.array @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))), scale_atoms=True
        )
        keep = np.sort(rng.permutation(16)[: int(rng.integers(8, 17))])
        atoms = atoms[keep]
        atoms.rattle(0.1, seed=seed * 100_000 + k)
        atoms.info[ENERGY] = -5.4 * len(atoms) + rng.normal(0, 0.5)
        configs.append(atoms)
    return configs


def spk_inputs(batch) -> dict[str, torch.Tensor]:
    """A PyG batch as SchNetPack's input dict (same neighbours; offsets = S @ cell)."""
    import schnetpack.properties as p

    j, i = batch[EDGE_INDEX]
    edge_config = atom_batch(batch)[i]
    offsets = torch.bmm(batch[CELL_SHIFT].unsqueeze(1), batch[CELL][edge_config]).squeeze(1)
    return {
        p.Z: batch[Z],
        p.R: batch[POS].detach().clone(),
        p.idx_m: atom_batch(batch),
        p.idx_i: i,
        p.idx_j: j,
        p.offsets: offsets,
        p.n_atoms: batch[N_ATOMS],
        p.cell: batch[CELL],
        p.pbc: torch.ones(batch[N_ATOMS].shape[0], 3, dtype=torch.bool),
    }


def build_schnetpack(forces: bool = False):
    import schnetpack as spk

    representation = spk.representation.SchNet(
        n_atom_basis=WIDTH,
        n_interactions=N_LAYERS,
        radial_basis=spk.nn.GaussianRBF(n_rbf=N_GAUSSIANS, cutoff=CUTOFF),
        cutoff_fn=spk.nn.CosineCutoff(CUTOFF),
    )
    return spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[
            spk.atomistic.Atomwise(
                n_in=WIDTH, output_key=ENERGY, activation=spk.nn.shifted_softplus
            ),
            *([spk.atomistic.Forces(energy_key=ENERGY, force_key=FORCES_KEY)] if forces else []),
        ],
    )


def copy_weights(ours, theirs) -> None:
    """Load eiplab's SchNet weights into the SchNetPack model (same function check)."""
    source = ours.state_dict()
    target = theirs.state_dict()
    names = {"representation.embedding.weight": "representation_module.embedding.weight"}
    layers = [
        ("filter_network.0", "filter.0"),
        ("filter_network.1", "filter.2"),
        ("in2f", "in2f"),
        ("f2out.0", "f2out.0"),
        ("f2out.1", "f2out.2"),
    ]
    for k in range(N_LAYERS):
        for theirs_name, ours_name in layers:
            for p in ("weight", "bias"):
                ours_key = f"representation_module.interactions.{k}.{ours_name}.{p}"
                if ours_key in source:
                    names[f"representation.interactions.{k}.{theirs_name}.{p}"] = ours_key
    for theirs_name, ours_name in (("outnet.0", "head.net.0"), ("outnet.1", "head.net.2")):
        for p in ("weight", "bias"):
            names[f"output_modules.0.{theirs_name}.{p}"] = f"{ours_name}.{p}"
    for theirs_key, ours_key in names.items():
        target[theirs_key] = source[ours_key].clone()
    theirs.load_state_dict(target)


def interleaved_rates(steps, items, n_steps: int) -> list[float]:
    """Configs per second of each step function, timing them one step each in turn.

    Interleaving per step makes a changing machine load (shared cores) hit all models alike.
    """
    seconds = [0.0] * len(steps)
    configs = [0] * len(steps)
    for k in range(n_steps):
        for m, (step, batches) in enumerate(zip(steps, items, strict=True)):
            start = time.perf_counter()
            configs[m] += step(batches[k % len(batches)])
            seconds[m] += time.perf_counter() - start
    return [c / s for c, s in zip(configs, seconds, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force-weight", type=float, default=0.0,
                        help="> 0: energy + force training (both models), this weight on the force MSE")
    args = parser.parse_args()
    forces = args.force_weight > 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    configs = random_si_configs(8 * BATCH)
    graphs = [atoms_to_data(a, CUTOFF, target=a.info[ENERGY]) for a in configs]
    rng = np.random.default_rng(1)
    for g in graphs:  # synthetic target forces, eV/Angstrom
        g[FORCES] = torch.as_tensor(rng.normal(0, 0.5, (g.num_nodes, 3)), dtype=g[POS].dtype)
    batches = list(make_loader(graphs, BATCH))
    spk_batches = [(spk_inputs(b), b[Y], b[FORCES]) for b in batches]
    n_edges = sum(g[EDGE_INDEX].shape[1] for g in graphs) / sum(len(a) for a in configs)

    ours = build_model(
        ModelConfig(
            "schnet", width=WIDTH, n_layers=N_LAYERS, cutoff=CUTOFF, n_gaussians=N_GAUSSIANS
        )
    )
    theirs = build_schnetpack(forces)
    copy_weights(ours, theirs)  # same weights: both compute the same function
    ours_loss = energy_force_loss(args.force_weight) if forces else None
    probe = batches[0].clone()
    probe[POS].requires_grad_(True)
    ours_energy = ours(probe)
    theirs_out = theirs(dict(spk_batches[0][0]))
    difference = float((ours_energy[:, 0] - theirs_out[ENERGY]).detach().abs().max())
    force_difference = float((predicted_forces(ours_energy, probe) - theirs_out[FORCES_KEY]).detach().abs().max()) \
        if forces else None
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-4)
    ours.train()
    theirs.train()

    def step_ours(batch) -> int:
        opt_ours.zero_grad(set_to_none=True)
        if forces:
            batch[POS].requires_grad_(True)
            loss = ours_loss(ours(batch), batch)
        else:
            loss = torch.mean((ours(batch)[:, 0] - batch[Y]) ** 2)
        loss.backward()
        opt_ours.step()
        return int(batch[N_ATOMS].shape[0])

    def step_theirs(item) -> int:
        inputs, target, target_forces = item
        opt_theirs.zero_grad(set_to_none=True)
        out = theirs(dict(inputs))
        loss = torch.mean((out[ENERGY] - target) ** 2)
        if forces:
            loss = loss + args.force_weight * torch.mean((out[FORCES_KEY] - target_forces) ** 2)
        loss.backward()
        opt_theirs.step()
        return int(target.shape[0])

    n_params = (
        sum(p.numel() for p in ours.parameters()),
        sum(p.numel() for p in theirs.parameters()),
    )
    steps, items = (step_ours, step_theirs), (batches, spk_batches)
    interleaved_rates(steps, items, args.warmup)
    rates_ours, rates_theirs = [], []
    for _ in range(args.rounds):
        ours_round, theirs_round = interleaved_rates(steps, items, args.steps)
        rates_ours.append(ours_round)
        rates_theirs.append(theirs_round)
    ours_rate, theirs_rate = statistics.median(rates_ours), statistics.median(rates_theirs)

    import schnetpack

    print(f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}")
    print(f"torch {torch.__version__}, schnetpack {schnetpack.__version__}")
    print(
        f"{len(configs)} configs, {sum(len(a) for a in configs) / len(configs):.1f} atoms and "
        f"{n_edges:.1f} neighbours per atom on average; batch {BATCH}"
    )
    print(f"parameters: eiplab {n_params[0]}, schnetpack {n_params[1]}")
    print(f"same weights -> max |E_eiplab - E_schnetpack| on a batch: {difference:.2e} eV")
    if forces:
        print(f"same weights -> max |F_eiplab - F_schnetpack| on a batch: {force_difference:.2e} eV/A; "
              f"training on energy + {args.force_weight:g} x force MSE")
    print(f"eiplab SchNet     : {ours_rate:8.1f} configs/s  (rounds: {_fmt(rates_ours)})")
    print(f"SchNetPack SchNet : {theirs_rate:8.1f} configs/s  (rounds: {_fmt(rates_theirs)})")
    print(f"ratio eiplab / schnetpack = {ours_rate / theirs_rate:.2f}")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
