"""Argument types and the parser class of the ``volumedr`` command line."""
from __future__ import annotations

import argparse
import math
import sys


class Parser(argparse.ArgumentParser):
    """argparse with volumedr's one-line errors (``volumedr: error: ...``, exit status 2)."""

    def error(self, message):
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        print(f"volumedr: error: {sub + ': ' if sub else ''}{message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def integer(s):
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None


def positive_int(s):
    v = integer(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def seed(s):
    v = integer(s)
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"a random seed must be an integer from 0 to 2**63 - 1, got {v}")
    return v


def finite(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {s!r}")
    return v
