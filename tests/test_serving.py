"""The app as a server: what it refuses to serve, and that it cleans up when a supervisor
stops it. Starts `python app.py` (no browser)."""
import glob
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, host: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture(scope="module")
def server(small_checkpoint, tmp_path_factory):
    port = free_port()
    tmp = tmp_path_factory.mktemp("tmp")  # the app's temporary folders land here
    log = open(tmp_path_factory.mktemp("log") / "app.log", "w")
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoint",
                             str(small_checkpoint)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if get(port, "/") == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the app did not start")
    yield proc, port, tmp
    if proc.poll() is None:
        proc.kill()


@pytest.mark.slow
def test_monitoring_is_off_and_foreign_hosts_are_refused(server):
    _, port, _ = server
    assert get(port, "/") == 200
    assert get(port, "/", host=f"localhost:{port}") == 200
    assert get(port, "/monitoring") in (403, 404)  # 200 with its dashboard before
    # DNS rebinding: a page on evil.example whose name now points here.
    assert get(port, "/", host="evil.example") == 400
    assert get(port, "/config", host=f"evil.example:{port}") == 400


@pytest.mark.slow
def test_sigterm_removes_the_apps_temporary_folders(server):
    proc, port, tmp = server
    assert glob.glob(str(tmp / "pare_demo_outputs_*"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not glob.glob(str(tmp / "pare_demo_outputs_*"))


def test_allowed_hosts_follow_the_address_the_app_listens_on():
    from app import allowed_hosts

    assert allowed_hosts("127.0.0.1", False, []) == ["127.0.0.1", "::1", "localhost"]
    assert allowed_hosts("192.0.2.5", False, ["pare.lab"]) == ["192.0.2.5", "pare.lab"]
    assert allowed_hosts("0.0.0.0", False, []) == ["*"]
    assert allowed_hosts("127.0.0.1", True, []) == ["*"]
