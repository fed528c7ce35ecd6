"""Shared settings of the strategy tests: two fast Si EIPs and a tiny network."""

FAST_SI_EIPS = [
    "SW_StillingerWeber_1985_Si__MO_405512056662_005",
    "Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684871_003",
]
TINY_NET = {"width": 16, "n_layers": 2, "n_gaussians": 16}  # ModelConfig fields of a network for tests
