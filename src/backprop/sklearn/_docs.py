"""The parameter and attribute documentation the two estimators share (numpydoc, as
scikit-learn writes it), pasted into their docstrings."""

PARAMETERS = """
    hidden_layer_sizes : array-like of int, or int, default=(100,)
        Width of each hidden layer, first to last; ``()`` gives no hidden layer.
    activation : str or list of str, default="relu"
        Activation of the hidden layers: one name for all, or one per hidden layer. scikit-learn's
        ``"identity"``, ``"logistic"``, ``"tanh"``, ``"relu"``, and backprop's ``"sigmoid"`` (=
        ``"logistic"``), ``"leaky_relu"``, ``"elu"``, ``"gelu"``, ``"softplus"``. ReLU-like layers are
        He-initialised, the others Glorot-initialised (biases start at 0).
    solver : {"adam", "sgd", "lbfgs", "rmsprop", "adamw"}, default="adam"
        ``"adam"``: :class:`backprop.Adam` (β₁ = ``beta_1``, β₂ = ``beta_2``, ε = ``epsilon``);
        ``"sgd"``: :class:`backprop.SGD` with ``momentum`` and ``nesterovs_momentum``;
        ``"lbfgs"``: full-batch L-BFGS (``scipy.optimize.minimize``) on backprop's loss and gradient
        over the network's one parameter buffer; backprop's extras ``"rmsprop"``
        (:class:`backprop.RMSprop`, ε = ``epsilon``) and ``"adamw"`` (Adam, with the ``alpha`` term
        applied as a decoupled shrink ``W ← (1 − η α/S_B) W``).
    alpha : float, default=1e-4
        Strength of the L2 penalty ``(α/2) Σ ‖W‖²`` on the weight matrices (never the biases),
        divided by the batch's size, or its total weight with ``sample_weight``, as in
        scikit-learn: each step adds ``α·W/S_B`` to the gradient of the batch's mean loss.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)``; a larger value is clipped to
        ``n_samples`` with a warning. Not used by "lbfgs".
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The rate schedule of ``solver="sgd"``: constant ``learning_rate_init``; ``"invscaling"``,
        ``learning_rate_init / (t_ + 1)^power_t`` after each epoch; ``"adaptive"``, divided by 5
        each time ``n_iter_no_change`` epochs in a row fail to improve by ``tol`` (while above 1e-6).
    learning_rate_init : float, default=1e-3
        The initial learning rate η.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int, default=200
        Epochs at most (stochastic solvers), or L-BFGS iterations at most.
    shuffle : bool, default=True
        Visit the samples in a fresh random order each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, dropout, the shuffling and the early-stopping split.
    tol : float, default=1e-4
        An epoch improves when the training loss falls by more than ``tol`` below the best so far
        (with ``early_stopping``: the validation score rises by more than ``tol``); training stops
        after more than ``n_iter_no_change`` epochs in a row that do not. For "lbfgs": scipy's ``gtol``.
    verbose : bool or int, default=False
        Print the loss of each epoch (and the validation score).
    warm_start : bool, default=False
        ``fit`` continues from the current weights (with a fresh optimizer) instead of starting over.
    momentum : float, default=0.9
        Momentum μ in [0, 1) of ``solver="sgd"`` (scikit-learn also allows 1, which backprop's SGD refuses).
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``solver="sgd"`` when ``momentum > 0``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for binary and multiclass
        targets), score it after each epoch, stop by the rule of ``tol``, and end with the weights of
        the best validation score. Not with ``partial_fit``.
    validation_fraction : float, default=0.1
        Fraction held out for early stopping; the held-out part needs at least 2 samples.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's (and RMSprop's) ε. backprop's Adam adds ε to ``√v̂`` (Kingma & Ba's Algorithm 1,
        PyTorch); scikit-learn adds it to the uncorrected ``√v``: the updates differ only where
        ``√v`` is near ε.
    n_iter_no_change : int or numpy.inf, default=10
        Epochs in a row without improvement (see ``tol``) before stopping.
    max_fun : int, default=15000
        Most loss and gradient evaluations of "lbfgs".
"""

EXTRA_PARAMETERS = """
    dropout : float, default=0.0
        backprop's extra: dropout rate after each hidden activation while training
        (:class:`backprop.Dropout`); stochastic solvers only.
    dtype : {None, "float32", "float64"}, default=None
        The dtype the network computes in. None follows scikit-learn's convention: float32
        input is computed in float32; float64, integer and other input in float64. Later
        ``partial_fit`` or warm-started ``fit`` calls and predictions convert their input to the
        network's dtype.
"""

ATTRIBUTES = """
    loss_ : float
        The loss of the last epoch (stochastic solvers: ``Σ_B m_B L_B / n`` over its batches, each
        ``L_B`` the batch's weighted mean loss plus the L2 term, as scikit-learn computes it), or
        of the L-BFGS solution.
    best_loss_ : float or None
        The smallest ``loss_`` so far (stochastic solvers, without early stopping; else None).
    loss_curve_ : list of float
        ``loss_`` of each epoch (stochastic solvers; a warm start or ``partial_fit`` appends).
    validation_scores_ : list of float or None
        The validation score of each epoch with early stopping (NaN where the predictions were
        not finite), else None.
    best_validation_score_ : float or None
        The best of ``validation_scores_``; its weights are the ones kept.
    t_ : int
        Training samples seen by the stochastic solver (0 for "lbfgs").
    coefs_ : list of ndarray of shape (d_in, d_out)
        The weight matrices in scikit-learn's layout: views ``W.T`` of the network's weights
        (assigning a list of arrays copies them into the network).
    intercepts_ : list of ndarray of shape (d_out,)
        The biases: views of the network's.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Names of the features seen during ``fit``, when ``X`` has string column names.
    n_iter_ : int
        Epochs (or L-BFGS iterations) run by the last ``fit`` or ``partial_fit`` call.
    n_layers_ : int
        Number of layers, input and output included: ``len(hidden_layer_sizes) + 2``.
    n_outputs_ : int
        Width of the output layer.
    out_activation_ : str
        The output's link: ``"softmax"``, ``"logistic"``, ``"identity"`` or ``"exp"``.
    network_ : backprop.Network
        backprop's extra: the fitted network.
    history_ : backprop.History
        backprop's extra: per epoch the loss, training accuracy (classifier), validation loss and
        score (early stopping), learning rate and seconds; ``history_.engine`` is the engine that
        ran the last epoch; ``history_.restored_epoch`` the epoch whose weights early stopping kept.
"""
