"""Seed 000's input gradient ∇ₓC at work: saliency maps and fast-gradient-sign examples.

A small ReLU network is trained in the fixture on the first 2000 MNIST training images
and attacked on the first 1000 test images. The gradient the attack uses is checked
against central differences in float64; the attack must leave the clean accuracy at
ε = 0 exactly as ``evaluate`` measures it, and accuracy must fall with ε.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import backprop as bp
from backprop import cli
from backprop.insight.adversarial import attack, fgsm, input_gradient, saliency

EPS = [0.0, 0.02, 0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    (x, y), (xt, yt) = bp.datasets.load_mnist()
    net = bp.Network([bp.Dense(784, 32, init="he_uniform"), bp.ReLU(), bp.Dense(32, 10)], seed=0)
    bp.fit(net, x[:2000], y[:2000], loss="cross_entropy", optimizer=bp.Adam(lr=3e-3), epochs=5,
           batch_size=32, seed=0, verbose=False)
    path = tmp_path_factory.mktemp("adv") / "small.safetensors"
    bp.save(net, path, metadata={"loss": "cross_entropy",
                                 "settings": {"dataset": "mnist", "limit": 1000}})
    return net, xt[:1000], yt[:1000], path


def test_accuracy_falls_with_eps_from_the_clean_accuracy(model):
    net, x, y, _ = model
    clean = bp.evaluate(net, x, y, "cross_entropy")["accuracy"]
    assert clean > 0.8
    result = attack(net, x, y, "cross_entropy", EPS)
    acc = result["accuracy"]
    assert acc[0] == clean                      # ε = 0: the inputs themselves
    assert all(a >= b for a, b in zip(acc, acc[1:], strict=False)), acc
    assert acc[-1] < clean - 0.5, acc           # ε = 0.2: well below clean accuracy
    assert result["predicted"].shape == (len(EPS), 1000)
    assert result["grad"].shape == (1000, 784)


def test_input_gradient_equals_finite_differences(model):
    net, x, y, _ = model
    net64 = net.astype("float64")
    xs, ys = x[:3].astype(np.float64), y[:3]
    g = input_gradient(net64, xs, ys, "cross_entropy")
    loss = bp.CrossEntropy()
    h = 1e-6
    for s in range(3):
        # the pixel the cost is most sensitive to, an ink pixel and a background pixel
        for pixel in (int(np.argmax(np.abs(g[s]))), int(np.argmax(xs[s])), 0):
            plus, minus = xs[s:s + 1].copy(), xs[s:s + 1].copy()
            plus[0, pixel] += h
            minus[0, pixel] -= h
            fd = (loss.per_sample(net64.predict(plus), ys[s:s + 1])[0]
                  - loss.per_sample(net64.predict(minus), ys[s:s + 1])[0]) / (2 * h)
            assert g[s, pixel] == pytest.approx(fd, rel=1e-5, abs=1e-9), (s, pixel)


def test_input_gradient_is_per_sample_whatever_the_batch(model):
    net, x, y, _ = model
    whole = input_gradient(net, x[:50], y[:50], "cross_entropy", batch_size=1000)
    pieces = input_gradient(net, x[:50], y[:50], "cross_entropy", batch_size=7)
    one = input_gradient(net, x[10:11], y[10:11], "cross_entropy")
    # float32: a different batch size changes the BLAS blocking and so the rounding, by a few
    # units in the last place of the largest terms (about 1e-5 of the gradient's scale)
    scale = float(np.abs(whole).max())
    np.testing.assert_allclose(whole, pieces, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(whole[10], one[0], rtol=1e-4, atol=1e-5 * scale)


def test_saliency_is_the_absolute_input_gradient(model):
    net, x, y, _ = model
    s = saliency(net, x[4], y[4], "cross_entropy")
    assert s.shape == (784,) and np.all(s >= 0) and s.max() > 0
    np.testing.assert_allclose(s, np.abs(input_gradient(net, x[4:5], y[4:5], "cross_entropy")[0]))


def test_fgsm_steps_by_eps_and_stays_in_range(model):
    net, x, y, _ = model
    g = input_gradient(net, x[:20], y[:20], "cross_entropy")
    assert np.array_equal(fgsm(x[:20], g, 0.0), x[:20])
    adv = fgsm(x[:20], g, 0.1)
    assert adv.dtype == x.dtype and adv.min() >= 0 and adv.max() <= 1
    assert np.abs(adv - x[:20]).max() <= 0.1 + 1e-6
    moved = (np.sign(adv - x[:20]) == np.sign(g)) | (adv == 0) | (adv == 1) | (g == 0)
    assert moved.all()
    with pytest.raises(bp.errors.ConfigError):
        fgsm(x[:1], g[:1], -0.1)


def test_attack_command_table_json_and_plot(model, tmp_path, capsys):
    net, x, y, path = model
    plot = tmp_path / "attack.png"
    assert cli.main(["attack", str(path), "--eps", "0.1,0.05", "--limit", "300", "--out",
                     str(plot)]) == 0
    out = capsys.readouterr().out
    assert "FGSM on 300 test samples" in out and f"saved the plot to {plot}" in out
    lines = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in lines] == ["0", "0.05", "0.1"]
    assert plot.read_bytes().startswith(b"\x89PNG")

    assert cli.main(["attack", str(path), "--eps", "0.1", "--limit", "300", "--json", "--out",
                     str(tmp_path / "a.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    clean = bp.evaluate(net, x[:300], y[:300], "cross_entropy")["accuracy"]
    assert report["samples"] == 300 and report["clean_accuracy"] == clean
    assert [r["eps"] for r in report["results"]] == [0.0, 0.1]
    assert report["results"][0]["accuracy"] == clean > report["results"][1]["accuracy"]


def test_saliency_command(model, tmp_path, capsys):
    _, _, y, path = model
    out = tmp_path / "s.png"
    assert cli.main(["saliency", str(path), "--index", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"test image 2: true {y[2]}" in text and f"saved the saliency map to {out}" in text
    assert out.read_bytes().startswith(b"\x89PNG")
    assert cli.main(["saliency", str(path), "--index", "5000"]) == 2
    assert "past the test set's 1,000 samples" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--eps", "-0.1"], ["--eps", "x"], ["--eps", "nan"]])
def test_attack_bad_eps_is_a_usage_error(model, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["attack", str(model[3]), *argv])
    assert exc.value.code == 2
    capsys.readouterr()
