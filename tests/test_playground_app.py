"""The playground's server through Starlette's TestClient: the token and the origin are
required, a WebSocket session trains xor, bad messages are answered and the session goes on,
exports load, the page's files ship in the package, and the command's flags are checked."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the playground extra is not installed (pip install '.[playground]')")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2 (pip install '.[browser]')")

from starlette.testclient import TestClient, WebSocketDenialResponse  # noqa: E402

import backprop as bp  # noqa: E402
from backprop.playground.app import STATIC, create_app  # noqa: E402

TOKEN = "t0ken-for-tests"
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def client():
    return TestClient(create_app(TOKEN, max_sessions=2))


def receive_json(ws, kind):
    """Messages until one of type ``kind`` (a frame's bytes are read with it)."""
    for _ in range(200):
        message = ws.receive()
        if message.get("text") is None:
            continue
        data = json.loads(message["text"])
        if data["type"] == kind:
            if kind == "frame":
                data["_bytes"] = ws.receive_bytes()
            return data
    raise AssertionError(f"no {kind} message")


def test_page_and_files_need_the_token(client) -> None:
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.get("/static/main.js").status_code == 403
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "backprop playground" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # the page's own files load with the cookie the page set, and come from the package
    assert client.get("/static/main.js").status_code == 200
    assert client.get("/").status_code == 403    # the page itself: only with the token in its URL
    assert TestClient(create_app(TOKEN)).get("/static/main.js").status_code == 403   # no cookie


def test_websocket_needs_the_token_and_the_pages_origin(client) -> None:
    for url, headers in [("/ws", ORIGIN), ("/ws?token=wrong", ORIGIN), (f"/ws?token={TOKEN}", {}),
                         (f"/ws?token={TOKEN}", {"origin": "http://evil.example"})]:
        with pytest.raises(WebSocketDenialResponse) as err, client.websocket_connect(url, headers=headers):
            pass
        assert err.value.status_code == 403


def test_no_file_comes_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, path


def test_a_session_trains_xor_and_answers_bad_messages(client) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}", headers=ORIGIN) as ws:
        hello = receive_json(ws, "hello")
        assert hello["limits"]["max_neurons"] == 16
        frame = receive_json(ws, "frame")
        widths, r = frame["grid"]["widths"], frame["grid"]["resolution"]
        assert len(frame["_bytes"]) == sum(widths) * r * r + 100 * 100
        ws.send_text(json.dumps({"type": "config", "config": {"dataset": "xor", "learning_rate": -1}}))
        error = receive_json(ws, "error")
        assert error["field"] == "config.learning_rate" and "got -1" in error["message"]
        ws.send_text("not json")
        assert receive_json(ws, "error")["field"] == "message"
        ws.send_text(json.dumps({"type": "config", "config": {"dataset": "xor", "learning_rate": 0.3,
                                                               "hidden": [6, 4]}}))
        data = receive_json(ws, "data")
        assert data["config"]["dataset"] == "xor" and data["widths"] == [2, 6, 4, 1]
        receive_json(ws, "frame")
        ws.send_text(json.dumps({"type": "step", "steps": 1500}))
        frame = receive_json(ws, "frame")
        assert frame["step"] == 1500 and frame["test_loss"] < 0.1
        # play, then pause: frames arrive while playing, with the steps going up
        ws.send_text(json.dumps({"type": "play"}))
        playing = receive_json(ws, "frame")
        assert playing["playing"] and playing["step"] > 1500
        ws.send_text(json.dumps({"type": "pause"}))
        for _ in range(100):
            if not receive_json(ws, "frame")["playing"]:
                break
        # the backward-pass messages
        ws.send_text(json.dumps({"type": "neuron", "layer": 2, "index": 1}))
        chain = receive_json(ws, "chain")
        assert chain["layer"] == 2 and len(chain["terms"]) == 1
        ws.send_text(json.dumps({"type": "gradcheck", "layer": 1, "param": "W", "row": 0, "col": 1}))
        check = receive_json(ws, "gradcheck")
        assert abs(check["backprop"] - check["reference"]) <= 1e-10 * max(1.0, abs(check["reference"]))
        ws.send_text(json.dumps({"type": "step_sample"}))
        walk = receive_json(ws, "walk")
        assert walk["stages"][-1]["stage"] == "update"
        ws.send_text(json.dumps({"type": "neuron", "layer": 9, "index": 0}))
        assert receive_json(ws, "error")["field"] == "layer"


def test_exports_are_a_model_bp_load_reads_and_the_data_as_csv(client, tmp_path: Path) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}", headers=ORIGIN) as ws:
        receive_json(ws, "frame")
        ws.send_text(json.dumps({"type": "export", "what": "model"}))
        file = receive_json(ws, "file")
        path = tmp_path / file["name"]
        path.write_bytes(base64.b64decode(file["base64"]))
        net = bp.load(path)
        assert [layer.d_out for layer in net.layers if isinstance(layer, bp.Dense)] == [4, 2, 1]
        ws.send_text(json.dumps({"type": "export", "what": "csv"}))
        csv = base64.b64decode(receive_json(ws, "file")["base64"]).decode()
        assert csv.startswith("x1,x2,label,set\n") and len(csv.splitlines()) == 501
        x = np.array([[float(v) for v in row.split(",")[:2]] for row in csv.splitlines()[1:3]])
        assert net.predict(x).shape == (2, 1)


def test_pages_are_independent_and_limited_and_freed(client) -> None:
    app = client.app.app   # inside the token guard
    with client.websocket_connect(f"/ws?token={TOKEN}", headers=ORIGIN) as one, \
            client.websocket_connect(f"/ws?token={TOKEN}", headers=ORIGIN) as two:
        receive_json(one, "frame")
        receive_json(two, "frame")
        assert len(app.state.sessions) == 2
        one.send_text(json.dumps({"type": "step", "steps": 50}))
        assert receive_json(one, "frame")["step"] == 50
        two.send_text(json.dumps({"type": "step", "steps": 3}))
        assert receive_json(two, "frame")["step"] == 3
        with client.websocket_connect(f"/ws?token={TOKEN}", headers=ORIGIN) as three:
            refused = receive_json(three, "error")
            assert refused["field"] == "session" and "at most 2 pages" in refused["message"]
        one.send_text(json.dumps({"type": "play"}))   # closed while it trains and sends frames
        assert receive_json(one, "frame")["playing"]
    for _ in range(100):
        if not app.state.sessions:
            break
        import time
        time.sleep(0.01)
    assert not app.state.sessions


def test_package_data_lists_the_static_files() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"backprop.playground" = ["static/*"]' in pyproject
    assert {p.name for p in STATIC.iterdir()} >= {"index.html", "main.js", "style.css"}


def test_cli_refuses_bad_flags_and_a_busy_port(capsys) -> None:
    import socket

    from backprop.cli import main

    assert main(["playground", "--port", "70000", "--no-browser"]) == 2
    assert "--port must be an integer from 0 to 65535; got 70000" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["playground", "--port", str(port), "--no-browser"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_command_serves_warns_on_an_open_host_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """``backprop playground --host 0.0.0.0 --port 0 --no-browser``: a warning, the URL with its
    token, 403 without it, and Ctrl-C (SIGINT) ends it at once (exit code 130, the command line's
"interrupted", without a traceback), leaving no file."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "backprop", "playground", "--host", "0.0.0.0", "--port", "0",
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("backprop playground: http://127.0.0.1:") and "/?token=" in line, line
        url = line.split()[-1]
        base = url.split("/?")[0]
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and b"backprop playground" in page.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/", timeout=10)
        assert refused.value.code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "Traceback" not in err, err   # the command line's "interrupted"
    assert "warning: listening on 0.0.0.0" in err
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_run_stops_with_an_error_and_the_page_goes_on(client) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}", headers=ORIGIN) as ws:
        receive_json(ws, "frame")
        ws.send_text(json.dumps({"type": "config", "config": {"dataset": "plane", "learning_rate": 10,
                                                               "activations": ["relu", "relu"]}}))
        receive_json(ws, "frame")
        ws.send_text(json.dumps({"type": "step", "steps": 2000}))
        error = receive_json(ws, "error")
        assert error["field"] == "training" and "training diverged: the loss became inf at step" in error["message"]
        frame = receive_json(ws, "frame")   # infinities arrive as null, which JSON can carry
        assert frame["train_loss"] is None and 0 < frame["step"] < 2000
        ws.send_text(json.dumps({"type": "play"}))
        assert receive_json(ws, "error")["field"] == "training"
        assert not receive_json(ws, "frame")["playing"]
        ws.send_text(json.dumps({"type": "config", "config": {"learning_rate": 0.01}}))
        receive_json(ws, "data")
        ws.send_text(json.dumps({"type": "reset"}))
        receive_json(ws, "data")
        assert receive_json(ws, "frame")["step"] == 0
        ws.send_text(json.dumps({"type": "step", "steps": 100}))
        frame = receive_json(ws, "frame")
        assert frame["step"] == 100 and frame["train_loss"] < 1
