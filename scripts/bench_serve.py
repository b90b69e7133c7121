"""Load benchmark of `hea-rag serve`: 1, 4 and 16 clients asking and searching at once.

    .venv/bin/python scripts/bench_serve.py                    # indexes the shared CSV first
    .venv/bin/python scripts/bench_serve.py --index DIR        # reuse an index of it
    .venv/bin/python scripts/bench_serve.py --seconds 15       # shorter levels (the spec: 60)

Starts a real `hea-rag serve` on a free loopback port (nothing else is contacted), then for each
level runs that many clients for `--seconds`: each client alternates a question (POST /api/ask)
and a search (POST /api/search), drawn from the shared HEA QA questions, waiting as told by
Retry-After after a 503. Stops the server with Ctrl-C at the end, whatever happens.

Prints markdown tables: p50/p95 latency per endpoint, errors (anything but 200 and 503) and
503s per level; searches timed while a question was being answered are also shown apart; the
server's resident memory per level. Targets (issue 14): no errors but 503 under 16 clients,
search p95 under 100 ms while generation is busy, no memory growth over the run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

READY = re.compile(r"serving .* at (http://\S+/)")
WARM_UP_REQUESTS = 3  # of each kind, before anything is measured
IDLE_WAIT = 2.0  # seconds after a level's last request before its idle memory is read


@dataclass
class Sample:
    endpoint: str
    seconds: float
    status: int
    while_generating: bool = False


@dataclass
class Level:
    clients: int
    samples: list[Sample] = field(default_factory=list)
    memory_mb: list[float] = field(default_factory=list)
    idle_mb: float = 0.0  # once its clients are done: what the level left behind


class AsksInFlight:
    """How many questions the clients are waiting on: while one is, the model is busy."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def add(self, step: int) -> None:
        with self._lock:
            self.count += step


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = args.index or build_index(Path(scratch) / "index")
        questions = load_questions(args.questions)
        server, url = start_server(index_dir, args.model)
        try:
            levels = run_levels(url, server.pid, questions, args)
        finally:
            stop_server(server)
    print_report(levels, args)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="index of the shared CSV (built if omitted)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated levels")
    parser.add_argument("--seconds", type=float, default=60.0, help="per level")
    parser.add_argument("--questions", type=int, default=200, help="distinct questions drawn")
    return parser.parse_args()


def build_index(folder: Path) -> Path:
    from hea_rag.indexer import index_paths

    csv = shared_dir(ROOT) / "data" / "hea_qa" / "Scopus_Abstracts_Dataset.csv"
    print(f"indexing {csv} ...", file=sys.stderr)
    index_paths([str(csv)], folder)
    return folder


def load_questions(count: int) -> list[str]:
    from hea_rag.qa_data import load_pairs

    pairs, _ = load_pairs(shared_dir(ROOT) / "data" / "hea_qa" / "HEA_QA_DATASET.json")
    questions = sorted({pair.question for pair in pairs})
    return random.Random(0).sample(questions, min(count, len(questions)))


def start_server(index_dir: Path, model: str):
    command = [sys.executable, "-m", "hea_rag", "serve", "--index", str(index_dir), "--model",
               model, "--host", "127.0.0.1", "--port", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in server.stderr:
        print(line, end="", file=sys.stderr)
        if found := READY.search(line):
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, found.group(1)
    raise SystemExit(f"hea-rag serve exited with {server.wait()}")


def stop_server(server) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


def run_levels(url: str, pid: int, questions: list[str], args) -> list[Level]:
    import requests

    with requests.Session() as session:  # warm up: first calls load lazily, not measured
        for question in questions[:WARM_UP_REQUESTS]:
            session.post(url + "api/ask", json={"question": question}, timeout=300)
            session.post(url + "api/search", json={"query": question}, timeout=300)
    levels = []
    for clients in (int(n) for n in args.clients.split(",")):
        print(f"{clients} clients for {args.seconds:g} s ...", file=sys.stderr)
        levels.append(run_level(url, pid, questions, clients, args.seconds))
    return levels


def run_level(url: str, pid: int, questions: list[str], clients: int, seconds: float) -> Level:
    level = Level(clients)
    deadline = time.monotonic() + seconds
    in_flight = AsksInFlight()
    threads = [threading.Thread(target=client, args=(url, questions, n, deadline, level, in_flight))
               for n in range(clients)]
    sampler = threading.Thread(target=sample_memory, args=(pid, deadline, level.memory_mb))
    for thread in [sampler, *threads]:
        thread.start()
    for thread in [sampler, *threads]:
        thread.join()
    time.sleep(IDLE_WAIT)
    level.idle_mb = resident_mb(pid)
    return level


def client(url: str, questions: list[str], number: int, deadline: float, level: Level,
           in_flight: AsksInFlight) -> None:
    """Alternate a question and a search until the deadline; after a 503, wait Retry-After."""
    import requests

    draw = random.Random(number)
    asking = number % 2 == 0  # half the clients start with a question, half with a search
    with requests.Session() as session:
        while time.monotonic() < deadline:
            question = draw.choice(questions)
            sample, retry_after = (ask if asking else search)(session, url, question, in_flight)
            level.samples.append(sample)
            if sample.status == 503:
                time.sleep(max(0.0, min(retry_after, deadline - time.monotonic())))
            asking = not asking


def ask(session, url: str, question: str, in_flight: AsksInFlight):
    in_flight.add(1)
    try:
        return timed(session, url + "api/ask", {"question": question}, "ask")
    finally:
        in_flight.add(-1)


def search(session, url: str, question: str, in_flight: AsksInFlight):
    busy_before = in_flight.count > 0
    sample, retry_after = timed(session, url + "api/search", {"query": question}, "search")
    sample.while_generating = busy_before and in_flight.count > 0
    return sample, retry_after


def timed(session, address: str, body: dict, endpoint: str) -> tuple[Sample, float]:
    started = time.perf_counter()
    try:
        response = session.post(address, json=body, timeout=300)
        status = response.status_code
        retry_after = float(response.headers.get("Retry-After", 1))
    except Exception:  # noqa: BLE001 - a dropped connection counts as an error
        status, retry_after = 0, 1.0
    return Sample(endpoint, time.perf_counter() - started, status), retry_after


def resident_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def sample_memory(pid: int, deadline: float, into: list[float]) -> None:
    while True:
        into.append(resident_mb(pid))
        if time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def print_report(levels: list[Level], args) -> None:
    print(f"\n`hea-rag serve --model {args.model}`, {args.seconds:g} s per level, "
          f"{os.cpu_count()} CPU cores, loopback\n")
    print("| clients | endpoint | requests | p50 ms | p95 ms | errors | 503s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for level in levels:
        for label, chosen in groups(level.samples):
            ok = [s.seconds * 1000 for s in chosen if s.status == 200]
            errors = sum(s.status not in (200, 503) for s in chosen)
            refused = sum(s.status == 503 for s in chosen)
            p50, p95 = (f"{percentile(ok, q):.0f}" if ok else "-" for q in (0.5, 0.95))
            print(f"| {level.clients} | {label} | {len(chosen)} | {p50} | {p95} | {errors} | "
                  f"{refused} |")
    print("\n| clients | server RSS at start MB | max MB | idle after MB |")
    print("| ---: | ---: | ---: | ---: |")
    for level in levels:
        memory = level.memory_mb
        print(f"| {level.clients} | {memory[0]:.0f} | {max(memory):.0f} | {level.idle_mb:.0f} |")
    print_verdict(levels)


def groups(samples: list[Sample]):
    yield "ask", [s for s in samples if s.endpoint == "ask"]
    yield "search", [s for s in samples if s.endpoint == "search"]
    yield "search while generating", [s for s in samples if s.while_generating]


def print_verdict(levels: list[Level]) -> None:
    last = levels[-1]
    errors = sum(s.status not in (200, 503) for s in last.samples)
    busy = [s.seconds * 1000 for lv in levels for s in lv.samples
            if s.while_generating and s.status == 200]
    busy_p95 = percentile(busy, 0.95) if busy else float("nan")
    growth = levels[-1].idle_mb - levels[0].idle_mb
    print(f"\nerrors other than 503 at {last.clients} clients: {errors} (target 0); "
          f"search p95 while generating: {busy_p95:.0f} ms (target < 100); "
          f"server memory, idle after the first level to idle after the last: "
          f"{growth:+.0f} MB (target: no growth)")


if __name__ == "__main__":
    main()
