"""
Decision boundary of a 2-D problem
==================================

Two interleaved spirals cannot be separated by a line: a network with two hidden layers of
16 tanh units bends its decision boundary around them. This script trains it with Adam on
400 points and colours the plane by the predicted probability of the orange class, the
picture a learner sees in the playground. Run it::

    python examples/plot_decision_boundary.py
"""

import matplotlib.pyplot as plt
import numpy as np

import backprop as bp


def spirals(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points ``(n, 2)`` on two spirals, and their classes ``(n,)`` (0 or 1)."""
    rng = np.random.default_rng(seed)
    k = np.arange(n) % 2                                  # the class
    t = rng.uniform(0.25, 1.0, n) * 3 * np.pi             # angle along the spiral
    r = t / (3 * np.pi) * 5
    xy = np.stack([r * np.cos(t + np.pi * k), r * np.sin(t + np.pi * k)], axis=1)
    return xy + rng.normal(0.0, noise, xy.shape), k


x, y = spirals(400, noise=0.2, seed=0)
net = bp.Network([bp.Dense(2, 16), bp.Tanh(), bp.Dense(16, 16), bp.Tanh(), bp.Dense(16, 2)],
                 seed=0, dtype="float64")
history = bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.01), epochs=300,
                 batch_size=32, seed=0, verbose=False)
print(f"training accuracy after {len(history.epoch)} epochs: {history.accuracy[-1]:.1%}")

# %%
# The plane, coloured by the network
# ----------------------------------
# ``predict`` returns the logits of the last Dense layer (``CrossEntropy`` applies the
# softmax inside the loss); their softmax is the probability of each class.

xx, yy = np.meshgrid(np.linspace(-6, 6, 240), np.linspace(-6, 6, 240))
grid = np.column_stack([xx.ravel(), yy.ravel()])            # (240·240, 2)
logits = net.predict(grid)
p = np.exp(logits - logits.max(axis=1, keepdims=True))
p = (p / p.sum(axis=1, keepdims=True))[:, 1].reshape(xx.shape)

fig, ax = plt.subplots(figsize=(5.5, 5))
ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="PuOr_r", alpha=0.8)
ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1)
ax.scatter(x[:, 0], x[:, 1], c=y, cmap="PuOr_r", edgecolors="k", linewidths=0.5, s=18)
ax.set(aspect="equal", title="2-16-16-2 tanh network: P(orange)", xlabel="x₁", ylabel="x₂")
fig.tight_layout()
plt.show()
