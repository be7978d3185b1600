"""The playground's messages are checked (each bad one gets the documented field and message,
and the session goes on unchanged), and its 2-D data sets are what they claim."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backprop.playground import data2d
from backprop.playground.protocol import DEFAULT_CONFIG, LIMITS, ProtocolError, check_config, parse_message
from backprop.playground.session import Session

BAD_MESSAGES = [
    ("{not json", "message", "a message must be JSON text"),
    ("[1, 2]", "message", "a message must be a JSON object; got [1, 2]"),
    ('{"type": "dance"}', "type", "type must be one of config, play, pause"),
    ('{"kind": "play"}', "type", "got null"),
    ('{"type": "config", "config": 3}', "config", "config must be an object; got 3"),
    ('{"type": "step", "steps": 0}', "steps", "steps must be an integer from 1 to 10000; got 0"),
    ('{"type": "step", "steps": 2.5}', "steps", "got 2.5"),
    ('{"type": "select", "sample": {"set": "dev", "index": 1}}', "sample.set", "sample.set must be one of train, test"),
    ('{"type": "select", "sample": {"set": "train", "index": -1}}', "sample.index", "from 0 to 2000; got -1"),
    ('{"type": "neuron", "layer": 0, "index": 0}', "layer", "layer must be an integer from 1 to 7; got 0"),
    ('{"type": "gradcheck", "layer": 1, "param": "V", "row": 0, "col": 0}', "param", "param must be one of W, b"),
    ('{"type": "set_param", "layer": 1, "param": "W", "row": 0, "col": 0, "value": 1e9}', "value",
     "value must be a number in [-100, 100]; got 1000000000.0"),
    ('{"type": "set_param", "layer": 1, "param": "b", "row": 0, "value": true}', "value", "got true"),
    ('{"type": "csv", "text": 5}', "text", "text must be the CSV as a string"),
    ('{"type": "export", "what": "weights"}', "what", "what must be one of model, csv"),
    ("x" * (LIMITS["max_message_bytes"] + 1), "message", "a message must be at most"),
]


@pytest.mark.parametrize(("raw", "field", "text"), BAD_MESSAGES)
def test_bad_messages_are_refused_with_the_field_and_what_was_expected(raw, field, text) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_message(raw)
    assert err.value.field == field and text in str(err.value)
    assert err.value.to_json() == {"type": "error", "field": field, "message": str(err.value)}


BAD_CONFIGS = [
    ({"learning_rate": 0}, "config.learning_rate", "config.learning_rate must be a number in (0, 10]; got 0"),
    ({"learning_rate": "fast"}, "config.learning_rate", 'got "fast"'),
    ({"learning_rate": 11}, "config.learning_rate", "got 11"),
    ({"batch_size": 0}, "config.batch_size", "config.batch_size must be an integer from 1 to 500; got 0"),
    ({"hidden": [4] * 7}, "config.hidden", "at most 6 layer widths, each an integer from 1 to 16"),
    ({"hidden": [17]}, "config.hidden", "got [17]"),
    ({"hidden": [0]}, "config.hidden", "got [0]"),
    ({"noise": 51}, "config.noise", "config.noise must be an integer from 0 to 50; got 51"),
    ({"train_share": 5}, "config.train_share", "from 10 to 90; got 5"),
    ({"features": []}, "config.features", "a non-empty list of distinct names"),
    ({"features": ["x1", "x1"]}, "config.features", "distinct"),
    ({"features": ["x3"]}, "config.features", 'got ["x3"]'),
    ({"activations": ["swish", "tanh"]}, "config.activations", "names from tanh, relu, sigmoid, linear"),
    ({"activations": ["tanh"]}, "config.activations", "one activation per hidden layer (2); got 1"),
    ({"dataset": "moons"}, "config.dataset", "config.dataset must be one of circle, xor, gauss, spiral, plane"),
    ({"dataset": "plane", "loss": "cross_entropy"}, "config.loss", "must be quadratic for the regression"),
    ({"l2": -0.1}, "config.l2", "config.l2 must be a number in [0, 1]; got -0.1"),
    ({"grid": 500}, "config.grid", "from 10 to 100; got 500"),
    ({"classes": 9}, "config.classes", "from 2 to 5; got 9"),
    ({"speed": 2}, "config.speed", "config.speed is not a setting"),
]


@pytest.mark.parametrize(("update", "field", "text"), BAD_CONFIGS)
def test_bad_settings_are_refused_and_the_session_goes_on(update, field, text) -> None:
    s = Session()
    s.train(3)
    before, params = dict(s.config), s.net.parameter_buffer.copy()
    with pytest.raises(ProtocolError) as err:
        s.update_config(update)
    assert err.value.field == field and text in str(err.value)
    assert s.config == before and np.array_equal(s.net.parameter_buffer, params) and s.steps == 3
    assert s.train(2) == 2   # still working


def test_good_messages_come_back_checked() -> None:
    assert parse_message('{"type": "step"}') == {"type": "step", "steps": 1}
    assert parse_message(json.dumps({"type": "set_param", "layer": 2, "param": "b", "row": 1, "value": -3})) == {
        "type": "set_param", "layer": 2, "param": "b", "row": 1, "col": 0, "value": -3.0}
    assert parse_message('{"type": "select", "sample": null}') == {"type": "select", "sample": None}
    new = check_config({"hidden": [3, 3, 3], "features": ["sinx2", "x1"]}, DEFAULT_CONFIG)
    assert new["activations"] == ["tanh"] * 3 and new["features"] == ["x1", "sinx2"]   # the inputs' order


def test_the_protocol_page_documents_every_message_and_setting() -> None:
    from pathlib import Path

    from backprop.playground.protocol import MESSAGE_TYPES

    doc = (Path(__file__).resolve().parents[1] / "docs" / "playground.md").read_text(encoding="utf-8")
    for name in (*MESSAGE_TYPES, *DEFAULT_CONFIG, "hello", "data", "frame", "chain", "walk", "file", "error"):
        assert f"| `{name}` |" in doc, name
    assert f"at most {LIMITS['max_message_bytes']:,} bytes" in doc


def test_a_sample_index_beyond_the_data_is_refused() -> None:
    s = Session({"points": 100, "train_share": 50})
    with pytest.raises(ProtocolError, match="sample.index must be below 50, the number of train points; got 50"):
        s.select({"set": "train", "index": 50})


@pytest.mark.parametrize("name", data2d.CLASSIFICATION + data2d.REGRESSION)
def test_data_sets_are_seeded_split_and_inside_the_plane(name) -> None:
    d = data2d.generate(name, n=300, noise=30, train_share=70, classes=3, seed=4)
    again = data2d.generate(name, n=300, noise=30, train_share=70, classes=3, seed=4)
    assert np.array_equal(d.x_train, again.x_train) and np.array_equal(d.y_test, again.y_test)
    assert d.x_train.shape == (210, 2) and d.x_test.shape == (90, 2)
    assert np.abs(np.concatenate([d.x_train, d.x_test])).max() <= data2d.EXTENT
    y = np.concatenate([d.y_train, d.y_test])
    if name in data2d.REGRESSION:
        assert d.regression and np.abs(y).max() <= 1.0 and y.std() > 0.1
    else:
        k = 3 if name in ("gauss", "spiral") else 2
        assert d.classes == k and sorted(set(y.tolist())) == list(range(k))


def test_xor_and_circle_labels_follow_their_rule_without_noise() -> None:
    d = data2d.generate("xor", n=200, seed=1)
    assert np.array_equal(d.y_train, (d.x_train[:, 0] * d.x_train[:, 1] > 0).astype(int))
    c = data2d.generate("circle", n=200, seed=1)
    r = np.hypot(*c.x_train.T)
    assert np.all(r[c.y_train == 1] <= 2.5) and np.all(r[c.y_train == 0] >= 3.5)


def test_csv_upload_round_trip_and_its_errors() -> None:
    text = "x1,x2,label\n" + "\n".join(f"{i / 10},{-i / 10},{i % 3}" for i in range(30))
    x, y, k = data2d.parse_csv(text)
    assert x.shape == (30, 2) and k == 3 and y.tolist() == [i % 3 for i in range(30)]
    s = Session()
    s.load_csv(text)
    assert s.config["dataset"] == "csv" and s.data.classes == 3 and s.output_width() == 3
    out = data2d.to_csv(s.data).splitlines()
    assert out[0] == "x1,x2,label,set" and len(out) == 31
    for bad, message in [
        ("x" * (data2d.MAX_CSV_BYTES + 1), "csv must be at most 65536 bytes"),
        ("1,2,0\n2,3,1\n", "at least 4 rows"),
        ("1,2,0\n2,3,1\n1,1\n3,3,0", "csv row 3 must have 3 values x1,x2,label; got 2"),
        ("1,2,0\n2,nan,1\n1,1,1\n3,3,0", "csv row 2, column 2 must be a finite number; got 'nan'"),
        ("1,2,0\n2,9,1\n1,1,1\n3,3,0", "csv x1 and x2 must lie in [-6, 6]; row 2 does not"),
        ("1,2,0\n2,3,7\n1,1,1\n3,3,0", "2 <= k <= 5; got k = 8"),
        ("1,2,0.5\n2,3,3.5\n1,1,1\n3,3,0", "regression targets must lie in [-1, 1]"),
    ]:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            data2d.parse_csv(bad)
