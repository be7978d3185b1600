"""backprop: feedforward neural networks trained by explicit, readable backpropagation.

Every layer owns its forward and its backward, written as the equations of the
notes (see docs/math.md); nothing is differentiated automatically.
"""

from . import errors, init
from .gradcheck import gradcheck
from .layers import (
    ELU,
    GELU,
    Activation,
    Dense,
    Dropout,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .losses import BinaryCrossEntropy, CrossEntropy, Huber, Loss, Quadratic
from .network import Network

__version__ = "0.1.0"

__all__ = [
    "ELU", "GELU", "Activation", "BinaryCrossEntropy", "CrossEntropy", "Dense", "Dropout", "Huber",
    "Identity", "Layer", "LeakyReLU", "Loss", "Network", "Quadratic", "ReLU", "Sigmoid", "Softmax",
    "Softplus", "Tanh", "errors", "gradcheck", "init",
]
