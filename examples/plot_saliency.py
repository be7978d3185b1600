"""
Saliency maps and adversarial examples
======================================

Backpropagation gives the gradient of the cost with respect to the *input*, ``∇ₓC``, for
the price of one backward pass (``Network.backward`` returns it). Its magnitude over an
image says which pixels the cost is most sensitive to (a saliency map); a step along its
sign is the fast-gradient-sign attack, which changes each pixel by at most ε and yet
changes many answers. ``backprop saliency`` and ``backprop attack`` draw the same pictures
for a saved model. Run it::

    python examples/plot_saliency.py
"""

import matplotlib.pyplot as plt
import numpy as np

import backprop as bp
from backprop.insight.adversarial import attack, saliency

(x_train, y_train), (x_test, y_test) = bp.datasets.load_mnist()
net = bp.Network([bp.Dense(784, 100), bp.ReLU(), bp.Dense(100, 10)], seed=0)
bp.fit(net, x_train[:20_000], y_train[:20_000], loss="cross_entropy",
       optimizer=bp.Adam(lr=1e-3), epochs=3, batch_size=64, seed=0, verbose=False)
print(f"test accuracy: {bp.evaluate(net, x_test, y_test, 'cross_entropy')['accuracy']:.2%}")

# %%
# ``|∇ₓC|`` over four test digits
# -------------------------------
# Each map is one backward pass with the digit's true label; bright pixels are those where
# a small change moves the cost most.

fig, axes = plt.subplots(2, 4, figsize=(9, 4.8))
for i in range(4):
    sal = saliency(net, x_test[i], y_test[i], "cross_entropy")       # (784,), ≥ 0
    axes[0, i].imshow(x_test[i].reshape(28, 28), cmap="gray_r")
    axes[0, i].set_title(f"label {y_test[i]}")
    axes[1, i].imshow(sal.reshape(28, 28), cmap="hot")
    axes[1, i].set_title(f"max |∇ₓC| = {sal.max():.2g}")
for ax in axes.ravel():
    ax.axis("off")
fig.tight_layout()

# %%
# Accuracy under the fast-gradient-sign attack
# --------------------------------------------
# ``x + ε · sign(∇ₓC)``, clipped to the pixel range [0, 1], on 2,000 test images.

eps = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2]
x, labels = x_test[:2000], y_test[:2000]
result = attack(net, x, labels, "cross_entropy", eps)        # ε = 0: the clean accuracy
for e, acc in zip(result["eps"], result["accuracy"], strict=True):
    print(f"ε = {e:<4}: accuracy {acc:.1%}")

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=[1.4, 1])
left.plot(result["eps"], [100 * a for a in result["accuracy"]], "o-")
left.set(xlabel="ε (largest change of a pixel)", ylabel="test accuracy (%)",
         title="fast gradient sign", ylim=(0, 100))
left.grid(alpha=0.3)
i = int(np.argmax(result["predicted"][3] != labels))       # the first digit that ε = 0.1 fools
adversarial = np.clip(x[i] + 0.1 * np.sign(result["grad"][i]), 0.0, 1.0)
right.imshow(adversarial.reshape(28, 28), cmap="gray_r")
right.set_title(f"label {labels[i]}, ε = 0.1: read as {result['predicted'][3][i]}")
right.axis("off")
fig.tight_layout()
plt.show()
