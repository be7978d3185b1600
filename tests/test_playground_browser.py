"""The playground in a real browser: Debian's chromium, headless, driven by Selenium through
chromium-driver at an explicit path (nothing is downloaded when the tests run). Every host but
127.0.0.1 is unresolvable for the browser, so the page must work with the network cut off.

Skips, saying why, where chromium, chromedriver, selenium or the playground extra is missing
(``apt-get install chromium chromium-driver``, ``pip install ".[playground,browser]"``).
Screenshots go to the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the playground extra is not installed (pip install '.[playground]')")
pytest.importorskip("uvicorn", reason="the playground extra is not installed (pip install '.[playground]')")
pytest.importorskip("selenium", reason="selenium is not installed (pip install '.[browser]')")

CHROMIUM = os.environ.get("BACKPROP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("BACKPROP_CHROMEDRIVER") or shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="chromium and chromium-driver are not installed "
                                       "(apt-get install chromium chromium-driver)")

import backprop as bp  # noqa: E402
from backprop.playground import data2d  # noqa: E402
from backprop.reference import per_sample_gradients  # noqa: E402

TOKEN = "browser-test-token"
XOR = "#dataset=xor&learning_rate=0.3&hidden=6,4&activations=tanh,tanh&grid=20"


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from backprop.playground.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(TOKEN), log_level="warning", ws="auto", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1440,1350", "--hide-scrollbars",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",   # the network, cut off
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver and the browser are both given: Selenium Manager has nothing to find, and
    # SE_OFFLINE forbids it any download should it run
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path):
    def save(driver, name):
        path = tmp_path / f"{name}.png"
        driver.save_screenshot(str(path))
        return path
    return save


def open_page(driver, server, hash_=""):
    driver.get("about:blank")   # a new page, not a jump within the last one
    driver.get(f"{server}/?token={TOKEN}{hash_}")
    wait(driver, "window.playground && window.playground.frames > 0")
    if hash_:
        dataset = dict(p.split("=") for p in hash_[1:].split("&")).get("dataset")
        wait(driver, f"window.playground.config.dataset === '{dataset}' && window.playground.frame.step === 0")
    driver.get_log("browser")  # start each test's log afresh


def wait(driver, condition, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(f"try {{ return !!({condition}); }} catch (e) {{ return false; }}"):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {condition}")


def js(driver, expression):
    return driver.execute_script(f"return {expression};")


def test_page_loads_with_no_severe_console_entry_and_nothing_from_elsewhere(browser, server, shots) -> None:
    browser.get(f"{server}/?token={TOKEN}")
    wait(browser, "window.playground && window.playground.frames > 0")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    origins = js(browser, "performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert origins and set(origins) == {server}
    assert len(browser.find_elements("css selector", ".node canvas")) >= 7 + 4 + 2 + 1
    assert browser.find_element("id", "test_loss").text not in ("", "–")
    shots(browser, "loaded")


def test_play_trains_xor_until_the_test_loss_is_below_a_tenth(browser, server, shots) -> None:
    open_page(browser, server, XOR)
    browser.find_element("id", "play").click()
    wait(browser, "window.playground.frame.test_loss < 0.1", timeout=90)
    browser.find_element("id", "play").click()
    wait(browser, "!window.playground.frame.playing")
    shown = float(browser.find_element("id", "test_loss").text)
    assert shown < 0.1 and abs(shown - js(browser, "window.playground.frame.test_loss")) < 1e-3
    assert js(browser, "window.playground.history.length") > 2
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    shots(browser, "xor-trained")


def _network_from_frame(frame, data) -> bp.Network:
    """The network the page shows, rebuilt from the frame's own numbers."""
    config = data["config"]
    acts = {"tanh": bp.Tanh, "relu": bp.ReLU, "sigmoid": bp.Sigmoid, "linear": bp.Identity}
    layers, width = [], len(config["features"])
    for h, a in zip(config["hidden"], config["activations"], strict=True):
        layers += [bp.Dense(width, h), acts[a]()]
        width = h
    layers += [bp.Dense(width, 1), bp.Sigmoid()]
    net = bp.Network(layers, dtype="float64")
    for layer, shown in zip([la for la in net.layers if isinstance(la, bp.Dense)], frame["layers"], strict=True):
        layer.params["W"][...] = np.array(shown["W"])
        layer.params["b"][...] = np.array(shown["b"])
    return net


def test_step_one_sample_shows_the_numbers_the_library_computes(browser, server, shots) -> None:
    open_page(browser, server, XOR)
    browser.find_element("id", "step").click()
    wait(browser, "window.playground.frame.step === 1")
    browser.find_element("id", "plane_top").click()     # the point nearest the centre
    wait(browser, "window.playground.frame.sample !== null")
    frame, data = js(browser, "window.playground.frame"), js(browser, "window.playground.data")
    index = frame["sample"]["index"]
    net = _network_from_frame(frame, data)
    x = data2d.features(np.array([data["train"]["x"][index]]), data["config"]["features"])
    t = np.array([[float(data["train"]["y"][index])]])
    ref = per_sample_gradients(net, bp.Quadratic(), x, t)[0]
    browser.find_element("id", "walk_start").click()
    wait(browser, "window.playground.walk !== null")
    largest = 0.0
    for layer in (3, 2, 1):     # δᴸ first, then back to the input
        while js(browser, "window.playground.walk.stages[window.playground.walkStage]").get("layer") != layer or \
                js(browser, "window.playground.walk.stages[window.playground.walkStage].stage") != "delta":
            browser.find_element("id", "walk_next").click()
        shown = [float(e.get_attribute("data-value"))
                 for e in browser.find_elements("css selector", "#walk_delta .num")]
        expected = ref[f"{2 * (layer - 1)}.b"]
        assert len(shown) == expected.shape[0]
        difference = float(np.max(np.abs(np.array(shown) - expected)))
        largest = max(largest, difference / max(1e-300, float(np.max(np.abs(expected)))))
        assert difference <= 1e-10 * float(np.max(np.abs(expected)))
        # what the learner reads: the same numbers, rounded
        texts = [float(e.text) for e in browser.find_elements("css selector", "#walk_delta .num")]
        assert np.allclose(texts, expected, rtol=1e-5, atol=1e-12)
    while browser.find_element("id", "walk_next").is_enabled():
        browser.find_element("id", "walk_next").click()
    update = js(browser, "window.playground.walk.stages.at(-1).layers[0].dW")
    assert np.max(np.abs(np.array(update) + 0.3 * ref["0.W"])) <= 1e-10 * np.max(np.abs(ref["0.W"]))
    print(f"largest relative difference page vs reference: {largest:.2e}")
    shots(browser, "step-one-sample")


def test_a_bad_learning_rate_shows_an_error_and_the_page_keeps_working(browser, server, shots) -> None:
    open_page(browser, server)
    field = browser.find_element("id", "learning_rate")
    field.clear()
    field.send_keys("-1\t")
    wait(browser, "!document.getElementById('error').hidden")
    error = browser.find_element("id", "error")
    assert "learning_rate" in error.text and "got -1" in error.text
    shots(browser, "bad-learning-rate")
    browser.find_element("id", "step").click()
    wait(browser, "window.playground.frame.step === 1")
    assert js(browser, "window.playground.config.learning_rate") == 0.03


def test_a_clicked_link_shows_its_weight_and_takes_a_new_value(browser, server) -> None:
    open_page(browser, server)
    link = browser.find_element("id", "link_2_1_3")       # w²₂₄: an SVG path, clicked where it is
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", link)
    wait(browser, "document.getElementById('param_value') !== null")
    w = js(browser, "window.playground.frame.layers[1].W[1][3]")
    assert float(browser.find_element("css selector", "#param_numbers .num").get_attribute("data-value")) == w
    assert "from neuron 4 of layer 1 to neuron 2 of layer 2" in browser.find_element("id", "link_where").text
    field = browser.find_element("id", "param_value")
    field.clear()
    field.send_keys("0.625")
    browser.find_element("id", "param_set").click()
    wait(browser, "window.playground.frame.layers[1].W[1][3] === 0.625")
    assert float(browser.find_element("css selector", "#param_numbers .num").get_attribute("data-value")) == 0.625
    field.clear()
    field.send_keys("lots")
    browser.find_element("id", "param_set").click()
    wait(browser, "!document.getElementById('error').hidden")
    assert 'value must be a number; got "lots"' in browser.find_element("id", "error").text


def test_two_tabs_train_independently(browser, server) -> None:
    open_page(browser, server)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    open_page(browser, server, "#dataset=spiral&classes=3&loss=cross_entropy")
    for _ in range(3):
        browser.find_element("id", "step").click()
    wait(browser, "window.playground.frame.step === 3")
    second_config = js(browser, "window.playground.config")
    browser.close()
    browser.switch_to.window(first)
    assert js(browser, "window.playground.frame.step") == 0
    assert js(browser, "window.playground.config.dataset") == "circle"
    browser.find_element("id", "step").click()
    wait(browser, "window.playground.frame.step === 1")
    assert second_config["dataset"] == "spiral" and second_config["classes"] == 3


def test_the_token_and_the_origin_are_required(browser, server) -> None:
    browser.get(f"{server}/")
    assert "403" in browser.find_element("tag name", "body").text
    browser.get(f"{server}/?token=wrong")
    assert "403" in browser.find_element("tag name", "body").text
    # a page from elsewhere (here a data: URL, origin "null") cannot open the WebSocket
    browser.get("data:text/html,<title>elsewhere</title>")
    outcome = browser.execute_async_script(f"""
        const done = arguments[0];
        const ws = new WebSocket('{server.replace("http", "ws")}/ws?token={TOKEN}');
        ws.onopen = () => done('open');
        ws.onclose = () => done('closed');""")
    assert outcome == "closed"


def test_the_controls_change_the_network_and_the_data(browser, server, tmp_path) -> None:
    """Datasets, layers, neurons, features, loss, optimizer, a CSV upload and a shared URL, each
    through the page, each reaching the server, and no SEVERE console entry on the way."""
    from selenium.webdriver.support.ui import Select

    open_page(browser, server)
    config = lambda: js(browser, "window.playground.config")   # noqa: E731
    browser.find_element("id", "dataset_spiral").click()
    wait(browser, "window.playground.config.dataset === 'spiral'")
    browser.find_element("id", "add_layer").click()
    wait(browser, "window.playground.config.hidden.length === 3")
    browser.find_element("css selector", "#nodes .layerhead [data-act=plus]").click()
    wait(browser, "window.playground.config.hidden[0] === 5")
    assert len(browser.find_elements("css selector", ".node.hidden")) == 5 + 2 + 2
    browser.find_element("id", "feature_sinx1").click()
    wait(browser, "window.playground.config.features.includes('sinx1')")
    Select(browser.find_element("id", "loss")).select_by_value("cross_entropy")
    wait(browser, "window.playground.config.loss === 'cross_entropy'")
    Select(browser.find_element("id", "optimizer")).select_by_value("adam")
    wait(browser, "window.playground.config.optimizer === 'adam'")
    for _ in range(3):
        browser.find_element("id", "remove_layer").click()
    wait(browser, "window.playground.config.hidden.length === 0")
    browser.find_element("id", "step").click()
    wait(browser, "window.playground.frame.step === 1 && window.playground.frame.layers.length === 1")
    assert config()["features"] == ["x1", "x2", "sinx1"]
    # the URL now holds the settings: a new tab from it starts the same
    shared = browser.current_url
    assert "dataset=spiral" in shared and "loss=cross_entropy" in shared and "optimizer=adam" in shared
    # a learner's CSV with three classes
    rows = [f"{np.cos(i) * 3:.3f},{np.sin(i) * 3:.3f},{i % 3}" for i in range(60)]
    path = tmp_path / "mine.csv"
    path.write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    browser.find_element("id", "csv").send_keys(str(path))
    wait(browser, "window.playground.config.dataset === 'csv' && window.playground.data.classes === 3")
    assert js(browser, "window.playground.data.train.x.length + window.playground.data.test.x.length") == 60
    browser.find_element("id", "dataset_plane").click()
    wait(browser, "!document.getElementById('error').hidden")   # cross-entropy cannot fit a regression
    assert "quadratic" in browser.find_element("id", "error").text
    assert config()["dataset"] == "csv"
    Select(browser.find_element("id", "loss")).select_by_value("quadratic")
    wait(browser, "window.playground.config.loss === 'quadratic'")
    browser.find_element("id", "dataset_plane").click()
    wait(browser, "window.playground.config.dataset === 'plane' && window.playground.frame.train_accuracy === null")
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    open_page(browser, server, shared[shared.index("#"):])
    assert config()["optimizer"] == "adam" and config()["hidden"] == []


def test_readme_screenshot(browser, server, tmp_path) -> None:
    """The picture in the README: xor learnt, a sample chosen, a neuron's chain rule, a check."""
    browser.set_window_size(1440, 1640)
    open_page(browser, server, "#dataset=xor&learning_rate=0.1&hidden=6,4,2&activations=tanh,tanh,tanh&grid=30")
    browser.find_element("id", "step").click()
    wait(browser, "window.playground.frame.step === 1")
    browser.find_element("id", "show_test").click()
    browser.find_element("id", "show_arrows").click()
    browser.find_element("id", "play").click()
    wait(browser, "window.playground.frame.test_loss < 0.05", timeout=90)
    browser.find_element("id", "play").click()
    wait(browser, "!window.playground.frame.playing")
    browser.find_element("id", "plane_top").click()
    wait(browser, "window.playground.frame.sample !== null")
    browser.find_element("id", "delta_sample").click()
    browser.find_element("id", "neuron_2_1").click()
    wait(browser, "document.getElementById('chain').textContent.length > 0")
    browser.find_element("id", "param_check").click()
    wait(browser, "document.getElementById('gradcheck').textContent.includes('agree')")
    assert "✓ they agree" in browser.find_element("id", "gradcheck").text
    browser.find_element("id", "walk_start").click()
    wait(browser, "window.playground.walk !== null")
    for _ in range(6):
        browser.find_element("id", "walk_next").click()
    path = tmp_path / "playground.png"
    browser.save_screenshot(str(path))
    target = os.environ.get("BACKPROP_PLAYGROUND_SCREENSHOT")
    if target:  # to refresh docs/images/playground.png
        shutil.copyfile(path, target)
    assert json.loads(json.dumps(js(browser, "window.playground.frame.layers.length"))) == 4
