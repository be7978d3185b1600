"""The ``backprop`` command: one module per command group; each parses, prints and calls the library.

=================  ==========================================================================
module             commands
=================  ==========================================================================
:mod:`.app`        the parser skeleton, the dispatch, the exit codes, ``--debug``
:mod:`.train`      ``train`` (flags; ``--config`` files are read by :mod:`.config`)
:mod:`.model`      ``evaluate``, ``predict``, ``info``
:mod:`.gradcheck`  ``gradcheck``
:mod:`.bench`      ``bench`` (the suite itself is :mod:`backprop.bench`)
:mod:`.insight`    ``report``, ``explain``, ``saliency``, ``attack``
=================  ==========================================================================

Shared by the commands: :mod:`.argtypes` (argument types and range checks), :mod:`.data`
(the data options and their loading), :mod:`.names` (names of losses, activations, ...
accepted with ``-`` or ``_``, shown with ``-``), :mod:`.widths` (the default network's widths
from the data), :mod:`.outputs` (output folders checked before training; a model that cannot
be saved where asked is saved elsewhere). No module of the library imports this package.
"""

from .app import main

__all__ = ["main"]
