"""Analytic phantoms: primitives, materials and bundled cases."""
from .case import Case, Finding, case_names, load_case, load_case_file

__all__ = ["Case", "Finding", "case_names", "load_case", "load_case_file"]
