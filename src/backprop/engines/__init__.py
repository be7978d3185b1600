"""How a training step is executed: ``numpy`` (the readable reference) and ``numba`` (compiled)."""
