"""
Learning curves on MNIST
========================

Train a 784-64-10 ReLU network with Adam on 10,000 MNIST images and draw the loss and the
accuracy per epoch, on the training data and on 2,000 held-out test images: the picture
``backprop train`` writes next to a model as ``<model>.curves.png``.

Both losses fall, but the gap between them widens with every epoch: the network fits its
10,000 training images better than images it has not seen. Run it::

    python examples/plot_learning_curves.py
"""

import matplotlib.pyplot as plt

import backprop as bp

(x_train, y_train), (x_test, y_test) = bp.datasets.load_mnist()   # (60000, 784) float32 in [0, 1]
x_train, y_train = x_train[:10_000], y_train[:10_000]
x_val, y_val = x_test[:2_000], y_test[:2_000]

net = bp.Network([bp.Dense(784, 64), bp.ReLU(), bp.Dense(64, 10)], seed=0)
history = bp.fit(net, x_train, y_train, loss=bp.CrossEntropy(), optimizer=bp.Adam(lr=1e-3),
                 epochs=12, batch_size=64, validation_data=(x_val, y_val), seed=0,
                 verbose=False)
print(f"engine: {history.engine}; validation accuracy after {history.epoch[-1]} epochs: "
      f"{history.val_accuracy[-1]:.2%}")

# %%
# The curves
# ----------
# ``History`` holds one entry per epoch: ``loss`` and ``accuracy`` on the training batches
# (as seen during the epoch), ``val_loss`` and ``val_accuracy`` after it.

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
left.plot(history.epoch, history.loss, "o-", label="training")
left.plot(history.epoch, history.val_loss, "s-", label="validation")
left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
right.plot(history.epoch, [100 * a for a in history.accuracy], "o-", label="training")
right.plot(history.epoch, [100 * a for a in history.val_accuracy], "s-", label="validation")
right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
for ax in (left, right):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()
