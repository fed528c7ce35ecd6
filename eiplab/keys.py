"""The one registry of keys used on ``ase.Atoms`` objects and in tables.

Every key eiplab reads or writes is a constant here, with its shape and unit.
Nothing else in the package spells these strings.
"""

# --- Atoms.info (per configuration) ---------------------------------------------------------
CONFIG_ID = "config_id"  # str; stable id, survives reordering (split files and caches use it)
ENERGY_DFT = "energy_dft"  # float, eV; total DFT energy (missing when unlabelled)
ENERGY_EIP = "energy_eip"  # dict[str, float], eV; total energy per EIP model id (NaN = failed)
FORCES_EIP = "forces_eip"  # dict[str, float [n_atoms, 3] | None], eV/Angstrom; forces per EIP (None = failed)
DFT_HIDDEN = "dft_hidden"  # bool; DFT known but reserved for auditing: always pool, never trained on
PHASE = "phase"  # str; e.g. "bulk", "liquid", "cluster", "random-crystal"
SOURCE = "source"  # str; where the configuration came from (dataset/file)

# --- Atoms.arrays (per atom) ----------------------------------------------------------------
FORCES_DFT = "forces_dft"  # float [n_atoms, 3], eV/Angstrom

# --- split labels (split CSV files: ``config_id,split``) ------------------------------------
POOL = "pool"  # DFT hidden from training (used unlabelled)
TRAIN = "train"
VAL = "val"
TEST = "test"
SPLITS = (POOL, TRAIN, VAL, TEST)

# --- table columns ---------------------------------------------------------------------------
N_ATOMS = "n_atoms"
MAE_CONFIG = "mae_config"  # eV: mean |E_pred - E_dft|
MAE_FORCE = "mae_force"  # eV/Angstrom: mean |F_pred - F_dft| over force components (force training)
RMSE_FORCE = "rmse_force"  # eV/Angstrom: root mean squared force-component error
MEAN_ABS_FORCE_DFT = "mean_abs_force_dft"  # eV/Angstrom: mean |F_dft| over force components (the scale)
MAE_ATOM = "mae_atom"  # eV/atom: mean |E_pred - E_dft| / N

# --- run records -------------------------------------------------------------------------------
SELECTOR = "selector"  # str; how an LA run picked its EIP per pool config ("classifier", "error-regression")
DEFAULT_SELECTOR = "classifier"  # the paper's; records from before the selector was recorded used it
