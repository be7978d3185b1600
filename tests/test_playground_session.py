"""The playground's numbers without a browser or a server: every δ, ∂C/∂w, ∂C/∂x and chain-rule
number the page shows equals backprop.reference's (float64, ≤ 1e-10 relative); the gradient
check agrees; a step of one sample is the textbook update; reset replays the run."""

from __future__ import annotations

import numpy as np
import pytest

from backprop.gradcheck import relative_error
from backprop.playground import data2d, passes
from backprop.playground.frames import OUTPUT_RESOLUTION, Framer, neuron_grids
from backprop.playground.session import Session
from backprop.reference import per_parameter_gradients, per_sample_gradients

CONFIGS = [
    {"dataset": "circle"},                                                   # quadratic, sigmoid output
    {"dataset": "spiral", "classes": 3, "loss": "cross_entropy", "hidden": [5, 4, 3],
     "activations": ["relu", "sigmoid", "tanh"], "features": list(data2d.FEATURES)},
    {"dataset": "multigauss", "hidden": [6], "activations": ["sigmoid"], "features": ["x1", "x2", "x1x2", "sinx1"]},
    {"dataset": "xor", "loss": "cross_entropy", "hidden": [], "activations": []},  # no hidden layer
]


def close(mine, ref, tol=1e-10) -> None:
    mine, ref = np.asarray(mine, np.float64), np.asarray(ref, np.float64)
    assert mine.shape == ref.shape
    assert relative_error(mine, ref) <= tol, (mine, ref)


def trained(config, steps=30) -> Session:
    s = Session({"learning_rate": 0.1, **config})
    s.train(steps)  # away from the initial weights
    return s


@pytest.mark.parametrize("config", CONFIGS)
def test_one_samples_delta_gradients_and_input_gradient_equal_the_reference(config) -> None:
    s = trained(config)
    for which, index in (("train", 0), ("test", 7)):
        s.select({"set": which, "index": index})
        p = passes.selected_pass(s)
        x, t = s.sample(which, index)
        ref = per_sample_gradients(s.net, s.loss, x, t)[0]
        scalars = per_parameter_gradients(s.net, s.loss, x, t)
        for n, i in enumerate(s.dense):
            close(p.delta[n], ref[f"{i}.b"])               # δˡ = ∂C/∂bˡ
            close(p.grad_b[n], scalars[f"{i}.b"])
            close(p.grad_W[n], scalars[f"{i}.W"])           # ∂C/∂wˡⱼₖ = δˡⱼ aˡ⁻¹ₖ
        close(p.grad_x, scalars["x"][0])                    # ∇ₓC over the features
        point = (s.data.x_train if which == "train" else s.data.x_test)[index]
        jac = data2d.feature_jacobian(point[None], s.config["features"])[0]
        close(p.grad_plane, scalars["x"][0] @ jac)
        # the sample's output is the network's
        close(p.a[-1], s.net.predict(x)[0])


@pytest.mark.parametrize("config", CONFIGS)
def test_chain_rule_numbers_multiply_out_to_the_reference_delta(config) -> None:
    s = trained(config)
    s.select({"set": "train", "index": 4})
    p = passes.selected_pass(s)
    x, t = s.sample("train", 4)
    ref = per_sample_gradients(s.net, s.loss, x, t)[0]
    for layer in range(1, len(s.dense) + 1):
        delta_ref = ref[f"{s.dense[layer - 1]}.b"]
        for j in range(delta_ref.shape[0]):
            c = passes.chain_rule(s, p, layer, j)
            close(c["delta"], delta_ref[j])
            if c["output"]:   # δᴸⱼ = (∇_{aᴸ}C)ⱼ f'(zᴸⱼ)
                close(c["grad_a"] * c["fprime"], delta_ref[j])
            else:             # δˡⱼ = f'(zˡⱼ) Σₖ wˡ⁺¹ₖⱼ δˡ⁺¹ₖ
                w_next = s.net.layers[s.dense[layer]].params["W"][:, j]
                close([term["w"] for term in c["terms"]], w_next)
                close([term["delta"] for term in c["terms"]], ref[f"{s.dense[layer]}.b"])
                close(c["fprime"] * sum(term["w"] * term["delta"] for term in c["terms"]), delta_ref[j])
            close([link["grad"] for link in c["incoming"]], ref[f"{s.dense[layer - 1]}.W"][j])
    cross_entropy = config.get("loss") == "cross_entropy"
    out = passes.chain_rule(s, p, len(s.dense), 0)
    assert out["logits"] is cross_entropy and (out["fprime"] == 1.0 or not cross_entropy)


def test_chain_rule_refuses_a_neuron_that_is_not_there() -> None:
    s = Session()
    s.select({"set": "train", "index": 0})
    p = passes.selected_pass(s)
    with pytest.raises(ValueError, match="layer must be from 1 to 3; got 4"):
        passes.chain_rule(s, p, 4, 0)
    with pytest.raises(ValueError, match="index must be below 2, the width of layer 2; got 2"):
        passes.chain_rule(s, p, 2, 2)


@pytest.mark.parametrize("config", CONFIGS)
def test_the_frames_link_gradients_are_the_last_batchs_reference_gradients(config) -> None:
    s = trained(config, steps=5)
    before = s.net.astype("float64")
    idx = s.next_batch()
    s.train_on(idx)
    ref = per_parameter_gradients(before, s.loss, s.x_train[idx], s.t_train[idx])
    message, _ = Framer().frame(s)
    for n, i in enumerate(s.dense):
        close(message["layers"][n]["dW"], ref[f"{i}.W"])
        close(message["layers"][n]["db"], ref[f"{i}.b"])   # the batch's δ: the mean of the samples' δ
        close(message["layers"][n]["W"], s.net.layers[i].params["W"])
    # ‖δˡ‖: the root mean square of the samples' ‖δˡ_x‖
    each = per_sample_gradients(before, s.loss, s.x_train[idx], s.t_train[idx])
    for n, i in enumerate(s.dense):
        rms = np.sqrt(np.mean([np.sum(g[f"{i}.b"] ** 2) for g in each]))
        close(message["layers"][n]["delta_norm"], rms)


def test_input_gradients_over_the_plane_equal_the_reference_and_central_differences() -> None:
    s = trained({"dataset": "circle", "features": ["x1", "x2", "x1sq", "x2sq", "sinx2"]})
    g = passes.input_gradients(s)
    ref = per_sample_gradients(s.net, s.loss, s.x_train, s.t_train)
    jac = data2d.feature_jacobian(s.data.x_train, s.config["features"])
    close(g, np.stack([r["x"] @ jac[n] for n, r in enumerate(ref)]))
    # the features' Jacobian itself, by central differences in the plane
    for n in (0, 11):
        point, t = s.data.x_train[n], s.t_train[n:n + 1]
        for c in range(2):
            h = np.zeros(2)
            h[c] = 1e-6
            cost = [s.loss.value(s.net.predict(data2d.features((point + sign * h)[None], s.config["features"])), t)
                    for sign in (1, -1)]
            assert abs((cost[0] - cost[1]) / 2e-6 - g[n, c]) <= 1e-7 * max(1.0, abs(g[n, c]))


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_gradient_check_of_a_clicked_weight_agrees(config) -> None:
    s = trained(config)
    for selected in (None, {"set": "test", "index": 2}):
        s.select(selected)
        for param, row, col in (("W", 0, 1), ("b", 1, 0)):
            c = passes.gradcheck_entry(s, 1, param, row, col)
            close(c["backprop"], c["reference"])
            assert abs(c["backprop"] - c["central_difference"]) <= 1e-7 * max(1e-3, abs(c["backprop"]))
            assert c["value"] == s.parameter(1, param)[(row, col) if param == "W" else (row,)]
    width = len(s.config["features"])
    with pytest.raises(ValueError, match=f"col must be below {width}; got 10"):
        passes.gradcheck_entry(s, 1, "W", 0, 10)


def test_step_one_sample_is_the_textbook_update_through_the_training_step() -> None:
    s = trained({"dataset": "xor", "hidden": [3, 2], "activations": ["tanh", "relu"]})
    x, t = s.sample("train", 9)
    ref = per_sample_gradients(s.net, s.loss, x, t)[0]
    walk = passes.step_sample(s, 9)
    # the training step's own δ equals the walk's (and the reference)
    deltas = {st["layer"]: st["delta"] for st in walk["stages"] if st["stage"] == "delta"}
    for n, i in enumerate(s.dense):
        close(deltas[n + 1], ref[f"{i}.b"])
        close(s.net.layers[i].last_delta[0], ref[f"{i}.b"])
    # SGD: Δw = −η ∂C/∂w
    update = walk["stages"][-1]
    for n, i in enumerate(s.dense):
        close(update["layers"][n]["dW"], -0.1 * ref[f"{i}.W"])
        close(update["layers"][n]["db"], -0.1 * ref[f"{i}.b"])
    assert [st["stage"] for st in walk["stages"]] == (
        ["input", "forward", "forward", "forward", "cost", "delta", "delta", "delta", "input_gradient", "update"])
    assert s.steps == 31


def test_reset_replays_the_same_run_and_training_learns_xor() -> None:
    s = Session({"dataset": "xor", "learning_rate": 0.3, "hidden": [6, 4], "activations": ["tanh", "tanh"]})
    s.train(1500)
    first = s.net.parameter_buffer.copy()
    assert s.metrics()["test_loss"] < 0.1 and s.metrics()["test_accuracy"] > 0.9
    s.reset()
    s.train(1500)
    np.testing.assert_array_equal(s.net.parameter_buffer, first)


def test_fixed_epochs_stop_training_and_optimizers_switch() -> None:
    s = Session({"epochs": 3, "batch_size": 25, "points": 100, "train_share": 50})
    assert s.train(1000) == 6 and s.finished() and s.epoch == 3
    for name in ("momentum", "adam"):
        s.update_config({"optimizer": name, "epochs": 0})
        before = s.net.parameter_buffer.copy()
        s.train(1)
        assert not np.array_equal(before, s.net.parameter_buffer)
    assert type(s.optimizer).__name__ == "Adam"
    s.update_config({"learning_rate": 0.5, "l2": 0.01})   # kept optimizer, new settings
    assert s.optimizer.lr == 0.5 and s.optimizer.weight_decay == 0.01


def test_set_param_edits_the_weight_the_network_uses() -> None:
    s = Session()
    s.set_param(2, "W", 1, 3, 0.75)
    assert s.net.layers[s.dense[1]].params["W"][1, 3] == 0.75
    with pytest.raises(ValueError, match="row must be below 2; got 2"):
        s.set_param(2, "b", 2, 0, 1.0)


def test_neuron_heatmaps_are_the_networks_values_quantised() -> None:
    s = trained({"dataset": "spiral", "classes": 3, "loss": "cross_entropy", "grid": 20})
    message, blob = Framer().frame(s)
    widths = message["grid"]["widths"]
    assert widths == [2, 4, 2, 3]
    r = 20
    assert len(blob) == sum(widths) * r * r + 2 * OUTPUT_RESOLUTION ** 2
    decoded = np.frombuffer(blob, np.uint8)[: sum(widths) * r * r].reshape(sum(widths), r * r) / 127.5 - 1.0
    points = data2d.grid_points(r)
    # the first hidden layer's neurons (tanh) at every grid point, within one quantisation step
    h1 = s.net.layers[1].predict(s.net.layers[0].predict(data2d.features(points, ["x1", "x2"])))
    assert np.max(np.abs(decoded[2:6].T - np.clip(h1, -1, 1))) <= 1 / 127.5
    # the output: softmax probabilities, 2p − 1; the fine grid's winning class
    logits = s.net.predict(data2d.features(points, ["x1", "x2"]))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.max(np.abs(decoded[8:11].T - (2 * p - 1))) <= 1 / 127.5
    fine = data2d.features(data2d.grid_points(OUTPUT_RESOLUTION), ["x1", "x2"])
    winners = np.frombuffer(blob[-OUTPUT_RESOLUTION ** 2:], np.uint8)
    np.testing.assert_array_equal(winners, np.argmax(s.net.predict(fine), axis=1))
    layers = neuron_grids(s, r)
    assert [g.shape for g in layers] == [(r * r, w) for w in widths]


def test_history_is_sent_once_and_again_after_a_reset() -> None:
    s = Session()
    framer = Framer()
    s.train(3)
    s.record()
    s.train(3)
    s.record()
    first = framer.frame(s)[0]["history"]
    assert first["start"] == 0 and [p["step"] for p in first["points"]] == [3, 6]
    s.train(2)
    s.record()
    assert [p["step"] for p in framer.frame(s)[0]["history"]["points"]] == [8]
    s.reset()
    s.record()
    again = framer.frame(s)[0]["history"]
    assert again["start"] == 0 and again["version"] != first["version"] and len(again["points"]) == 1
