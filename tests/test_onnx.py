"""Tests of ``backprop.onnx.export``: the ONNX file computes ``net.predict``.

Each exported model is run by ONNX Runtime (and, as a second opinion that the graph is
plain ONNX, by ``onnx.reference.ReferenceEvaluator``) and compared with ``net.predict``
on the same input: within 1e-5 in float32 and 1e-12 in float64, for every layer kind,
at the default opset 17 (GELU composed of primitive operators) and at opset 20 (ONNX's
own ``Gelu``), on moderate values and on the tails (|x| up to 50).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import backprop as bp  # noqa: E402
from backprop import onnx as bp_onnx  # noqa: E402
from backprop.errors import ConfigError  # noqa: E402

TOL = {"float32": 1e-5, "float64": 1e-12}

#: one of each activation-like layer kind, with non-default settings
KINDS = {
    "Sigmoid": bp.Sigmoid, "Tanh": bp.Tanh, "ReLU": bp.ReLU,
    "LeakyReLU": lambda: bp.LeakyReLU(0.3), "ELU": lambda: bp.ELU(alpha=0.7),
    "Softplus": bp.Softplus, "GELU": bp.GELU, "Softmax": bp.Softmax,
    "Identity": bp.Identity, "Dropout": lambda: bp.Dropout(0.4),
}


def run(model_or_path, x):
    """``y`` computed by ONNX Runtime's CPU provider."""
    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") \
        else str(model_or_path)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    (y,) = sess.run(["y"], {"x": x})
    return y


def max_diff(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def every_layer_net(dtype, seed=0):
    layers = [bp.Dense(5, 8)]
    for make in KINDS.values():
        layers += [make(), bp.Dense(8, 8)]
    layers += [bp.Dense(8, 3), bp.Softmax()]
    return bp.Network(layers, seed=seed, dtype=dtype)


# -------------------------------------------------------------------- same outputs
@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_layer_kind_matches_predict(kind, dtype, opset):
    # between two Dense layers, on moderate values
    net = bp.Network([bp.Dense(5, 8), KINDS[kind](), bp.Dense(8, 4)], seed=3, dtype=dtype)
    x = np.random.default_rng(1).normal(scale=2.0, size=(64, 5)).astype(dtype)
    assert max_diff(run(bp_onnx.to_model(net, opset=opset), x), net.predict(x)) <= TOL[dtype]
    # alone, on its tails: |x| up to 50 (saturation, overflow of eˣ in float32)
    alone = bp.Network([KINDS[kind]()], dtype=dtype)
    x = np.linspace(-50, 50, 4000, dtype=dtype).reshape(-1, 4)
    assert max_diff(run(bp_onnx.to_model(alone, opset=opset), x), alone.predict(x)) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_network_any_batch_size(tmp_path, dtype):
    net = every_layer_net(dtype)
    path = bp_onnx.export(net, tmp_path / "net.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    for n in (1, 3, 257):  # one file, one session, any N
        x = rng.normal(scale=2.0, size=(n, 5)).astype(dtype)
        (y,) = sess.run(["y"], {"x": x})
        assert y.shape == (n, 3) and y.dtype == np.dtype(dtype)
        assert max_diff(y, net.predict(x)) <= TOL[dtype]


@pytest.mark.parametrize("opset", [17, 20])
def test_reference_evaluator_agrees(opset):
    """onnx's own pure-Python evaluator runs the same graph: it is standard ONNX."""
    reference = pytest.importorskip("onnx.reference")
    net = every_layer_net("float64")
    x = np.random.default_rng(4).normal(size=(16, 5))
    (y,) = reference.ReferenceEvaluator(bp_onnx.to_model(net, opset=opset)).run(None, {"x": x})
    assert max_diff(y, net.predict(x)) <= 1e-12


# ------------------------------------------------------------------ the model file
def test_export_writes_a_checked_model_with_metadata(tmp_path):
    net = every_layer_net("float32")
    path = bp_onnx.export(net, tmp_path / "m.onnx")
    assert path == tmp_path / "m.onnx" and os.listdir(tmp_path) == ["m.onnx"]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    assert model.producer_name == "backprop" and model.producer_version == bp.__version__
    assert [(o.domain, o.version) for o in model.opset_import] == [("", bp_onnx.DEFAULT_OPSET)]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["backprop.dtype"] == "float32" and props["backprop.seed"] == "0"
    assert json.loads(props["backprop.architecture"]) == net.config()
    (x,), (y,) = model.graph.input, model.graph.output
    assert x.name == "x" and y.name == "y"
    assert x.type.tensor_type.elem_type == y.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [(d.dim_param, d.dim_value) for d in x.type.tensor_type.shape.dim] == [("N", 0), ("", 5)]
    assert [(d.dim_param, d.dim_value) for d in y.type.tensor_type.shape.dim] == [("N", 0), ("", 3)]
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert len(gemms) == sum(isinstance(layer, bp.Dense) for layer in net.layers) == 12
    assert all(onnx.helper.get_attribute_value(a) == 1 for n in gemms for a in n.attribute
               if a.name == "transB")
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["0_Dense.W"], net.layers[0].params["W"])  # (d_out, d_in)
    np.testing.assert_array_equal(weights["0_Dense.b"], net.layers[0].params["b"])
    # opset 17 has no Gelu: composed; Dropout is the identity
    ops = {n.op_type for n in model.graph.node}
    assert "Gelu" not in ops and "Dropout" not in ops and "Identity" in ops


def test_operators_by_dtype_and_opset():
    net = bp.Network([bp.Dense(2, 2), bp.LeakyReLU(0.1), bp.ELU(), bp.Softplus(), bp.GELU()])
    ops32 = {n.op_type for n in bp_onnx.to_model(net, opset=20).graph.node}
    assert {"Gemm", "LeakyRelu", "Elu", "Softplus", "Gelu"} <= ops32
    ops64 = {n.op_type for n in bp_onnx.to_model(net.astype("float64"), opset=20).graph.node}
    # ONNX Runtime has no double kernels for these (and a loose double Gelu): composed
    assert not {"LeakyRelu", "Elu", "Softplus", "Gelu"} & ops64


def test_network_without_dense_layers_has_symbolic_width(tmp_path):
    net = bp.Network([bp.Tanh(), bp.Softmax()], dtype="float64")
    model = bp_onnx.to_model(net)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["N", "d"]
    x = np.random.default_rng(0).normal(size=(4, 7))
    assert max_diff(run(model, x), net.predict(x)) <= 1e-15


def test_export_overwrites_atomically_and_needs_the_directory(tmp_path):
    net = bp.Network([bp.Dense(3, 2)], seed=1)
    path = tmp_path / "m.onnx"
    bp_onnx.export(net, path)
    bp_onnx.export(every_layer_net("float32"), str(path))  # str paths too; replaced whole
    assert os.listdir(tmp_path) == ["m.onnx"]
    assert len(onnx.load(str(path)).graph.initializer) > 2
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bp_onnx.export(net, tmp_path / "missing" / "m.onnx")


# ----------------------------------------------------------------------- refusals
class Square(bp.Layer):
    """A user-defined layer: ``f(z) = z²``."""

    def predict(self, x):
        return x * x


class ShiftedSigmoid(bp.Sigmoid):
    """A subclass of a known kind that computes something else."""

    @staticmethod
    def f(z):
        return bp.Sigmoid.f(z) - 0.5


@pytest.mark.parametrize("layer", [Square(), ShiftedSigmoid()], ids=["custom", "subclass"])
def test_layer_kind_without_export_is_named(tmp_path, layer):
    net = bp.Network([bp.Dense(2, 2), layer])
    name = type(layer).__name__
    with pytest.raises(ConfigError, match=f"cannot export layer 1, {name}, to ONNX"):
        bp_onnx.export(net, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("opset", [12, 10_000, "17", 17.0, True, None])
def test_bad_opset_is_refused(opset):
    with pytest.raises(ConfigError, match="opset must be an integer from 13"):
        bp_onnx.to_model(bp.Network([bp.Dense(2, 2)]), opset=opset)


def test_not_a_network_is_refused():
    with pytest.raises(ConfigError, match="net must be a backprop Network"):
        bp_onnx.to_model([bp.Dense(2, 2)])


def test_missing_onnx_is_reported_with_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(ImportError, match=r"pip install 'backprop\[onnx\]'"):
        bp_onnx.to_model(bp.Network([bp.Dense(2, 2)]))
