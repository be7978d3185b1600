"""The numba kernels of :mod:`backprop.engines.numba` (imported only when that engine runs).
The fused optimizer updates have kernels of their own, in :mod:`backprop.optim.fused_kernels`.

Every function works on the first ``m`` rows of preallocated arrays and allocates nothing.
The equations are those of :mod:`backprop.layers`, :mod:`backprop.activations` and
:mod:`backprop.losses`; see :mod:`backprop.engines.numba` for how the order of floating-point
operations differs from the NumPy engine's.

**The same bits in every process.** :func:`sgd_steps` is the only kernel of the engine that
Python calls; the kernels it calls are its *parts*, compiled with ``inline="always"`` into its
body. Were they separate numba functions, each would exist twice as machine code: once in its
own library, optimised alone, and once linked into ``sgd_steps``'s library and optimised again
there. Under the reassociation flags below the two copies add in different orders (LLVM
vectorises and interleaves each copy differently), and which copy ran depended on how the
kernels were obtained: in a process that compiled them, the calls resolved to the parts'
own libraries (loaded first); in a process that loaded ``sgd_steps`` from numba's disk cache,
to the copies inside it. The weights then differed by a few ulps (at batch sizes with a block
of 5 or leftover rows: 16, 25, 32). Inlined, there is one copy, and the cache holds exactly
the machine code that a fresh compile runs.
"""

import math
from enum import IntEnum

import numba

# reassociation and contraction let the inner loops use SIMD and FMA; no "nnan"/"ninf",
# so a NaN or infinite loss is still seen and reported. error_model="numpy": a division by
# zero gives inf or NaN as in NumPy (not a Python exception), which lets divisions vectorise
_FLAGS = {"reassoc", "contract", "nsz", "arcp"}
#: an entry point, called from Python (compiled once per signature, cached on disk)
jit = numba.njit(cache=True, fastmath=_FLAGS, nogil=True, error_model="numpy")
#: a part of :func:`sgd_steps`, inlined into it (see the module's docstring for why)
part = numba.njit(cache=True, fastmath=_FLAGS, nogil=True, error_model="numpy", inline="always")


class Activation(IntEnum):
    """What follows a Dense layer, as the kernels' ``codes`` name it (one code per Dense layer)."""

    IDENTITY = 0    # also: no activation at all
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4


class LossKind(IntEnum):
    """The loss, as the kernels' ``loss_code`` names it."""

    QUADRATIC = 0
    CROSS_ENTROPY = 1
    BINARY_CROSS_ENTROPY = 2


@part
def activate(code, slope, z, a, m, one):
    """a = f(z) for the first m rows."""
    d = z.shape[1]
    for i in range(m):
        for j in range(d):
            v = z[i, j]
            if code == Activation.IDENTITY:
                a[i, j] = v
            elif code == Activation.SIGMOID:
                a[i, j] = one / (one + math.exp(-v))        # φ(z) = 1/(1 + e^{−z})
            elif code == Activation.TANH:
                a[i, j] = math.tanh(v)
            elif code == Activation.RELU:
                a[i, j] = 0.0 if v <= 0 else v                # max(z, 0); NaN stays NaN
            else:  # Activation.LEAKY_RELU
                a[i, j] = v * slope if v <= 0 else v


@part
def times_derivative(code, slope, z, a, g, m, one):
    """g ← g ⊙ f'(z): seed 002's ∂C/∂z = ∂C/∂a ⊙ ∂σ(z)/∂z, for the first m rows."""
    if code == Activation.IDENTITY:
        return
    d = z.shape[1]
    for i in range(m):
        for j in range(d):
            if code == Activation.SIGMOID:
                g[i, j] *= a[i, j] * (one - a[i, j])         # φ' = φ(1 − φ)
            elif code == Activation.TANH:
                g[i, j] *= one - a[i, j] * a[i, j]           # tanh' = 1 − tanh²
            elif code == Activation.RELU:
                if z[i, j] <= 0:
                    g[i, j] = 0.0
            elif z[i, j] <= 0:  # Activation.LEAKY_RELU
                g[i, j] *= slope


@part
def loss_grad(code, a, t, order, lo, m, g, batch_rows):
    """Write dC/da of the first m rows into g, as rows of the mean over a batch of
    ``batch_rows`` samples (so with 1/batch_rows; m < batch_rows when a thread computes a
    part of the batch); return Σ_x C_x over the m rows."""
    k = a.shape[1]
    inv_m = 1.0 / batch_rows
    total = 0.0
    for i in range(m):
        row = order[lo + i]
        if code == LossKind.QUADRATIC:  # C_x = ½‖a − y‖², ∇_a C_x = a − y
            for j in range(k):
                r = a[i, j] - t[row, j]
                total += 0.5 * r * r
                g[i, j] = r * inv_m
        elif code == LossKind.CROSS_ENTROPY:  # softmax: C_x = logsumexp(a) − Σ y a, ∇ = p − y
            mx = a[i, 0]
            for j in range(1, k):
                mx = max(mx, a[i, j])
            se = 0.0
            ys = 0.0
            for j in range(k):
                s = a[i, j] - mx
                e = math.exp(s)
                g[i, j] = e
                se += e
                ys += t[row, j] * s
            total += math.log(se) - ys
            for j in range(k):
                g[i, j] = (g[i, j] / se - t[row, j]) * inv_m
        else:  # LossKind.BINARY_CROSS_ENTROPY, on logits: max(a,0) − a y + log(1 + e^{−|a|}), ∇ = φ(a) − y
            for j in range(k):
                v = a[i, j]
                y = t[row, j]
                total += max(v, 0.0) - v * y + math.log1p(math.exp(-abs(v)))
                g[i, j] = (1.0 / (1.0 + math.exp(-v)) - y) * inv_m
    return total


@part
def count_correct(a, labels, order, lo, m):
    """How many of the first m rows' outputs pick their sample's label (argmax, or a > 0 for
    a single logit), as ``fit`` counts them."""
    k = a.shape[1]
    hits = 0
    for i in range(m):
        truth = labels[order[lo + i]]
        if k == 1:  # one logit: class 1 where it is positive
            guess = 1 if a[i, 0] > 0 else 0
        else:
            guess = 0
            for j in range(1, k):
                if a[i, j] > a[i, guess]:
                    guess = j
        hits += guess == truth
    return hits


# The three loops over a Dense layer's weights. The forward and the update handle ten
# samples, then five, per pass over a weight row, so a row loaded once feeds several fused
# multiply-adds (ten rather than two passes of five: 11% less time at batch 10); the input
# gradient handles four units per pass over a sample's row; leftovers take the plain loop.
# The unrolling is the point, so these kernels are longer than the house's usual functions.


@part
def dense_forward(w, b, a_in, z, m):
    """Z = A Wᵀ + b for the first m rows (seed 000's zˡ = Wˡ aˡ⁻¹ + bˡ per row)."""
    d_out, d_in = w.shape
    for j in range(d_out):
        i = 0
        while i + 10 <= m:
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = b[j]
            for k in range(d_in):
                wk = w[j, k]
                s0 += wk * a_in[i, k]
                s1 += wk * a_in[i + 1, k]
                s2 += wk * a_in[i + 2, k]
                s3 += wk * a_in[i + 3, k]
                s4 += wk * a_in[i + 4, k]
                s5 += wk * a_in[i + 5, k]
                s6 += wk * a_in[i + 6, k]
                s7 += wk * a_in[i + 7, k]
                s8 += wk * a_in[i + 8, k]
                s9 += wk * a_in[i + 9, k]
            z[i, j], z[i + 1, j], z[i + 2, j], z[i + 3, j], z[i + 4, j] = s0, s1, s2, s3, s4
            z[i + 5, j], z[i + 6, j], z[i + 7, j], z[i + 8, j], z[i + 9, j] = s5, s6, s7, s8, s9
            i += 10
        while i + 5 <= m:
            s0 = s1 = s2 = s3 = s4 = b[j]
            for k in range(d_in):
                wk = w[j, k]
                s0 += wk * a_in[i, k]
                s1 += wk * a_in[i + 1, k]
                s2 += wk * a_in[i + 2, k]
                s3 += wk * a_in[i + 3, k]
                s4 += wk * a_in[i + 4, k]
            z[i, j], z[i + 1, j], z[i + 2, j], z[i + 3, j], z[i + 4, j] = s0, s1, s2, s3, s4
            i += 5
        for r in range(i, m):
            s = b[j]
            for k in range(d_in):
                s += w[j, k] * a_in[r, k]
            z[r, j] = s


@part
def dense_input_grad(w, g, g_in, m, zero):
    """dC/dA = Δ W for the first m rows (seed 000's (Wˡ)ᵀ δˡ per row)."""
    d_out, d_in = w.shape
    for i in range(m):
        for k in range(d_in):
            g_in[i, k] = zero
        j = 0
        while j + 4 <= d_out:
            c0, c1, c2, c3 = g[i, j], g[i, j + 1], g[i, j + 2], g[i, j + 3]
            for k in range(d_in):
                g_in[i, k] += c0 * w[j, k] + c1 * w[j + 1, k] + c2 * w[j + 2, k] + c3 * w[j + 3, k]
            j += 4
        for u in range(j, d_out):
            c = g[i, u]
            for k in range(d_in):
                g_in[i, k] += c * w[u, k]


@part
def dense_update(w, b, a_in, g, m, lr, shrink, decay):
    """w ← (1 − η wd) w − η Δᵀ A, b ← b − η Σ_x δ_x: plain SGD on seed 001's ∂J/∂W = A Eᵀ
    and ∂J/∂b = Σ_n e_n, summed into the weights sample by sample."""
    d_out, d_in = w.shape
    for j in range(d_out):
        if decay:  # L2 decay on weights only: w ← w − η wd w
            for k in range(d_in):
                w[j, k] *= shrink
        i = 0
        while i + 10 <= m:
            c0, c1, c2 = lr * g[i, j], lr * g[i + 1, j], lr * g[i + 2, j]
            c3, c4, c5 = lr * g[i + 3, j], lr * g[i + 4, j], lr * g[i + 5, j]
            c6, c7, c8, c9 = lr * g[i + 6, j], lr * g[i + 7, j], lr * g[i + 8, j], lr * g[i + 9, j]
            for k in range(d_in):
                w[j, k] -= (c0 * a_in[i, k] + c1 * a_in[i + 1, k] + c2 * a_in[i + 2, k]
                            + c3 * a_in[i + 3, k] + c4 * a_in[i + 4, k] + c5 * a_in[i + 5, k]
                            + c6 * a_in[i + 6, k] + c7 * a_in[i + 7, k] + c8 * a_in[i + 8, k]
                            + c9 * a_in[i + 9, k])
            b[j] -= c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9
            i += 10
        while i + 5 <= m:
            c0, c1, c2 = lr * g[i, j], lr * g[i + 1, j], lr * g[i + 2, j]
            c3, c4 = lr * g[i + 3, j], lr * g[i + 4, j]
            for k in range(d_in):
                w[j, k] -= (c0 * a_in[i, k] + c1 * a_in[i + 1, k] + c2 * a_in[i + 2, k]
                            + c3 * a_in[i + 3, k] + c4 * a_in[i + 4, k])
            b[j] -= c0 + c1 + c2 + c3 + c4
            i += 5
        for r in range(i, m):
            c = lr * g[r, j]
            for k in range(d_in):
                w[j, k] -= c * a_in[r, k]
            b[j] -= c


# The first layer on sparse input (most MNIST pixels are 0): the positions of the data's
# non-zero entries are listed once per fit, row by row (row r's are ``idx[ptr[r]:ptr[r + 1]]``;
# the values are read from ``x``), and the first layer's weights are held transposed,
# ``wt[k, j] = W[j, k]``, so that a non-zero input a_k touches one contiguous row ``wt[k]``.


@jit
def sparse_rows(x, cap, ptr, idx):
    """Fill ``ptr`` (N + 1) and ``idx`` (at least ``cap + d`` long) with the columns of the
    non-zero entries of ``x`` (N, d), row by row; return their number, or -1 as soon as there
    are more than ``cap``."""
    n, d = x.shape
    c = 0
    for r in range(n):
        ptr[r] = c
        for k in range(d):  # branch-free: every column is written, and kept if its entry is non-zero
            idx[c] = k
            c += x[r, k] != 0
        if c > cap:
            return -1
    ptr[n] = c
    return c


@part
def sparse_forward(wt, b, ptr, idx, x, order, lo, z, m):
    """Z = A Wᵀ + b over the non-zero inputs only: zʲ = bʲ + Σ_{k: a_k ≠ 0} a_k W_{jk}, four
    non-zero inputs per pass over the row of Z."""
    d_out = wt.shape[1]
    for i in range(m):
        row = order[lo + i]
        a = x[row]
        for j in range(d_out):
            z[i, j] = b[j]
        p, end = ptr[row], ptr[row + 1]
        while p + 4 <= end:
            k0, k1, k2, k3 = idx[p], idx[p + 1], idx[p + 2], idx[p + 3]
            v0, v1, v2, v3 = a[k0], a[k1], a[k2], a[k3]
            for j in range(d_out):
                z[i, j] += v0 * wt[k0, j] + v1 * wt[k1, j] + v2 * wt[k2, j] + v3 * wt[k3, j]
            p += 4
        for q in range(p, end):
            k = idx[q]
            v = a[k]
            for j in range(d_out):
                z[i, j] += v * wt[k, j]


@part
def sparse_update(wt, b, ptr, idx, x, order, lo, g, m, lr, shrink, decay):
    """``dense_update`` over the non-zero inputs only: W_{jk} ← W_{jk} − η Σ_x δ_j a_k touches
    the weights of the inputs that are non-zero in the batch, two of a sample's inputs per
    pass over its δ."""
    d_in, d_out = wt.shape
    if decay:  # L2 decay on weights only: w ← w − η wd w
        for k in range(d_in):
            for j in range(d_out):
                wt[k, j] *= shrink
    for i in range(m):
        row = order[lo + i]
        a = x[row]
        p, end = ptr[row], ptr[row + 1]
        while p + 2 <= end:
            k0, k1 = idx[p], idx[p + 1]
            w0, w1 = wt[k0], wt[k1]  # two different rows: a row's columns differ
            c0, c1 = lr * a[k0], lr * a[k1]
            for j in range(d_out):
                w0[j] -= c0 * g[i, j]
                w1[j] -= c1 * g[i, j]
            p += 2
        for q in range(p, end):
            k = idx[q]
            c = lr * a[k]
            for j in range(d_out):
                wt[k, j] -= c * g[i, j]
        for j in range(d_out):
            b[j] -= lr * g[i, j]


@jit
def sgd_steps(x, t, labels, have_labels, order, first, stop, batch, wts, bs, acts, pre, deltas,
              codes, slopes, loss_code, lrs, shrinks, decay, zero, one, huge, stats,
              sparse, wt0, ptr, idx):
    """Steps ``first .. stop-1`` of an epoch (batches of ``batch`` rows of ``order``): forward,
    loss, backward and the SGD update per step; returns the number of steps taken, which is
    less than asked when a batch's mean loss is NaN or beyond ``huge`` (that step's update is
    not applied). ``stats`` accumulates Σ loss, correct predictions, the last finite mean loss
    and the failing one. With ``sparse``, the first layer works on the non-zero entries of
    ``x`` (at ``ptr``, ``idx``, from :func:`sparse_rows`) with the transposed weights
    ``wt0`` (``wts[0]`` and ``acts[0]`` are then left untouched)."""
    n = x.shape[0]
    n_layers = len(wts)
    d0 = x.shape[1]
    for step in range(stop - first):
        lo = (first + step) * batch
        m = min(batch, n - lo)
        if not sparse:
            a0 = acts[0]
            for i in range(m):  # gather the batch's rows
                row = order[lo + i]
                for k in range(d0):
                    a0[i, k] = x[row, k]
        for layer in range(n_layers):  # forward: aˡ = f(Wˡ aˡ⁻¹ + bˡ)
            if sparse and layer == 0:
                sparse_forward(wt0, bs[0], ptr, idx, x, order, lo, pre[0], m)
            else:
                dense_forward(wts[layer], bs[layer], acts[layer], pre[layer], m)
            activate(codes[layer], slopes[layer], pre[layer], acts[layer + 1], m, one)
        out = acts[n_layers]
        batch_loss = loss_grad(loss_code, out, t, order, lo, m, deltas[n_layers - 1], m)
        if not abs(batch_loss) / m <= huge:  # NaN, or a mean loss beyond the dtype's range
            stats[3] = batch_loss / m
            return step
        stats[0] += batch_loss
        stats[2] = batch_loss / m
        if have_labels:
            stats[1] += count_correct(out, labels, order, lo, m)
        for layer in range(n_layers - 1, -1, -1):  # backward, last layer first
            g = deltas[layer]
            # δˡ = ∂C/∂aˡ ⊙ f'(zˡ)
            times_derivative(codes[layer], slopes[layer], pre[layer], acts[layer + 1], g, m, one)
            if layer > 0:  # ∂C/∂aˡ⁻¹, from the weights before this step's update
                dense_input_grad(wts[layer], g, deltas[layer - 1], m, zero)
            if sparse and layer == 0:
                sparse_update(wt0, bs[0], ptr, idx, x, order, lo, g, m, lrs[step], shrinks[step], decay)
            else:
                dense_update(wts[layer], bs[layer], acts[layer], g, m, lrs[step], shrinks[step], decay)
    return stop - first
