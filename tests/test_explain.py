"""``backprop explain``: one forward and one backward pass, step by step, every number checked.

The walk-through prints the library's own numbers (the layers' forward and backward) and
checks each gradient against ``reference.per_parameter_gradients``; these tests recompute
the printed numbers through the public API, make sure a wrong gradient is caught (exit 1),
and check the Markdown/LaTeX form.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import backprop as bp
from backprop import cli, reference
from backprop.insight.explain import explain

CHECK = "✓ matches the per-parameter reference (max |diff| = "


def printed(text: str, lhs: str) -> np.ndarray:
    """The numbers of the line starting with ``lhs`` (a vector written ``(v1, v2, ...)``)."""
    line = next(line for line in text.splitlines() if line.strip().startswith(lhs))
    return np.array([float(v) for v in re.search(r"\(([^()]*)\)\s*$", line).group(1).split(",")])


def test_default_walkthrough_2_3_2_sigmoid_quadratic():
    e = explain()
    text = e.text
    assert e.ok and len(e.checks) == 8  # aᴸ; δ, ∂C/∂W, ∂C/∂b per layer; ∇ₓC
    assert text.startswith("One forward and one backward pass of a 2-3-2 network")
    for fragment in ("z¹ = W¹ a⁰ + b¹", "a¹ = σ(z¹)", "z² = W² a¹ + b²", "C = ½‖a² − y‖²",
                     "∇_{a²}C = a² − y", "σ'(z²) = σ(z²)(1 − σ(z²))", "δ² = ∇_{a²}C ⊙ σ'(z²)",
                     "∂C/∂w²ᵢⱼ = δ²ᵢ a¹ⱼ", "∂C/∂b²ⱼ = δ²ⱼ", "∇_{a¹}C = (W²)ᵀ δ²",
                     "∂C/∂w¹ᵢⱼ = δ¹ᵢ a⁰ⱼ", "∇ₓC = (W¹)ᵀ δ¹", "all 8 checks passed"):
        assert fragment in text, fragment
    assert text.count(CHECK) == 7  # and one against Network.predict
    assert e.network.layers[0].params["W"].shape == (3, 2) and e.network.dtype == np.float64

    # the printed numbers are the network's: recompute them through the public API
    net, x, y = e.network, e.x, e.y
    a = net.forward(x)
    dx = net.backward(bp.Quadratic().grad(a, y))
    np.testing.assert_allclose(printed(text, "a² = σ(z²)"), a[0], atol=1e-6)
    np.testing.assert_allclose(printed(text, "∇ₓC = (W¹)ᵀ δ¹"), dx[0], atol=1e-6)
    np.testing.assert_allclose(printed(text, "∂C/∂b¹ⱼ = δ¹ⱼ"), net.layers[0].grads["b"], atol=1e-6)
    z1 = net.layers[0].params["W"] @ x[0] + net.layers[0].params["b"]
    np.testing.assert_allclose(printed(text, "z¹ = W¹ a⁰ + b¹"), z1, atol=1e-6)
    c = float(re.search(r"C = ½‖a² − y‖² = ([-\d.]+)", text).group(1))
    assert c == pytest.approx(0.5 * np.sum((a - y) ** 2), abs=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "elu",
                                        "softplus", "gelu", "identity", "softmax"])
@pytest.mark.parametrize("loss", ["quadratic", "cross_entropy", "binary_cross_entropy", "huber"])
def test_every_activation_and_loss_checks_out(activation, loss):
    e = explain([3, 4, 3], activation=activation, loss=loss, seed=2)
    assert e.ok, [c for c in e.checks if not c.ok]
    assert all(c.max_diff < 1e-12 for c in e.checks)


def test_deeper_network_and_seed():
    e = explain([3, 4, 4, 2], activation="tanh", seed=5)
    assert e.ok and len(e.checks) == 1 + 3 * 3 + 1
    assert "δ³" in e.text and "∇_{a²}C = (W³)ᵀ δ³" in e.text and "tanh'(z¹)" in e.text
    assert explain(seed=5).text != explain(seed=6).text


def test_markdown_with_latex():
    text = explain(fmt="markdown").text
    assert text.startswith("# One forward and one backward pass of a 2-3-2 network")
    for fragment in (r"$$ z^{1} = W^{1} a^{0} + b^{1} = \begin{pmatrix}",
                     r"\delta^{2} = \nabla_{a^{2}} C \odot \sigma'(z^{2})",
                     r"\frac{\partial C}{\partial w^{2}_{ij}} = \delta^{2}_i a^{1}_j",
                     r"$$ \nabla_x C = (W^{1})^T \delta^{1} = ", r"C = \tfrac12\|a^{2} - y\|^2",
                     "> " + CHECK, "## Backward pass"):
        assert fragment in text, fragment
    assert text.count("$$") % 2 == 0


def test_a_wrong_gradient_fails_the_check_and_exits_1(monkeypatch, capsys):
    real = reference.per_parameter_gradients

    def off_by_a_bit(net, loss, x, y):
        grads = real(net, loss, x, y)
        grads["0.W"] = grads["0.W"] + 1e-4
        return grads

    monkeypatch.setattr(reference, "per_parameter_gradients", off_by_a_bit)
    e = explain()
    assert not e.ok and [c.quantity for c in e.checks if not c.ok] == ["∂C/∂W¹"]
    assert "✗ DIFFERS from the per-parameter reference (max |diff| = 1.0e-04)" in e.text
    assert "1 of 8 checks FAILED" in e.text
    assert cli.main(["explain"]) == 1
    assert "✗ DIFFERS" in capsys.readouterr().out


def test_cli_prints_and_writes(tmp_path, capsys):
    assert cli.main(["explain"]) == 0
    out = capsys.readouterr().out
    assert out == explain().text
    target = tmp_path / "notes.md"
    assert cli.main(["explain", "--layers", "2,2,2", "--activation", "tanh", "--loss",
                     "cross_entropy", "--seed", "3", "--format", "markdown", "--out",
                     str(target)]) == 0
    assert f"wrote {target} (8 checks, all passed)" in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == explain([2, 2, 2], "tanh", "cross_entropy", 3,
                                                         "markdown").text


@pytest.mark.parametrize("argv, fragment", [
    (["--layers", "2,30,2"], "at most 10"),
    (["--activation", "swish"], "activation must be one of"),
    (["--loss", "hinge"], "loss must be one of"),
    (["--layers", "2,3,1", "--loss", "cross_entropy"], "at least two outputs"),
])
def test_bad_settings_exit_2(capsys, argv, fragment):
    assert cli.main(["explain", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]


def test_usage_errors_exit_2(capsys):
    for argv in (["--format", "html"], ["--layers", "2"], ["--layers", "a,b"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["explain", *argv])
        assert exc.value.code == 2
    capsys.readouterr()
