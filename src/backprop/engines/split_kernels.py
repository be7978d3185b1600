"""The compiled kernel of :mod:`backprop.engines.split` (imported only when that engine runs).

:func:`split_step` computes one mini-batch's gradients with the batch's rows split
between threads (numba's ``prange``): each thread gathers its rows, runs the forward pass,
the loss and the backward pass on them with single-threaded BLAS for the matrix products
(numba's ``np.dot``, which calls BLAS through SciPy), and writes its rows' share of every
``∂C/∂W`` and ``∂C/∂b``; the shares are then added into the network's gradient buffer. The
element-wise parts are those of the compiled engine (:mod:`backprop.engines.numba_kernels`),
inlined here.

Seed 001's matrix form over a batch is a sum over the samples, ``∂J/∂W = Σ_n e_n a_nᵀ``, so
splitting the batch's rows into blocks and adding the blocks' sums is the same sum in
another order; every block's ``δ`` carries ``1/m`` of the whole batch (``loss_grad``'s
``batch_rows``), so the added shares are the gradient of the batch mean.

Layout (all views are made here, from flat arrays, so that a call unboxes few arrays):

* ``params``: the network's parameter buffer; layer ``l``'s ``W`` ``(d_{l+1}, d_l)`` starts
  at ``offsets[2l]``, its ``b`` ``(d_{l+1},)`` at ``offsets[2l + 1]``; ``grads`` the same for
  the gradients.
* ``work``: one flat array holding, for each layer ``l`` (widths ``d_0 … d_L``), the batch's
  activations ``A^l`` at ``act_at[l]``, pre-activations ``Z^l`` at ``pre_at[l]`` and
  gradients ``Δ^l`` at ``delta_at[l]`` (``Z^l`` and ``Δ^l`` of width ``d_{l+1}``), each
  ``batch × width`` entries. ``A^0``, the gathered input, is ``(batch, d_0)`` with block
  ``r0:r1`` as its rows (:func:`rows_of`); every other array is stored block by block, block
  ``r0:r1`` transposed as ``(width, r1 - r0)`` at ``at + r0·width`` (:func:`block_of`).
* ``shares``: ``(T - 1, P)``, the shares of the gradients of blocks 1 … T − 1, laid out as
  ``grads`` (block 0 writes its share into ``grads``, then the others are added to it).
"""

import numba
import numpy as np

from ..optim.fused_kernels import adam_update, momentum_update
from .numba_kernels import activate, count_correct, loss_grad, times_derivative

# No fastmath flags here, unlike the other kernels: every prange body is compiled as a function
# of its own and linked into the entry point, so a process that compiled the kernel runs one
# machine-code copy of it and a process that loaded the kernel from numba's disk cache another
# (see numba_kernels on the two copies). With contraction allowed the copies fused different
# multiply-adds, and the weights after a fused Adam update came out a few ulps apart; with
# IEEE arithmetic as written every copy computes the same bits. The loops still vectorise:
# none of them needs reassociation (the sums over rows run row by row, vectorised over units).
#: the entry point: parallel (prange over the threads), cached on disk
kernel = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
#: a part, inlined into the entry point (see numba_kernels on why parts are inlined)
part = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


@part
def rows_of(work, at, batch, width, r0, r1):
    """Rows ``r0:r1`` of the ``(batch, width)`` array stored in ``work`` at ``at``."""
    return work[at:at + batch * width].reshape((batch, width))[r0:r1]


@part
def block_of(work, at, width, r0, r1):
    """Rows ``r0:r1`` of a ``(batch, width)`` array stored in ``work`` at ``at`` block by
    block, each block transposed: the ``(width, r1 - r0)`` array at ``at + r0·width``."""
    return work[at + r0 * width:at + r1 * width].reshape((width, r1 - r0))


@part
def block_gradients(x, t, labels, have_labels, order, lo, m, r0, r1, params, offsets, widths, codes, slopes,
                    loss_code, work, act_at, pre_at, delta_at, batch, share, one, ones):
    """Forward, loss and backward for rows ``r0:r1`` of the batch ``order[lo:lo+m]``; write
    their share of every gradient into ``share`` (flat, laid out as the parameters) and
    return ``(Σ_x C_x, correct predictions)`` over those rows.

    The block's gathered inputs are rows, ``(n, d_0)``; its Zˡ, Aˡ and Δˡ are stored
    transposed, ``(d_l, n)`` (:func:`block_of`), so that every product's output has the
    block's rows as its contiguous dimension: OpenBLAS then runs them as ``n``-row products,
    which are faster than the ``d_l``-row ones a row layout makes of them (benchmarks/README.md,
    "Which way round"; benchmarks/split_layout.py)."""
    n = r1 - r0
    n_layers = widths.shape[0] - 1
    a0 = rows_of(work, act_at[0], batch, widths[0], r0, r1)
    for i in range(n):  # gather this block's samples
        a0[i, :] = x[order[lo + r0 + i], :]
    for layer in range(n_layers):  # forward: Zˡᵀ = Wˡ Aˡ⁻¹ᵀ + bˡ, Aˡ = f(Zˡ)
        d_in, d_out = widths[layer], widths[layer + 1]
        w = params[offsets[2 * layer]:offsets[2 * layer] + d_out * d_in].reshape((d_out, d_in))
        b = params[offsets[2 * layer + 1]:offsets[2 * layer + 1] + d_out]
        z = block_of(work, pre_at[layer], d_out, r0, r1)
        if layer == 0:
            np.dot(w, a0.T, z)
        else:
            np.dot(w, block_of(work, act_at[layer], d_in, r0, r1), z)
        for j in range(d_out):
            for i in range(n):
                z[j, i] += b[j]
        activate(codes[layer], slopes[layer], z, block_of(work, act_at[layer + 1], d_out, r0, r1), d_out, one)
    out = block_of(work, act_at[n_layers], widths[n_layers], r0, r1).T
    g_out = block_of(work, delta_at[n_layers - 1], widths[n_layers], r0, r1).T
    total = loss_grad(loss_code, out, t, order, lo + r0, n, g_out, m)  # dC/da^L, with 1/m of the batch
    correct = count_correct(out, labels, order, lo + r0, n) if have_labels else 0
    for layer in range(n_layers - 1, -1, -1):  # backward, last layer first
        d_in, d_out = widths[layer], widths[layer + 1]
        g = block_of(work, delta_at[layer], d_out, r0, r1)
        # δˡ = ∂C/∂aˡ ⊙ f'(zˡ)
        times_derivative(codes[layer], slopes[layer], block_of(work, pre_at[layer], d_out, r0, r1),
                         block_of(work, act_at[layer + 1], d_out, r0, r1), g, d_out, one)
        dw = share[offsets[2 * layer]:offsets[2 * layer] + d_out * d_in].reshape((d_out, d_in))
        if layer == 0:                                             # ∂C/∂Wˡ = Δᵀ A (these rows)
            np.dot(g, a0, dw)
        else:
            np.dot(g, block_of(work, act_at[layer], d_in, r0, r1).T, dw)
        np.dot(g, ones[:n], share[offsets[2 * layer + 1]:offsets[2 * layer + 1] + d_out])  # ∂C/∂bˡ = Σ_n δ_n
        if layer > 0:                                              # ∂C/∂Aˡ⁻¹ = Δ Wˡ
            w = params[offsets[2 * layer]:offsets[2 * layer] + d_out * d_in].reshape((d_out, d_in))
            np.dot(w.T, g, block_of(work, delta_at[layer - 1], d_in, r0, r1))
    return total, correct


#: what follows the gradients in :func:`split_step`: nothing (the optimizer's ``step`` comes
#: after the call), or a fused update (``Optimizer.fused_form``'s kind)
NO_UPDATE, ADAM, MOMENTUM = 0, 1, 2
#: entries per tile of the update: the shares of a tile are added while it is in cache
TILE = 4096


@part
def add_and_update(update, grads, shares, params, state_a, state_b, at, decay, c, flags, p0, p1):
    """Entries ``p0:p1``: add the shares into ``grads``, then apply the fused update (``at``:
    where each parameter array starts, and the end; ``decay[i]``: weight decay on array i;
    ``c``: the update's scalars in the parameters' dtype; ``flags``: AdamW's ``decoupled`` or
    SGD's ``nesterov``)."""
    for a in range(at.shape[0] - 1):
        lo, hi = max(p0, at[a]), min(p1, at[a + 1])
        for t0 in range(lo, hi, TILE):
            t1 = min(t0 + TILE, hi)
            g = grads[t0:t1]
            for s in range(shares.shape[0]):
                share = shares[s, t0:t1]
                for i in range(t1 - t0):
                    g[i] += share[i]
            if update == ADAM:
                adam_update(params[t0:t1], g, state_a[t0:t1], state_b[t0:t1], c[0], c[1], c[2], c[3], c[4], c[5],
                            c[6], decay[a], flags[0], c[7])
            elif update == MOMENTUM:
                momentum_update(params[t0:t1], g, state_a[t0:t1], c[0], c[1], c[2], decay[a], flags[0])


@kernel
def split_step(x, t, labels, have_labels, order, lo, m, params, offsets, widths, codes, slopes, loss_code,
               work, batch, act_at, pre_at, delta_at, shares, grads, sums, one, ones,
               update, state_a, state_b, at, decay, c, flags):
    """One step on the batch ``order[lo:lo+m]`` (rows of ``x``, targets ``t``): its gradients,
    the rows split into ``T = shares.shape[0] + 1`` blocks computed in parallel, added into
    ``grads``; then, unless ``update`` is :data:`NO_UPDATE`, the fused update (see
    :func:`add_and_update`), also split between the threads. ``sums[0]`` ← Σ_x C_x over the
    batch, ``sums[1]`` ← correct predictions (with ``have_labels``); ``work`` holds batches of
    up to ``batch`` rows; ``ones``: ``batch`` ones (``∂C/∂b = Δᵀ 1``). A block with no rows
    (m < T) contributes zeros.

    Returns False, with ``grads`` incomplete and no update applied, when the batch's loss is
    NaN or infinite; else True."""
    n_threads = shares.shape[0] + 1
    losses = np.zeros(n_threads)
    hits = np.zeros(n_threads, np.int64)
    for k in numba.prange(n_threads):
        r0, r1 = k * m // n_threads, (k + 1) * m // n_threads
        share = grads if k == 0 else shares[k - 1]  # block 0's share goes straight to grads
        if r1 > r0:
            losses[k], hits[k] = block_gradients(x, t, labels, have_labels, order, lo, m, r0, r1, params, offsets,
                                                 widths, codes, slopes, loss_code, work, act_at, pre_at, delta_at,
                                                 batch, share, one, ones)
        else:
            share[:] = 0.0
    sums[0] = losses.sum()
    sums[1] = hits.sum()
    if not np.isfinite(sums[0]):
        return False
    size = grads.shape[0]
    for k in numba.prange(n_threads):  # grads ← Σ of the shares, then the update: a range per thread
        add_and_update(update, grads, shares, params, state_a, state_b, at, decay, c, flags,
                       k * size // n_threads, (k + 1) * size // n_threads)
    return True
