"""Devices: where a network's arrays live, and the one shim that runs the same maths on any array library.

The layers, activations, losses, optimizers and the training step are written once. They take
the array library from the arrays they are given (the Python array API standard, through
``array_api_compat``) and call it through :func:`ops_of`, which hands back an :class:`Ops`:

* NumPy and CuPy: their own functions, which write into ``out=`` (NumPy's fast path, unchanged);
* PyTorch: its ``out=`` matrix product, the element-wise maths computed then assigned;
* array-api-strict (the standard and nothing else, for tests): computed, then assigned into
  ``out`` with ``out[...] = value``.

A :class:`Device` names where a network's arrays are: ``"cpu"`` (NumPy), ``"cuda"`` or
``"cuda:N"`` (CuPy), or an array namespace with a device, e.g. ``(torch, "cuda:0")`` or
``(array_api_strict, array_api_strict.Device("device1"))``. Arrays cross between the host and a
device only through :meth:`Device.asarray` and :func:`to_numpy`, at a boundary (the start of a
``fit``, a save), never inside a training step.
"""

from .device import (
    CPU,
    Device,
    check_placement,
    describe_array,
    device_input,
    dtype_kind,
    empty_on,
    from_host,
    get_device,
    numpy_dtype,
    scalar,
    to_numpy,
)
from .ops import ACCEPTED, ELEMENTWISE, Ops, device_of, is_library_array, on_device, ops_of

__all__ = ["ACCEPTED", "CPU", "ELEMENTWISE", "Device", "Ops", "check_placement", "describe_array", "device_input",
           "device_of", "dtype_kind", "empty_on", "from_host", "get_device", "is_library_array", "numpy_dtype",
           "on_device", "ops_of", "scalar", "to_numpy"]
