"""
What the training report shows
==============================

``backprop train --report`` writes a self-contained HTML page next to the model. This
script draws its main plots for a 784-64-32-10 sigmoid network trained on 10,000 MNIST
images: the error ‖δˡ‖ = ‖∂C/∂zˡ‖ that reaches each Dense layer per epoch (the quantity
the notes' δ recursion computes, recorded by ``fit(record_grad_norms=True)``), the
distribution of each layer's weights, the confusion matrix on the test set, and what the
first layer's units respond to. Run it::

    python examples/plot_training_report.py
"""

import matplotlib.pyplot as plt
import numpy as np

import backprop as bp
from backprop.insight.report import confusion_matrix

(x_train, y_train), (x_test, y_test) = bp.datasets.load_mnist()
net = bp.Network([bp.Dense(784, 64), bp.Sigmoid(), bp.Dense(64, 32), bp.Sigmoid(),
                  bp.Dense(32, 10)], seed=0)
history = bp.fit(net, x_train[:10_000], y_train[:10_000], loss="cross_entropy",
                 optimizer=bp.SGD(lr=0.5), epochs=8, batch_size=32, seed=0, verbose=False,
                 record_grad_norms=True)
dense = [layer for layer in net.layers if isinstance(layer, bp.Dense)]

# %%
# The error at each layer, per epoch
# ----------------------------------
# ``history.grad_norms`` maps each Dense layer's index in ``net.layers`` to one value per
# epoch: the root-mean-square over the epoch's samples of ‖δˡ‖. With sigmoid units
# (``σ' ≤ 1/4``) the error shrinks on its way down to the first layer.

fig, ax = plt.subplots(figsize=(6, 3.6))
for layer_number, values in enumerate(history.grad_norms.values(), start=1):
    ax.plot(history.epoch, values, "o-", label=f"Dense layer {layer_number}")
ax.set(yscale="log", xlabel="epoch", ylabel="RMS of ‖δˡ‖", title="error ‖δˡ‖ = ‖∂C/∂zˡ‖")
ax.grid(alpha=0.3, which="both")
ax.legend()
fig.tight_layout()

# %%
# Weights and biases
# ------------------
# One histogram of ``Wˡ`` per Dense layer; the biases ``bˡ`` are the orange ticks.

fig, axes = plt.subplots(1, len(dense), figsize=(10, 2.9))
for layer_number, (layer, ax) in enumerate(zip(dense, axes, strict=True), start=1):
    w = layer.params["W"].ravel()
    ax.hist(w, bins=60, color="#4c72b0")
    ax.plot(layer.params["b"], np.zeros(layer.d_out), "|", color="#dd8452", markersize=12)
    ax.set_title(f"W{layer_number}: {layer.d_out}×{layer.d_in}, std {w.std():.3f}", fontsize=9)
fig.tight_layout()

# %%
# The confusion matrix
# --------------------
# Row: the true digit; column: the network's answer (the largest logit).

predicted = np.argmax(net.predict(x_test), axis=1)
m = confusion_matrix(y_test, predicted, 10)
print(f"test accuracy: {np.trace(m) / m.sum():.2%}")
fig, ax = plt.subplots(figsize=(4.8, 4.4))
ax.imshow(np.log1p(m), cmap="Blues")
for i in range(10):
    for j in range(10):
        ax.text(j, i, m[i, j], ha="center", va="center", fontsize=6,
                color="white" if i == j else "black")
ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10))
fig.tight_layout()

# %%
# What the first layer looks for
# ------------------------------
# Each row of ``W¹`` (784 weights) drawn as a 28 × 28 image: red pixels raise the unit's
# input ``z``, blue ones lower it.

W = dense[0].params["W"]                                     # (64, 784)
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6))
for unit, ax in enumerate(axes.ravel()):
    limit = np.abs(W[unit]).max()
    ax.imshow(W[unit].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"unit {unit}", fontsize=7)
    ax.axis("off")
fig.tight_layout()
plt.show()
