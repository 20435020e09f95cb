"""edgeq serve: the OpenAI-compatible server, driven as its users drive it.

The official `openai` client against the real binary on a free loopback port (Gemma 3 270M
Q4_K_M): chat and text completions, streamed and not, and embeddings; greedy completions equal
`edgeq run --temp 0` on the same prompt (an independent path through the engine), streamed
text equals the whole, concurrent streams equal sequential requests. Then the server's
defences: a bad-input suite where every case is a 4xx OpenAI error JSON and the server still
serves; the API key; a full queue; request timeouts; a client that disconnects mid-stream frees its slot; SIGTERM
exits 0 within 5 s; a load test (16 clients; EDGEQ_SERVE_LOAD_S seconds, 15 by default) with
no 5xx, latencies printed.
"""
import base64
import http.client
import json
import math
import os
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time

import pytest

from serve_helpers import Server, find_gemma

openai = pytest.importorskip("openai")

THREADS = 2
PROMPTS = ["The capital of France is", "Once upon a time", "The quick brown fox", "In 1492, Columbus"]


@pytest.fixture(scope="module")
def model():
    return find_gemma()


@pytest.fixture(scope="module")
def server(edgeq_bin, model, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    s = Server(edgeq_bin, model, "-t", THREADS, "--parallel", 4, "--queue", 32, "-c", 512,
               log_path=log)
    yield s
    assert s.stop() == 0, s.log()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model_id(client):
    models = client.models.list().data
    assert len(models) == 1
    return models[0].id


def run_greedy(edgeq, model, prompt, n):
    """The continuation `edgeq run --temp 0` prints (it echoes the prompt, ends with a newline)."""
    out = edgeq.run("run", model, "-p", prompt, "-n", n, "--temp", 0, "-t", THREADS).stdout
    assert out.startswith(prompt) and out.endswith("\n"), out
    return out[len(prompt):-1]


def test_models_and_health(server, model_id, model):
    assert model_id == model.name.removesuffix(".gguf")
    status, body = server.request("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})


def test_completion_equals_edgeq_run(client, model_id, edgeq, model):
    for prompt in STABLE_PROMPTS[:2]:
        r = client.completions.create(model=model_id, prompt=prompt, max_tokens=8, temperature=0)
        assert r.object == "text_completion"
        assert r.choices[0].text == run_greedy(edgeq, model, prompt, 8)
        assert r.usage.completion_tokens <= 8
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        assert r.choices[0].finish_reason in ("stop", "length")
        if r.usage.completion_tokens == 8:
            assert r.choices[0].finish_reason == "length"


def test_streamed_completion_equals_whole(client, model_id):
    whole = client.completions.create(model=model_id, prompt=PROMPTS[2], max_tokens=16, temperature=0)
    chunks = list(client.completions.create(model=model_id, prompt=PROMPTS[2], max_tokens=16,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason and all(f is None for f in finishes[:-1])
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_chat_equals_completion_of_the_rendered_turns(client, model_id):
    # Gemma's turn format, written out by hand: the chat path (template, special tokens) must
    # give what the completion path gives for the text it should have rendered.
    question = "What is the capital of France?"
    rendered = f"<start_of_turn>user\n{question}<end_of_turn>\n<start_of_turn>model\n"
    chat = client.chat.completions.create(model=model_id, max_tokens=10, temperature=0,
                                          messages=[{"role": "user", "content": question}])
    completion = client.completions.create(model=model_id, prompt=rendered, max_tokens=10, temperature=0)
    assert chat.object == "chat.completion"
    assert chat.choices[0].message.role == "assistant"
    assert chat.choices[0].message.content == completion.choices[0].text
    assert chat.usage.prompt_tokens == completion.usage.prompt_tokens

    stream = client.chat.completions.create(model=model_id, max_tokens=10, temperature=0, stream=True,
                                            messages=[{"role": "user", "content": question}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == chat.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == chat.choices[0].finish_reason


def test_stop_strings_and_seed(client, model_id):
    whole = client.completions.create(model=model_id, prompt=PROMPTS[1], max_tokens=16, temperature=0)
    text = whole.choices[0].text
    words = text.split()
    assert len(words) >= 3, text
    stop = words[2]
    cut = client.completions.create(model=model_id, prompt=PROMPTS[1], max_tokens=16, temperature=0,
                                    stop=[stop, "\u2603never"])
    assert cut.choices[0].text == text[:text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    # A seeded sampled completion repeats itself.
    a, b = (client.completions.create(model=model_id, prompt=PROMPTS[0], max_tokens=12, temperature=1.0,
                                      top_p=0.95, seed=1234, presence_penalty=0.5,
                                      extra_body={"top_k": 50, "min_p": 0.02})
            for _ in range(2))
    assert a.choices[0].text == b.choices[0].text


def test_embeddings(client, model_id, server):
    texts = ["The cat sat on the mat.", "A dog barked.", "The cat sat on the mat."]
    r = client.embeddings.create(model=model_id, input=texts)  # base64 on the wire
    vectors = [d.embedding for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2]
    n = len(vectors[0])
    assert n > 0 and all(len(v) == n for v in vectors)
    for v in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4)
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    # The float encoding carries the same numbers; one input alone gives the same vector.
    status, body = server.request("POST", "/v1/embeddings", {"input": texts[1], "encoding_format": "float"})
    assert status == 200
    single = body["data"][0]["embedding"]
    assert max(abs(a - b) for a, b in zip(single, vectors[1])) < 1e-6
    _, raw = server.request("POST", "/v1/embeddings", {"input": texts[1], "encoding_format": "base64"})
    decoded = struct.unpack(f"<{n}f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(decoded) == [pytest.approx(x, abs=1e-7) for x in single]
    assert r.usage.prompt_tokens > 0


def test_tokenize_detokenize(server, edgeq, model):
    text = "Hello world, it's 2025!"
    status, body = server.request("POST", "/tokenize", {"content": text})
    assert status == 200
    expected = [int(x) for x in edgeq.run("tokenize", model, "--text", text, "--ids-only").stdout.split()]
    # edgeq tokenize adds BOS; /tokenize does not unless add_special.
    _, with_bos = server.request("POST", "/tokenize", {"content": text, "add_special": True})
    assert with_bos["tokens"] == expected
    assert body["tokens"] == expected[1:]
    status, back = server.request("POST", "/detokenize", {"tokens": body["tokens"]})
    assert (status, back["content"]) == (200, text)


def stream_completion(server, prompt, n, results, key):
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    stream = client.completions.create(prompt=prompt, model="", max_tokens=n, temperature=0, stream=True)
    results[key] = "".join(c.choices[0].text for c in stream if c.choices)


# Prompts whose first 8 greedy steps all have a margin of at least 0.44 logits between the best
# token and the runner-up (measured with tools/edgeq-logits): a batched step rounds its products
# differently from a single sequence's, and at a near tie (Gemma's continuation of "Once upon a
# time" has one of 0.13) either token is a correct greedy choice.
STABLE_PROMPTS = ["1, 2, 3, 4, 5,", "Monday, Tuesday, Wednesday,", "Water boils at",
                  "The quick brown fox"]


def test_concurrent_streams_equal_sequential(server, client, model_id):
    n = 8
    sequential = [client.completions.create(model=model_id, prompt=p, max_tokens=n, temperature=0).choices[0].text
                  for p in STABLE_PROMPTS]
    for _ in range(2):
        results = {}
        threads = [threading.Thread(target=stream_completion, args=(server, p, n, results, i))
                   for i, p in enumerate(STABLE_PROMPTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert [results.get(i) for i in range(len(STABLE_PROMPTS))] == sequential


def raw_http(server, data, read_timeout=30):
    """Sends raw bytes, returns (status, parsed JSON body) of the reply."""
    with socket.create_connection((server.host, server.port), timeout=read_timeout) as s:
        s.sendall(data)
        reply = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
                head, _, body = reply.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
        except ConnectionResetError:
            pass
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


BAD_INPUTS = [
    # (name, path, body, expected status, expected param)
    ("malformed JSON", "/v1/chat/completions", b'{"messages": [', 400, None),
    ("not an object", "/v1/completions", b"[1, 2, 3]", 400, None),
    ("empty body", "/v1/completions", b"", 400, None),
    ("missing messages", "/v1/chat/completions", {"model": ""}, 400, "messages"),
    ("missing prompt", "/v1/completions", {"max_tokens": 3}, 400, "prompt"),
    ("messages not a list", "/v1/chat/completions", {"messages": "hi"}, 400, "messages"),
    ("message without role", "/v1/chat/completions", {"messages": [{"content": "hi"}]}, 400, "messages[0].role"),
    ("content of wrong type", "/v1/chat/completions", {"messages": [{"role": "user", "content": 7}]}, 400,
     "messages[0].content"),
    ("max_tokens a string", "/v1/completions", {"prompt": "a", "max_tokens": "5"}, 400, "max_tokens"),
    ("negative max_tokens", "/v1/completions", {"prompt": "a", "max_tokens": -3}, 400, "max_tokens"),
    ("huge max_tokens", "/v1/completions", {"prompt": "a", "max_tokens": 10 ** 7}, 400, "max_tokens"),
    ("max_tokens past the context", "/v1/completions", {"prompt": "a", "max_tokens": 600}, 400, "max_tokens"),
    ("prompt past the context", "/v1/completions", {"prompt": "word " * 700, "max_tokens": 1}, 400, "prompt"),
    ("temperature a string", "/v1/completions", {"prompt": "a", "temperature": "hot"}, 400, "temperature"),
    ("top_p out of range", "/v1/completions", {"prompt": "a", "top_p": 5}, 400, "top_p"),
    ("stop of wrong type", "/v1/completions", {"prompt": "a", "stop": {"x": 1}}, 400, "stop"),
    ("stream not a bool", "/v1/completions", {"prompt": "a", "stream": "yes"}, 400, "stream"),
    ("token id out of range", "/v1/completions", {"prompt": [1, 99999999], "max_tokens": 1}, 400, "prompt[1]"),
    ("unknown model", "/v1/completions", {"prompt": "a", "model": "gpt-17"}, 404, "model"),
    ("invalid UTF-8", "/v1/completions", b'{"prompt": "abc\xff\xfe"}', 400, None),
    ("embedding of nothing", "/v1/embeddings", {"input": []}, 400, "input"),
    ("detokenize junk", "/detokenize", {"tokens": ["a"]}, 400, "tokens[0]"),
    ("tokenize without content", "/tokenize", {}, 400, "content"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_4xx_json_error(server, case):
    _, path, body, expected, param = case
    status, reply = server.request("POST", path, body)
    assert status == expected, reply
    assert isinstance(reply, dict) and set(reply["error"]) >= {"message", "type", "param", "code"}, reply
    assert reply["error"]["message"]
    if param is not None:
        assert reply["error"]["param"] == param
    # The server still serves.
    status, ok = server.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 1})
    assert status == 200, ok


def test_bad_http_is_a_4xx(server):
    status, reply = server.request("GET", "/no/such/thing")
    assert status == 404 and reply["error"]["message"]
    status, _ = server.request("GET", "/v1/chat/completions")
    assert 400 <= status < 500
    # A body over the limit (1 MiB by default) is refused before it is read.
    big = b'{"prompt": "' + b"a" * (1 << 20) + b'"}'
    status, reply = raw_http(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big[:1000])
    assert status == 413 and reply["error"]["message"]
    status, _ = server.request("GET", "/health")
    assert status == 200


def test_a_full_queue_is_503_with_retry_after(edgeq_bin, model, tmp_path):
    s = Server(edgeq_bin, model, "-t", THREADS, "--parallel", 1, "--queue", 1, "-c", 256,
               log_path=tmp_path / "serve.log")
    try:
        conns = []
        for prompt in ("One", "Two"):  # one generating, one waiting
            c = http.client.HTTPConnection(s.host, s.port, timeout=60)
            c.request("POST", "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 200, "stream": True}),
                      {"Content-Type": "application/json"})
            assert c.getresponse().status == 200
            conns.append(c)
        deadline = time.monotonic() + 10
        while s.metric("edgeq_queue_depth") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, reply = s.request("POST", "/v1/completions", {"prompt": "Three", "max_tokens": 1})
        assert status == 503, reply
        assert s.last_headers.get("Retry-After") == "1"
        assert reply["error"]["code"] == "queue_full"
        for c in conns:
            c.close()
    finally:
        assert s.stop() == 0, s.log()


def test_request_timeout(edgeq_bin, model, tmp_path):
    # One slot, --timeout 1: of two long requests sent together, the one that gets the slot is
    # cut at its deadline ("length"), the one left waiting gets a 503 when its deadline passes.
    s = Server(edgeq_bin, model, "-t", THREADS, "--parallel", 1, "-c", 512, "--timeout", 1,
               log_path=tmp_path / "serve.log")
    try:
        replies = [None, None]

        def ask(i):
            replies[i] = s.request("POST", "/v1/completions", {"prompt": f"Story {i}:", "max_tokens": 500,
                                                               "ignore_eos": True})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert time.monotonic() - t0 < 10
        statuses = sorted(r[0] for r in replies)
        assert statuses == [200, 503], replies
        done = next(r[1] for r in replies if r[0] == 200)
        assert done["choices"][0]["finish_reason"] == "length"
        assert 0 < done["usage"]["completion_tokens"] < 500
        refused = next(r[1] for r in replies if r[0] == 503)
        assert refused["error"]["code"] == "timeout"
        status, _ = s.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 1})
        assert status == 200
    finally:
        assert s.stop() == 0, s.log()


def test_api_key_and_cors(edgeq_bin, model, tmp_path):
    s = Server(edgeq_bin, model, "-t", THREADS, "--parallel", 1, "-c", 256, "--api-key", "s3cret",
               "--cors", "http://app.example", log_path=tmp_path / "serve.log")
    try:
        body = {"prompt": "Hi", "max_tokens": 1}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                        {"Authorization": "Bearer s3cret2"}):
            status, reply = s.request("POST", "/v1/completions", body, headers)
            assert status == 401, (headers, reply)
            assert reply["error"]["type"] == "authentication_error"
        status, _ = s.request("GET", "/health")
        assert status == 200  # exempt
        status, _ = s.request("POST", "/v1/completions", body, {"Authorization": "Bearer s3cret"})
        assert status == 200
        good = openai.OpenAI(base_url=s.base + "/v1", api_key="s3cret", max_retries=0)
        assert good.completions.create(model="", prompt="Hi", max_tokens=2).usage.completion_tokens >= 1
        bad = openai.OpenAI(base_url=s.base + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.completions.create(model="", prompt="Hi", max_tokens=2)
        # CORS: the allowed origin gets the header (preflight included), another does not.
        status, _ = s.request("OPTIONS", "/v1/completions", None,
                              {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"})
        assert status == 204 and s.last_headers["Access-Control-Allow-Origin"] == "http://app.example"
        s.request("GET", "/health", None, {"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in s.last_headers
    finally:
        assert s.stop() == 0, s.log()


def test_no_cors_by_default(server):
    server.request("GET", "/health", None, {"Origin": "http://app.example"})
    assert "Access-Control-Allow-Origin" not in server.last_headers


def test_disconnect_mid_stream_frees_the_slot(server):
    assert server.metric("edgeq_active_slots") == 0
    before = server.metric("edgeq_generated_tokens_total")
    body = json.dumps({"prompt": "Tell me a long story.", "max_tokens": 400, "stream": True}).encode()
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"data: ") < 3:
        got += sock.recv(4096)
    assert server.metric("edgeq_active_slots") == 1
    sock.close()
    deadline = time.monotonic() + 5
    while server.metric("edgeq_active_slots") != 0:
        assert time.monotonic() < deadline, "the slot was not freed"
        time.sleep(0.05)
    generated = server.metric("edgeq_generated_tokens_total") - before
    assert 3 <= generated < 400


def test_sigterm_exits_cleanly_within_5s(edgeq_bin, model, tmp_path):
    s = Server(edgeq_bin, model, "-t", THREADS, "--parallel", 2, "-c", 512, log_path=tmp_path / "serve.log")
    streams = []
    for prompt in ("Tell me a story.", "Count to a thousand:"):
        c = http.client.HTTPConnection(s.host, s.port, timeout=30)
        c.request("POST", "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 400, "stream": True}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200
        r.fp.readline()  # generation is under way
        streams.append(c)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert rc == 0, s.log()
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f} s"
    with pytest.raises(OSError):
        socket.create_connection((s.host, s.port), timeout=2).close()
    for c in streams:
        c.close()
    s.stop()


def test_load_16_clients_no_5xx(server):
    duration = float(os.environ.get("EDGEQ_SERVE_LOAD_S", "15"))
    ok_label = 'edgeq_requests_total{endpoint="/v1/completions",status="200"}'
    ok_before = server.metric(ok_label, default=0.0)
    ttft_before = server.metric("edgeq_time_to_first_token_seconds_count")
    stop_at = time.monotonic() + duration
    latencies, statuses, errors = [], [], []
    lock = threading.Lock()

    def client(i):
        n = 0
        while time.monotonic() < stop_at:
            body = {"prompt": PROMPTS[(i + n) % len(PROMPTS)], "max_tokens": 4 + (i % 5),
                    "temperature": 0.7, "seed": i * 1000 + n, "stream": (i + n) % 2 == 0}
            t0 = time.monotonic()
            try:
                status, _ = server.request("POST", "/v1/completions", body, timeout=120)
            except Exception as e:  # noqa: BLE001 - a dropped connection is a failure to report
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                statuses.append(status)
                latencies.append(time.monotonic() - t0)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 180)
    assert not errors, errors[:5]
    assert statuses and all(s < 500 for s in statuses), sorted(set(statuses))
    assert all(s == 200 for s in statuses), sorted(set(statuses))
    q = statistics.quantiles(latencies, n=100)
    print(f"\nload: 16 clients, {duration:.0f} s, {len(statuses)} requests, "
          f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms")
    status, _ = server.request("GET", "/health")
    assert status == 200
    # /metrics counted every request and every first token. A request is counted once its
    # response has been written, which can be just after the client has read it: wait a little.
    deadline = time.monotonic() + 5
    while server.metric(ok_label) - ok_before < len(statuses) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metric(ok_label) - ok_before == len(statuses)
    assert server.metric("edgeq_time_to_first_token_seconds_count") - ttft_before == len(statuses)
    assert server.metric("edgeq_queue_depth") == 0 and server.metric("edgeq_active_slots") == 0


def test_startup_failures_are_clear_errors(edgeq_bin, model, tmp_path):
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 20)
    r = subprocess.run([str(edgeq_bin), "serve", str(bad), "--port", "0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and str(bad) in r.stderr, r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([str(edgeq_bin), "serve", str(model), "--port", str(port)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and f"127.0.0.1:{port}" in r.stderr, r.stderr
    # A SIGTERM before the model is ready (straight after the socket is bound) still exits 0.
    proc = subprocess.Popen([str(edgeq_bin), "serve", str(model), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert "listening on" in proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0

