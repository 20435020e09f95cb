"""The chat page of edgeq serve, in a real browser: headless Chromium (Debian's `chromium`)
loads http://127.0.0.1:PORT/?test=1, whose script sends "Say hello." through
/v1/chat/completions (synchronously in test mode, so the reply is on the page when the DOM is
dumped) and renders the streamed events; the dumped DOM must show the model's name, the
message, a non-empty reply equal to the API's own greedy reply, and the speed."""
import html
import re
import shutil
import subprocess

import pytest

from serve_helpers import Server, find_gemma, skip


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    skip("headless Chromium is not installed (apt-get install chromium; scripts/setup.sh does)")


@pytest.fixture(scope="module")
def server(edgeq_bin, tmp_path_factory):
    model = find_gemma()
    s = Server(edgeq_bin, model, "-t", 2, "--parallel", 2, "-c", 512, "-n", 12, "--temp", 0,
               log_path=tmp_path_factory.mktemp("page") / "serve.log")
    yield s
    assert s.stop() == 0, s.log()


def text_of(dom, element_id):
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</', dom, re.S)
    assert m, f"no #{element_id} in the page:\n{dom[:2000]}"
    return html.unescape(m.group(1))


def test_page_is_served(server):
    status, page = server.request("GET", "/")
    assert status == 200
    assert "<title>edgeq chat</title>" in page and "/v1/chat/completions" in page


def test_chat_page_in_headless_chromium(server, tmp_path):
    chromium = find_chromium()
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"{server.base}/?test=1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert text_of(dom, "status") == "done", dom
    _, models = server.request("GET", "/v1/models")
    assert text_of(dom, "model") == models["data"][0]["id"]
    messages = re.findall(r'<div class="msg (\w+)">(.*?)</div>', dom, re.S)
    assert [role for role, _ in messages] == ["user", "assistant"], messages
    assert html.unescape(messages[0][1]) == "Say hello."
    reply = html.unescape(messages[1][1])
    # The server's default sampling is greedy here (--temp 0): the page shows the API's reply.
    status, direct = server.request("POST", "/v1/chat/completions",
                                    {"messages": [{"role": "user", "content": "Say hello."}]})
    assert status == 200
    assert reply == direct["choices"][0]["message"]["content"] and reply.strip()
    assert re.fullmatch(r"\d+ tokens, [\d.]+ tokens/s", text_of(dom, "speed"))
