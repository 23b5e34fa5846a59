"""Acquisition simulator: spectra, attenuation, projection, noise, detector; plain film; CT reference."""
from .acquire import settings_from_case, simulate, simulate_study, sweep_from_case
from .settings import AcquisitionSettings
from .spectrum import Spectrum

__all__ = ["simulate", "simulate_study", "AcquisitionSettings", "Spectrum", "sweep_from_case", "settings_from_case"]
