"""volumedr: an open digital tomosynthesis (volume DR) workstation.

The core (geometry, phantoms, simulate, reconstruct, io, cli) never imports Qt;
only :mod:`volumedr.gui` does.
"""

__version__ = "0.1.0"
