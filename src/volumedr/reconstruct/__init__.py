"""Reconstruction: shift-and-add and filtered backprojection onto planes parallel to the detector."""
from .engine import Reconstructor, SliceGrid, plane_coefficients, reconstruct, subplane_heights
from .settings import ReconSettings, parse_range

__all__ = ["Reconstructor", "ReconSettings", "SliceGrid", "reconstruct", "plane_coefficients", "subplane_heights",
           "parse_range"]
