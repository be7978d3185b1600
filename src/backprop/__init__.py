"""backprop: feedforward neural networks trained by explicit, readable backpropagation.

Every layer owns its forward and its backward, written as the equations of the
notes (see docs/math.md); nothing is differentiated automatically.
"""

from . import datasets, errors, init
from ._version import __version__ as __version__
from .activations import ELU, GELU, Activation, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .distributed.fit import fit
from .gradcheck import gradcheck
from .io import load, save
from .layers import Dense, Dropout, Layer
from .losses import BinaryCrossEntropy, CrossEntropy, Huber, Loss, Quadratic
from .network import Network
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop, schedules
from .training import Callback, EarlyStopping, History, evaluate

__all__ = [
    "ELU", "GELU", "SGD", "Activation", "Adam", "AdamW", "BinaryCrossEntropy", "Callback",
    "CrossEntropy", "Dense", "Dropout", "EarlyStopping", "History", "Huber", "Identity", "Layer",
    "LeakyReLU", "Loss", "Network", "Optimizer", "Quadratic", "RMSprop", "ReLU", "Sigmoid",
    "Softmax", "Softplus", "Tanh", "datasets", "errors", "evaluate", "fit", "gradcheck", "init",
    "load", "save", "schedules",
]
