"""JupyterLab on 127.0.0.1 for the notebooks a student opens, as the tests and tools open it.

Used by the browser tests (`tests/browser/test_jupyterlab.py`, through ``browsing``)
and by `jupyterlab_screenshots.py`: no token, settings and runtime files of its own,
every cell rendered at once, and the app exposed to the page as ``window.jupyterapp``
(so that a test can run cells and read the notebook's model).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


@contextlib.contextmanager
def jupyterlab(notebooks: Path, work: Path):
    """JupyterLab serving ``notebooks`` on 127.0.0.1 (no token; settings and runtime
    files under ``work``, with every cell rendered at once, where JupyterLab by default
    renders only those in view); yields the base URL. Its log is ``work/lab.log``."""
    settings = work / "config" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    with open(work / "lab.log", "w") as log:
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
             "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={notebooks}",
             "--LabApp.expose_app_in_browser=True"],  # window.jupyterapp: run cells, read the model
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if lab.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"JupyterLab did not start: {(work / 'lab.log').read_text()[-2000:]}")
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            lab.terminate()
            lab.wait(30)
