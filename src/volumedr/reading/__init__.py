"""Reading: scoring readers' marks against a study's findings, film against volume DR (Qt-free)."""
from .scoring import TOLERANCE_MM, Mark, Target, read_marks, score, study_targets

__all__ = ["TOLERANCE_MM", "Mark", "Target", "read_marks", "score", "study_targets"]
