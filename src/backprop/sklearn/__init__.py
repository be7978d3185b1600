"""scikit-learn estimators backed by backprop: :class:`MLPClassifier` and :class:`MLPRegressor`.

A drop-in for scikit-learn's ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: the
same parameters, fitted attributes and stopping rules, the same numbers (a test trains both from
the same weights and compares), and they pass all of ``check_estimator``. backprop adds
``class_weight``, the ``rmsprop`` and ``adamw`` solvers, ``dropout``, ``dtype``, a ``loss`` choice
for the classifier and Huber for the regressor, ``history_`` and ``network_``. This package
imports scikit-learn and scipy; ``import backprop`` does not import it
(``pip install "backprop[sklearn]"``).

| module | job |
|---|---|
| :mod:`._settings` | the parameters checked into ``Settings``; network and optimizer built from them |
| :mod:`._stochastic` | scikit-learn's epoch loop for "sgd", "adam", ...: each epoch one :func:`backprop.fit` call |
| :mod:`._hook` | the gradient hook: scikit-learn's ``alpha·W/S_B``, its momentum convention, its ``loss_`` |
| :mod:`._lbfgs` | ``solver="lbfgs"``: scipy's L-BFGS-B over the network's one parameter buffer |
| :mod:`._base`, :mod:`._classifier`, :mod:`._regressor` | the estimators |

How one step is scikit-learn's step
-----------------------------------
Every epoch of a stochastic solver is ``backprop.fit(network_, X, y, epochs=1, sample_weight=...,
grad_hook=...)``: fit's one training step (forward, loss value and gradient, backward, gradient
hook, optimizer update) with its engines and divergence check. For a batch ``B`` of total weight
``S_B = Σ_{n∈B} w_n`` (its size without sample weights) the loss is scikit-learn's
``Σ w_n C_n / S_B + (α/2) Σ ‖W‖² / S_B``: ``fit`` takes the weighted mean and the hook adds
``α·W/S_B`` to the weight gradients (the ragged last batch uses its own ``S_B``). The hook is
left out where nothing needs it (``alpha=0``, no sample weights): then ``engine="auto"``
picks the compiled engine where it applies (``solver="sgd"``, ``momentum=0``, batches of at most
32) and the fused optimizer update otherwise. ``solver="lbfgs"`` minimises the same loss over all
rows with scipy, fed by backprop's forward and backward passes.

Where the numbers differ from scikit-learn's, on purpose
---------------------------------------------------------
* Initial weights: He-uniform for ReLU-like layers, Glorot-uniform otherwise, biases 0
  (scikit-learn: Glorot-uniform weights and biases). Same data and same initial weights give the
  same weights to rounding (``tests/test_sklearn_parity.py``).
* Adam adds ε to the bias-corrected ``√v̂``; scikit-learn to ``√v``.
* Sample weights must be ``>= 0`` (scikit-learn takes negative ones); a batch whose weights are
  all 0 takes no step (scikit-learn divides by 0).
* A diverging loss: without early stopping, :class:`SolverDivergedError` (a ``ValueError``, with
  scikit-learn's message) is raised at once, and the network keeps the finite weights from the
  start of that epoch; with early stopping the epoch scores NaN, training stops with a
  ``ConvergenceWarning``, and the best weights are kept, as scikit-learn ends up doing.
* Early stopping holds out a stratified split for multiclass targets too (scikit-learn
  stratifies binary targets only). A class with a single sample gets scikit-learn's error, which
  names a binary class ``'True'`` or ``'False'``, followed by its label.
* ``loss="squared_error"`` with several targets under "lbfgs": the objective and its gradient
  agree (½‖a − y‖² per sample); scikit-learn's objective divides by the number of targets and
  its gradient does not. ``loss_`` is reported as scikit-learn reports it.

A target with a single class is accepted, as scikit-learn accepts it: one logistic output
trained towards 0, ``predict`` gives the class, ``predict_proba`` two columns ``[1 - p, p]``,
of which the first is the class's. ``tools/sklearn_mlp_tests.py`` runs scikit-learn's own
``test_mlp.py`` against these estimators (those of its tests that read scikit-learn's private
attributes fail).

Dtypes
------
With ``dtype=None`` (the default) the network follows scikit-learn's convention: float32 input
is computed in float32, float64 and integer input in float64. Sparse input (CSR, CSC) is made
dense at the boundary, in that dtype (for prediction in chunks of 2048 rows).
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("backprop.sklearn needs scikit-learn: pip install 'backprop[sklearn]' "
                      "(or pip install scikit-learn)") from err

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor
from ._stochastic import SolverDivergedError

__all__ = ["MLPClassifier", "MLPRegressor", "SolverDivergedError"]
