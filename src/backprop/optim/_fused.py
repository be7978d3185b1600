"""The fused updates' kernels, imported only when an update asks for them.

A fused update is the optimizer's update written as one compiled loop over the
elements (:mod:`backprop.optim.fused_kernels`): one pass over memory instead of
NumPy's chain of whole-array operations, with the same equations. numba is an optional
dependency (``pip install 'backprop[fast]'``), so it is looked up here, never imported
at module level.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from ..errors import ConfigError

INSTALL = "pip install 'backprop[fast]'"

_kernels: ModuleType | None = None


def numba_installed() -> bool:
    """Whether numba can be imported (it is not imported here)."""
    return importlib.util.find_spec("numba") is not None


def require_numba(owner: object) -> None:
    """Raise :class:`ConfigError`, naming ``fused`` and ``owner``, unless numba is installed."""
    if not numba_installed():
        raise ConfigError(f"fused=True needs numba, which is not installed ({INSTALL}); {owner!r} asked for it")


def kernels(owner: object) -> ModuleType:
    """The module :mod:`backprop.optim.fused_kernels` (imported at the first call).

    Raises:
        ConfigError: numba is not installed; the message names ``owner`` (the
            optimizer that asked for ``fused``).
    """
    global _kernels
    if _kernels is None:
        require_numba(owner)
        from . import fused_kernels

        _kernels = fused_kernels
    return _kernels
