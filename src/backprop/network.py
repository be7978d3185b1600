"""``Network``: an ordered list of layers with forward, backward and predict.

Forward runs the layers first to last, each keeping what its backward needs.
Backward runs them last to first: it is the δ recursion of the notes,
``δ^{l-1} = (f^{l-1})' ∘ (W^l)ᵀ δ^l`` (seed 000), split into the two halves
each layer owns (``Dense``: ``(W^l)ᵀ δ^l``; activation: ``(f^{l-1})' ∘``), and it
returns ``dC/dx``, seed 000's ``∇_x C``, as a first-class result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import activations as A
from ._validation import as_array, boolean, describe, float_input, optional_positive_int
from .activations import Activation
from .devices import CPU, Device, check_placement, device_input, get_device, to_numpy
from .errors import ConfigError, ShapeError, StateError
from .layers import Dense, Dropout, Layer

#: the layer kinds a model file may name, by class name
LAYER_KINDS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Dense, A.Identity, A.Sigmoid, A.Tanh, A.ReLU, A.LeakyReLU, A.ELU, A.Softplus, A.GELU,
                A.Softmax, Dropout)
}

_DTYPES: dict[str, np.dtype] = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def _network_dtype(dtype: Any) -> np.dtype:
    try:
        return _DTYPES[np.dtype(dtype).name]
    except (TypeError, KeyError):
        raise ConfigError(f"dtype must be 'float32' or 'float64'; got {dtype!r}") from None


class Network:
    """A feedforward network: ``a^L = layer_L(... layer_1(x))``.

    Args:
        layers: the layers in order, e.g. ``[Dense(784, 30), Sigmoid(), Dense(30, 10), Sigmoid()]``.
        seed: seed of the initializers and of dropout (``None``: fresh entropy, recorded in
            ``net.seed`` so the run can be repeated).
        dtype: ``"float32"`` (default) or ``"float64"``: the dtype of every parameter and of the
            computation. Input of another dtype: a float array that converts without loss
            (float32 into a float64 network) is converted once at the boundary; anything else
            raises :class:`~backprop.errors.DTypeError`. Nothing is promoted inside the hot path.
        device: where the parameters and the computation live: ``"cpu"`` (NumPy, the default),
            ``"cuda"`` or ``"cuda:N"`` (CuPy), or an array namespace with a device, e.g.
            ``(torch, "cuda:0")`` or ``(array_api_strict, array_api_strict.Device("device1"))``
            (see :func:`backprop.devices.get_device`). The initial weights are drawn with NumPy
            and then moved, so a seed gives the same weights on every device.

    Shape:
        input ``(N, d_0)`` → output ``(N, d_L)``.

    Attributes:
        layers: the layers, in order.
        parameter_buffer: every parameter in one contiguous 1-D array of ``n_params`` entries,
            layer by layer in the order of :meth:`parameters` (``W`` row-major, then ``b``);
            each ``layer.params[name]`` is a view into it.
        gradient_buffer: the gradients, laid out the same way; ``layer.grads[name]`` are views.
            An optimizer update, a checkpoint or an all-reduce is one call over one array.
        device: the :class:`~backprop.devices.Device` both buffers are on (see :meth:`to`).

    Example:
        >>> net = bp.Network([bp.Dense(2, 3), bp.Sigmoid(), bp.Dense(3, 2), bp.Sigmoid()], seed=0)
        >>> a = net.forward(np.zeros((4, 2), np.float32))   # (4, 2)
        >>> dx = net.backward(bp.Quadratic().grad(a, np.ones((4, 2), np.float32)))   # (4, 2)
    """

    def __init__(self, layers: Sequence[Layer], *, seed: int | None = None, dtype: Any = "float32",
                 device: Any = None) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, Sequence) or not layers:
            raise ConfigError(f"layers must be a non-empty list of layers; got {describe(layers)}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"layers[{i}] must be a backprop Layer; got {describe(layer)}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ConfigError("layers must be distinct objects; the same layer appears twice")
        self.layers: list[Layer] = list(layers)
        self.dtype: np.dtype = _network_dtype(dtype)
        self.device: Device = get_device(device)
        self.input_width, self.output_width = self._check_widths()
        # below the first Dense layer nothing has parameters: backward may stop there
        self._first_dense = next((i for i, layer in enumerate(self.layers) if isinstance(layer, Dense)), None)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int when drawn
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer or None; got {describe(seed)}")
        self.seed = int(seed)
        self.reset_parameters()

    def _check_widths(self) -> tuple[int | None, int | None]:
        first = next((layer.d_in for layer in self.layers if isinstance(layer, Dense)), None)
        width = first
        for layer in self.layers:
            width = layer.output_width(width)
        return first, width

    @classmethod
    def from_config(cls, config: Sequence[dict[str, Any]], *, seed: int | None = None,
                    dtype: Any = "float32", device: Any = None) -> Network:
        """Build a network from :meth:`config`'s output; refuses unknown layer kinds."""
        layers = []
        for i, spec in enumerate(config):
            if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
                raise ConfigError(f"config[{i}] must be a dict with a 'kind'; got {describe(spec)}")
            kwargs = {k: v for k, v in spec.items() if k != "kind"}
            kind = LAYER_KINDS.get(spec["kind"])
            if kind is None:
                raise ConfigError(f"config[{i}] names an unknown layer kind {spec['kind']!r}; "
                                  f"known kinds: {sorted(LAYER_KINDS)}")
            try:
                layers.append(kind(**kwargs))
            except TypeError as err:
                raise ConfigError(f"config[{i}] ({spec['kind']}): {err}") from None
        return cls(layers, seed=seed, dtype=dtype, device=device)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling (and ``copy.deepcopy``): pickle stores each ``layer.params`` view as an
        array of its own, so bind them to one buffer again, holding the pickled values."""
        self.__dict__.update(state)
        values = self.parameter_buffer
        self._bind_buffers()
        self.parameter_buffer[...] = values

    def astype(self, dtype: Any) -> Network:
        """A copy of this network computing in ``dtype``, its parameters cast to it (same device)."""
        copy = Network.from_config(self.config(), seed=self.seed, dtype=dtype)
        copy.parameter_buffer[...] = to_numpy(self.parameter_buffer)
        return copy.to(self.device)

    def reset_parameters(self) -> None:
        """Draw every parameter afresh from ``seed`` (the same seed gives the same weights, on
        every device: they are drawn with NumPy on the host and then moved)."""
        device, self.device = self.device, CPU
        try:
            self._bind_buffers()
            rng = np.random.default_rng(self.seed)
            for layer in self.layers:
                layer.reset_parameters(rng, self.dtype)
        finally:
            self.device = device
        if not device.is_numpy:
            self._bind_buffers(self.parameter_buffer)

    def to(self, device: Any) -> Network:
        """Move the parameters to ``device`` (any form ``Network(device=...)`` takes) in place,
        through one host copy, and return the network. Work arrays and the values kept by the
        last forward are dropped; an optimizer's state stays where it was (use a fresh one)."""
        device = get_device(device)
        if device == self.device:
            return self
        values = to_numpy(self.parameter_buffer)
        self.device = device
        self._bind_buffers(values)
        for layer in self.layers:
            layer._clear_workspace()
            for kept in ("_x", "_z", "_a", "_mask", "last_delta"):
                if hasattr(layer, kept):
                    setattr(layer, kept, None)
        return self

    def _bind_buffers(self, values: Any = None) -> None:
        """Lay every layer's parameters out in one buffer on :attr:`device` (holding ``values``,
        a host array, when given), and their gradients in another, and point
        ``layer.params[name]`` / ``layer.grads[name]`` at views into them."""
        shapes = [layer.parameter_shapes() for layer in self.layers]
        total = sum(int(np.prod(shape)) for named in shapes for shape in named.values())
        device, ops = self.device, self.device.ops
        self.parameter_buffer: np.ndarray = device.empty((total,), self.dtype)
        if values is not None:
            ops.copyto(self.parameter_buffer, device.asarray(to_numpy(values)))
        self.gradient_buffer: np.ndarray = device.zeros((total,), self.dtype)
        offset = 0
        for layer, named in zip(self.layers, shapes, strict=True):
            params, grads = {}, {}
            for name, shape in named.items():
                size = int(np.prod(shape))
                params[name] = ops.reshape(self.parameter_buffer[offset:offset + size], shape)
                grads[name] = ops.reshape(self.gradient_buffer[offset:offset + size], shape)
                offset += size
            layer.params, layer.grads = params, grads

    def _input(self, x: Any, name: str, width: int | None) -> Any:
        """A checked batch ``(N, width)`` on :attr:`device`: host data is checked on the host and
        moved once; an array already there is checked there; any other array is refused."""
        if check_placement(x, name, self.device):
            return device_input(x, name, self.device, self.dtype, width)
        return self.device.asarray(float_input(x, name, self.dtype, width))

    # ----------------------------------------------------------------- passes
    def forward(self, x: Any, train: bool = False) -> np.ndarray:
        """``a^L`` for the batch ``x`` of shape ``(N, d_0)``; keeps what ``backward`` needs.

        ``train=True`` switches on training-only behaviour (dropout). Returns ``(N, d_L)``.
        """
        train = boolean(train, "train")
        x = self._input(x, "x", self.input_width)
        return self.device.ops.copy(self.forward_unchecked(x, train))  # the layers' own array is reused

    def forward_unchecked(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """``forward`` without validation: ``x`` must already be a finite ``(N, d_0)`` array of
        ``dtype``. Returns the last layer's workspace array, valid until the next forward."""
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, grad: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``grad = dC/da^L`` (shape ``(N, d_L)``) through every layer.

        Sets ``layer.grads`` of every layer with parameters and returns ``dC/dx``, shape
        ``(N, d_0)`` (seed 000's ``∇_x C``), or ``None`` when ``input_grad=False`` (which
        skips the first layer's ``Δ W`` product).
        """
        input_grad = boolean(input_grad, "input_grad")
        if not check_placement(grad, "grad", self.device):
            grad = as_array(grad, "grad")
        if len(grad.shape) != 2 or (self.output_width is not None and grad.shape[1] != self.output_width):
            raise ShapeError(f"grad must be dC/da^L of shape (N, {self.output_width}); got shape {tuple(grad.shape)}")
        grad = self._input(grad, "grad", grad.shape[1])
        rows = self._forward_rows()
        if rows is None:
            raise StateError("backward needs the values kept by a forward pass: call "
                             "net.forward(x) (train=True to train) first")
        if rows not in (-1, grad.shape[0]):
            raise ShapeError(f"grad must have one row per sample of the last forward ({rows}); "
                             f"got shape {grad.shape}")
        grad_x = self.backward_unchecked(grad, input_grad=input_grad)
        return None if grad_x is None else self.device.ops.copy(grad_x)  # the first layer's array is reused

    def _forward_rows(self) -> int | None:
        """The batch size of the last forward, read from the first layer that keeps its input
        (``None``: no forward yet; ``-1``: no layer keeps anything, so any size will do)."""
        for layer in self.layers:
            if isinstance(layer, Dense):
                return None if layer._x is None else layer._x.shape[0]
            if isinstance(layer, Activation):
                return None if layer._z is None else layer._z.shape[0]
        return -1

    def backward_unchecked(self, grad: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """``backward`` without validation."""
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == self._first_dense and not input_grad:
                layer.backward(grad, input_grad=False)  # type: ignore[call-arg]
                return None
            grad = layer.backward(grad)
        return grad

    #: rows per chunk of :meth:`predict` when no ``batch_size`` is given: enough for full-speed
    #: matrix products, few enough that a chunk's activations stay small (measured: 10,000
    #: MNIST images through [784,256,256,10] 5% faster than in one piece, 18% faster than in
    #: chunks of 512)
    PREDICT_ROWS = 2048

    def predict(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """The output ``a^L`` for ``x`` ``(N, d_0)`` → ``(N, d_L)``; the same values as ``forward``,
        but nothing is kept, so several threads may call it at once.

        The rows run in chunks of ``batch_size`` (default :attr:`PREDICT_ROWS`), which bounds
        the memory used: the layers write into two arrays of ``chunk × widest layer`` that
        every chunk reuses (each layer's :meth:`~backprop.layers.Layer.predict_unchecked`), and the
        last layer into the rows of the result. The result is on :attr:`device`, like ``x``
        there (a NumPy ``x`` given to a network on a GPU is moved there once).
        """
        batch_size = optional_positive_int(batch_size, "batch_size")
        x = self._input(x, "x", self.input_width)
        n = x.shape[0]
        rows = min(self.PREDICT_ROWS if batch_size is None else batch_size, n)  # n >= 1: checked
        widths: list[int] = []
        width: int = x.shape[1]
        for layer in self.layers:
            width = int(layer.output_width(width))  # type: ignore[arg-type]  # known input: known output
            widths.append(width)
        device = self.device
        out = device.empty((n, int(widths[-1] or 0)), self.dtype)
        size = rows * max(widths[:-1], default=0)
        scratch = (device.empty((size,), self.dtype), device.empty((size,), self.dtype))
        for i in range(0, n, rows):
            j = min(i + rows, n)  # the array API leaves slices past the end unspecified
            self._predict_chunk(x[i:j, ...], out[i:j, ...], scratch, widths)
        return out

    def _predict_chunk(self, x: np.ndarray, out: np.ndarray, scratch: tuple[np.ndarray, np.ndarray],
                       widths: list[int]) -> None:
        """Write the output for the rows ``x`` into ``out``; a layer's output goes to the one of
        the two flat ``scratch`` arrays that does not hold its input (the last layer's: out)."""
        m, holder = x.shape[0], None  # holder: the scratch array x lives in (None: neither)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last:
                target = out
            else:
                holder_next = 1 if holder == 0 else 0
                target = self.device.ops.reshape(scratch[holder_next][:m * widths[i]], (m, widths[i]))
            a = layer.predict_unchecked(x, target)
            if a is not x and i < last:
                holder = holder_next
            x = a
        if x is not out:  # the last layer passed its input through (Dropout)
            self.device.ops.copyto(out, x)

    # ------------------------------------------------------------- parameters
    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """``("0.W", W), ("0.b", b), ("2.W", ...)``: layer index and parameter name."""
        for i, layer in enumerate(self.layers):
            for name, value in layer.params.items():
                yield f"{i}.{name}", value

    def parameters(self) -> list[np.ndarray]:
        """Every parameter array, in a fixed order (writable in place)."""
        return [value for _, value in self.named_parameters()]

    def gradients(self) -> list[np.ndarray]:
        """``dC/d(parameter)`` from the last backward, in the order of :meth:`parameters`."""
        return [layer.grads[name] for layer in self.layers for name in layer.params]

    @property
    def n_params(self) -> int:
        """The number of scalar parameters."""
        return int(self.parameter_buffer.shape[0])

    def config(self) -> list[dict[str, Any]]:
        """The architecture: ``[{"kind": "Dense", "d_in": 784, ...}, ...]``."""
        return [{"kind": type(layer).__name__, **layer.config()} for layer in self.layers]

    # ---------------------------------------------------------------- display
    def summary(self) -> str:
        """A table of the layers with their output shapes and parameter counts."""
        rows = [("#", "layer", "output", "params")]
        width = self.input_width
        for i, layer in enumerate(self.layers):
            width = layer.output_width(width)
            n = sum(int(np.prod(p.shape)) for p in layer.params.values())
            rows.append((str(i), repr(layer), f"(N, {width})", f"{n:,}"))
        cols = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(r[c].ljust(cols[c]) if c < 2 else r[c].rjust(cols[c]) for c in range(4))
                 for r in rows]
        rule = "-" * len(lines[0])
        where = "" if self.device.is_numpy else f", device {self.device.name}"
        total = f"total parameters: {self.n_params:,}  (dtype {self.dtype}, seed {self.seed}{where})"
        return "\n".join([lines[0], rule, *lines[1:], rule, total])

    def _repr_html_(self) -> str:
        """The summary as an HTML table, for notebooks."""
        from html import escape

        rows, width = [], self.input_width
        for i, layer in enumerate(self.layers):
            width = layer.output_width(width)
            n = sum(int(np.prod(p.shape)) for p in layer.params.values())
            rows.append(f"<tr><td>{i}</td><td><code>{escape(repr(layer))}</code></td>"
                        f"<td>(N, {width})</td><td style='text-align:right'>{n:,}</td></tr>")
        return ("<table><thead><tr><th>#</th><th>layer</th><th>output</th><th>params</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table><p>{self.n_params:,} parameters, "
                f"{self.dtype}, seed {self.seed}</p>")

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Network({inner}\n)  # {self.n_params:,} parameters, {self.dtype}"
