"""A worked example: a 2-3-2 sigmoid network with the quadratic cost, by hand.

Every number below was computed once, independently of backprop, with 40-digit mpmath
arithmetic and scalar formulas straight from the notes, then pasted here to 15
significant digits. The tests push the same weights and inputs through the library
layer by layer and compare each intermediate value, in the order a reader of the notes
would compute it:

    forward:   z¹ = W¹x + b¹,  a¹ = φ(z¹),  z² = W²a¹ + b²,  a² = φ(z²),  C = ½‖a² − y‖²
    backward:  ∇_a C = a² − y                              (seed 000, quadratic cost)
               δ² = ∇_a C ∘ φ'(z²),  φ' = φ(1 − φ)          (seed 000 / seed 002 activation layer)
               ∇_{W²}C = δ²(a¹)ᵀ,  ∇_{b²}C = δ²              (seed 000; seed 002 weights, bias)
               ∂C/∂a¹ = (W²)ᵀδ²                             (seed 002 "cost for previous layer")
               δ¹ = φ'(z¹) ∘ (W²)ᵀδ²                        (seed 000's δ recursion; seed 001's e^l)
               ∇_{W¹}C = δ¹xᵀ,  ∇_{b¹}C = δ¹
               ∇_x C = (W¹)ᵀδ¹                               (seed 000's ∇_x C)

The network is in float64; tolerances are relative, 1e-12 (the pasted literals carry
about 5e-16 relative rounding).
"""

from __future__ import annotations

import numpy as np
import pytest

import backprop as bp
from backprop import reference

# ----------------------------------------------------------------------------- the network
W1 = np.array([[0.1, -0.2],
               [0.4, 0.3],
               [-0.5, 0.6]])          # (d_out, d_in) = (3, 2): row i feeds neuron i
B1 = np.array([0.1, -0.1, 0.2])
W2 = np.array([[0.7, -0.3, 0.2],
               [-0.4, 0.5, 0.9]])     # (2, 3)
B2 = np.array([0.05, -0.05])

# ------------------------------------------------------------- sample 1: x = (0.5, −1), y = (1, 0)
X1 = np.array([0.5, -1.0])
Y1 = np.array([1.0, 0.0])
# z¹ = W¹x + b¹: 0.1·0.5 + (−0.2)(−1) + 0.1 = 0.35, 0.4·0.5 + 0.3(−1) − 0.1 = −0.2,
#                −0.5·0.5 + 0.6(−1) + 0.2 = −0.65
Z1_1 = [0.35, -0.2, -0.65]
A1_1 = [0.58661757891733, 0.450166002687522, 0.342989537326501]        # a¹ = φ(z¹)
DPHI1_1 = [0.2424973950225, 0.24751657271186, 0.225347714611054]        # φ'(z¹) = a¹(1 − a¹)
Z2_1 = [0.394180411901175, 0.24912655337068]                            # z² = W²a¹ + b²
A2_1 = [0.59728864199814, 0.561961504238532]                            # a² = φ(z²)
DPHI2_1 = [0.240534920138158, 0.246160771992498]                        # φ'(z²)
C_1 = 0.238988585054868                                                 # ½‖a² − y‖²
DC_DA2_1 = [-0.40271135800186, 0.561961504238532]                       # a² − y
DELTA2_1 = [-0.0968661443357065, 0.138332877713423]                     # δ² = (a² − y) ∘ φ'(z²)
DW2_1 = [[-0.0568233830692688, -0.0436058449913576, -0.0332240740283061],
         [0.0811484978089151, 0.0622727586005133, 0.0474467297239703]]  # δ²(a¹)ᵀ
DB2_1 = DELTA2_1                                                         # δ²
DC_DA1_1 = [-0.123139452120364, 0.0982262821574233, 0.105126361074939]  # (W²)ᵀδ²
DELTA1_1 = [-0.0298609963636861, 0.0243126327098335, 0.023689985213614]  # φ'(z¹) ∘ (W²)ᵀδ²
DW1_1 = [[-0.014930498181843, 0.0298609963636861],
         [0.0121563163549168, -0.0243126327098335],
         [0.011844992606807, -0.023689985213614]]                       # δ¹xᵀ
DB1_1 = DELTA1_1                                                         # δ¹
DX_1 = [-0.00510603915924218, 0.0274799802138557]                       # (W¹)ᵀδ¹

# --------------------------------------------------------- sample 2: x = (1.5, 0.25), y = (0, 1)
X2 = np.array([1.5, 0.25])
Y2 = np.array([0.0, 1.0])
Z1_2 = [0.2, 0.575, -0.4]
A1_2 = [0.549833997312478, 0.639916096737734, 0.401312339887548]
Z2_2 = [0.323171437074924, 0.411205555342669]
A2_2 = [0.580096960627318, 0.60137691314547]
C_2 = 0.247706424551243
DELTA2_2 = [0.141302614704679, -0.0955590112259633]
DW2_2 = [[0.0776929814737787, 0.0904218176606543, 0.0567064829393635],
         [-0.0525415931215993, -0.0611497494718357, -0.0383490103924318]]
DC_DA1_2 = [0.137135434783661, -0.0901702900243854, -0.0577425871624311]
DELTA1_2 = [0.0339432928150025, -0.0207773525496593, -0.0138732770526909]
DW1_2 = [[0.0509149392225037, 0.00848582320375062],
         [-0.031166028824489, -0.00519433813741483],
         [-0.0208099155790364, -0.00346831926317274]]
DX_2 = [0.00202002678798199, -0.0213458305595129]

# ---------------------------------------- the batch of both: C = mean, gradients = means
C_BATCH = 0.243347504803056                                   # (C_1 + C_2)/2
DW2_BATCH = [[0.0104347992022549, 0.0234079863346484, 0.0117412044555287],
             [0.0143034523436579, 0.000561504564338779, 0.00454885966576926]]
DB2_BATCH = [0.0222182351844863, 0.0213869332437297]
DW1_BATCH = [[0.0179922205203304, 0.0191734097837183],
             [-0.00950485623478611, -0.0147534854236242],
             [-0.00448246148611472, -0.0135791522383934]]
DB1_BATCH = [0.00204114822565822, 0.0017676400800871, 0.00490835408046152]
DX_BATCH = [[-0.00255301957962109, 0.0137399901069278],        # row n: sample n's ∇_x C / 2
            [0.001010013393991, -0.0106729152797564]]


def close(actual, expected) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


@pytest.fixture
def net() -> bp.Network:
    net = bp.Network([bp.Dense(2, 3), bp.Sigmoid(), bp.Dense(3, 2), bp.Sigmoid()],
                     seed=0, dtype="float64")
    for dense, W, b in ((net.layers[0], W1, B1), (net.layers[2], W2, B2)):
        dense.params["W"][...] = W   # params are writable in place (DESIGN.md)
        dense.params["b"][...] = b
    return net


def test_forward_one_sample_layer_by_layer(net: bp.Network) -> None:
    x = X1[None, :]                        # a batch of one row, shape (1, 2)
    dense1, sigmoid1, dense2, sigmoid2 = net.layers
    z1 = dense1.forward(x)
    close(z1, [Z1_1])                      # z¹ = W¹x + b¹   (ours: Z = A Wᵀ + b)
    a1 = sigmoid1.forward(z1)
    close(a1, [A1_1])                      # a¹ = φ(z¹) = 1/(1 + e^{−z¹})   (seed 000)
    close(sigmoid1.derivative(z1, a1), [DPHI1_1])   # φ' = φ(1 − φ)         (seed 000)
    z2 = dense2.forward(a1)
    close(z2, [Z2_1])
    a2 = sigmoid2.forward(z2)
    close(a2, [A2_1])
    close(sigmoid2.derivative(z2, a2), [DPHI2_1])
    close(bp.Quadratic().value(a2, Y1[None, :]), C_1)   # C = ½‖a² − y‖²    (seed 000)
    close(bp.Quadratic().per_sample(a2, Y1[None, :]), [C_1])
    # the whole network gives the same numbers, and so does predict
    close(net.forward(x), [A2_1])
    close(net.predict(x), [A2_1])


def test_backward_one_sample_layer_by_layer(net: bp.Network) -> None:
    x, y = X1[None, :], Y1[None, :]
    dense1, sigmoid1, dense2, sigmoid2 = net.layers
    a2 = net.forward(x)
    dC_da2 = bp.Quadratic().grad(a2, y)
    close(dC_da2, [DC_DA2_1])              # ∇_a C = a² − y               (seed 000; N = 1)
    delta2 = sigmoid2.backward(dC_da2)
    close(delta2, [DELTA2_1])              # δ² = ∇_a C ∘ φ'(z²)          (seed 002 activation)
    dC_da1 = dense2.backward(delta2)
    close(dense2.grads["W"], DW2_1)        # ∇_{W²}C = δ²(a¹)ᵀ, g_ij = δ_i a_j   (seed 000)
    close(dense2.grads["b"], DB2_1)        # ∇_{b²}C = δ²                 (seed 000 "Bias")
    close(dC_da1, [DC_DA1_1])              # ∂C/∂a¹ = (W²)ᵀδ²              (seed 002 previous layer)
    delta1 = sigmoid1.backward(dC_da1)
    close(delta1, [DELTA1_1])              # δ¹ = φ'(z¹) ∘ (W²)ᵀδ²        (seed 000 recursion)
    dC_dx = dense1.backward(delta1)
    close(dense1.grads["W"], DW1_1)        # ∇_{W¹}C = δ¹xᵀ
    close(dense1.grads["b"], DB1_1)
    close(dC_dx, [DX_1])                   # ∇_x C = (W¹)ᵀδ¹              (seed 000)


def test_network_backward_one_sample(net: bp.Network) -> None:
    x, y = X1[None, :], Y1[None, :]
    loss = bp.Quadratic()
    dC_dx = net.backward(loss.grad(net.forward(x), y))
    close(dC_dx, [DX_1])
    close(net.layers[2].grads["W"], DW2_1)
    close(net.layers[2].grads["b"], DB2_1)
    close(net.layers[0].grads["W"], DW1_1)
    close(net.layers[0].grads["b"], DB1_1)


def test_references_one_sample(net: bp.Network) -> None:
    """The per-parameter loops (seeds 001/002) and the δ recursion (seed 000) give the same
    hand-worked numbers."""
    x, y = X1[None, :], Y1[None, :]
    expected = {"0.W": DW1_1, "0.b": DB1_1, "2.W": DW2_1, "2.b": DB2_1, "x": [DX_1]}
    per_parameter = reference.per_parameter_gradients(net, bp.Quadratic(), x, y)
    (per_sample,) = reference.per_sample_gradients(net, bp.Quadratic(), x, y)
    assert per_parameter.keys() == per_sample.keys() == expected.keys()
    for name, value in expected.items():
        close(per_parameter[name], value)
        close(per_sample[name], np.reshape(value, per_sample[name].shape))


def test_batch_of_two(net: bp.Network) -> None:
    """Two samples at once: rows of one batch. The cost is the mean, C = (C_1 + C_2)/2,
    so ∇_a C carries 1/N, each parameter's gradient is the mean of the two per-sample
    gradients (seed 001's Σ_n, divided by N), and row n of dC/dx is ∇_x C_n / N."""
    x, y = np.stack([X1, X2]), np.stack([Y1, Y2])
    loss = bp.Quadratic()
    a2 = net.forward(x)
    close(a2, [A2_1, A2_2])
    close(loss.per_sample(a2, y), [C_1, C_2])
    close(loss.value(a2, y), C_BATCH)
    close(loss.grad(a2, y), (np.array([A2_1, A2_2]) - y) / 2)   # (a − y)/N

    # the intermediate values of the batch are the two samples' rows
    dense1, sigmoid1, dense2, sigmoid2 = net.layers
    z1 = dense1.forward(x)
    close(z1, [Z1_1, Z1_2])
    a1 = sigmoid1.forward(z1)
    close(a1, [A1_1, A1_2])
    close(dense2.forward(a1), [Z2_1, Z2_2])
    a2 = sigmoid2.forward(dense2.forward(a1))
    delta2 = sigmoid2.backward(loss.grad(a2, y))
    close(delta2, np.array([DELTA2_1, DELTA2_2]) / 2)           # rows of Δ² = δ²_n / N
    dC_da1 = dense2.backward(delta2)
    close(dC_da1, np.array([DC_DA1_1, DC_DA1_2]) / 2)           # Δ² W²
    close(dense2.grads["W"], DW2_BATCH)                          # (Δ²)ᵀ A¹ = mean of δ²_n (a¹_n)ᵀ
    close(dense2.grads["W"], (np.array(DW2_1) + np.array(DW2_2)) / 2)
    close(dense2.grads["b"], DB2_BATCH)                          # Σ_n δ²_n / N
    delta1 = sigmoid1.backward(dC_da1)
    close(delta1, np.array([DELTA1_1, DELTA1_2]) / 2)
    dC_dx = dense1.backward(delta1)
    close(dense1.grads["W"], DW1_BATCH)
    close(dense1.grads["W"], (np.array(DW1_1) + np.array(DW1_2)) / 2)
    close(dense1.grads["b"], DB1_BATCH)
    close(dC_dx, DX_BATCH)
    close(dC_dx, np.array([DX_1, DX_2]) / 2)

    # Network.backward and both references agree with the hand-worked batch
    expected = {"0.W": DW1_BATCH, "0.b": DB1_BATCH, "2.W": DW2_BATCH, "2.b": DB2_BATCH,
                "x": DX_BATCH}
    close(net.backward(loss.grad(net.forward(x), y)), DX_BATCH)
    for name, grad in zip(("0.W", "0.b", "2.W", "2.b"), net.gradients(), strict=True):
        close(grad, expected[name])
    per_parameter = reference.per_parameter_gradients(net, loss, x, y)
    per_sample = reference.per_sample_gradients(net, loss, x, y)
    mean = reference.mean_of_per_sample(per_sample)
    for name, value in expected.items():
        close(per_parameter[name], value)
        close(mean[name], value)
    # per-sample gradients are each sample's own, undivided
    close(per_sample[0]["2.W"], DW2_1)
    close(per_sample[1]["2.W"], DW2_2)
    close(per_sample[0]["x"], DX_1)
    close(per_sample[1]["x"], DX_2)


def test_float32_network_agrees_to_single_precision(net: bp.Network) -> None:
    """The default float32 network computes the same example to single precision."""
    net32 = net.astype("float32")
    x, y = np.stack([X1, X2]).astype(np.float32), np.stack([Y1, Y2]).astype(np.float32)
    loss = bp.Quadratic()
    a2 = net32.forward(x)
    assert a2.dtype == np.float32
    dC_dx = net32.backward(loss.grad(a2, y))
    assert dC_dx.dtype == np.float32 and net32.layers[0].grads["W"].dtype == np.float32
    np.testing.assert_allclose(loss.value(a2, y), C_BATCH, rtol=1e-6)
    np.testing.assert_allclose(dC_dx, DX_BATCH, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(net32.layers[0].grads["W"], DW1_BATCH, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(net32.layers[2].grads["W"], DW2_BATCH, rtol=1e-4, atol=1e-7)
