"""Small study configurations for tests: real params files, real demo data, tiny settings."""

from __future__ import annotations

import copy
import os
import shutil
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def base_params() -> dict:
    with open(REPO / "params.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def micro_params(study: str = "micro", **train) -> dict:
    """A study small enough for a test: 8 demo images, 64 px crops, a handful of steps, no D_f."""
    p = copy.deepcopy(base_params())
    p["study"] = study
    p["data"]["demo"].update(train=8, val=2, openimages_val=2, width=288, height=288)
    p["lambdas"] = [0.001, 0.01]
    p["variants"] = ["full", "baseline"]
    p["train"].update(batch_size=2, crop=64, max_steps=6, checkpoint_every=2, log_every=1, workers=0,
                      feature_weight=0.0, init="scratch", finetune_steps=None,
                      pretrained=None)  # a warm-up from scratch: the test's folder has no pretrained/
    p["train"].update(train)
    p["report"]["resamples"] = 200  # the intervals of 2-image sets say little; their cost is what is kept small
    return p


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_unprivileged(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a child that file permissions bind, even when the tests run as root (CI does).

    As root the child keeps uid 0 but loses CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER
    (util-linux ``setpriv``), so a mode-0 file is unreadable and a 0500 folder unwritable to it.
    """
    cmd = [sys.executable, "-c", code, *map(str, args)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise RuntimeError("tests run as root need util-linux's setpriv to drop file-permission overrides")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over a study's store, queried through its REST API."""

    def __init__(self, store: str, cwd: Path, env: dict | None = None, args: tuple[str, ...] = ()):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", store,
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                self.get("/health", api=False)
                return
            except OSError:
                assert self.proc.poll() is None, "mlflow server exited"
                time.sleep(0.5)
        raise AssertionError("mlflow server did not start within 120 s")

    def get(self, route: str, api: bool = True, **query):
        import urllib.parse
        import urllib.request

        url = f"http://127.0.0.1:{self.port}{'/api/2.0/mlflow' if api else ''}{route}"
        with urllib.request.urlopen(url + ("?" + urllib.parse.urlencode(query) if query else ""), timeout=30) as r:
            body = r.read().decode()
        return json.loads(body) if api else body

    def post(self, path: str, payload: dict) -> dict:
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/2.0/mlflow{path}",
                                     data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read().decode())

    def runs(self, exp_id: str, flt: str) -> list[dict]:
        return self.post("/runs/search", {"experiment_ids": [exp_id], "filter": flt, "max_results": 1000}).get("runs", [])

    def close(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
