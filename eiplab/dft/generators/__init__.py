"""Configuration generators for the built-in DFT datasets (Al and AgAu)."""

from .agau import AGAU_MIX, generate_agau
from .al import AL_MD_MODEL, AL_MIX, al_family, generate_al

__all__ = ["AGAU_MIX", "AL_MD_MODEL", "AL_MIX", "al_family", "generate_agau", "generate_al"]
