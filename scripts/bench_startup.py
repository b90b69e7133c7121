"""Cold-start benchmark: where the seconds of a one-off `hea-rag search` / `hea-rag ask` go.

    .venv/bin/python scripts/bench_startup.py                 # indexes the shared CSV first
    .venv/bin/python scripts/bench_startup.py --index DIR     # reuse an index of it

Every measurement is a fresh process (the page cache is warm, as it is for a user's second
command). Prints two tables: whole commands from process start to exit (best and median of
`--repeat` runs), and the phases of the same work timed inside one fresh process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

PYTHON = sys.executable
HEA_RAG = str(Path(PYTHON).parent / "hea-rag")
QUERY = "compressive yield strength of MoNbVTa0.5Cr at 1500 °C"
QUESTION = "What is the compressive yield strength of MoNbVTa0.5Cr at 1500 °C?"

# Runs in a fresh interpreter and prints one JSON object of cumulative phase times (seconds).
PHASES = r"""
import json, sys, time
started = time.perf_counter()
marks = {}
def mark(name): marks[name] = round(time.perf_counter() - started, 3)
import torch; mark("import torch")
from hea_rag.retrieve import open_retriever; mark("import hea_rag.retrieve")
folder, query, model = sys.argv[1], sys.argv[2], sys.argv[3]
if model:
    from hea_rag.answer import AskSettings, open_answerer
    with open_answerer(folder, model, None, False, None, AskSettings(), True) as answerer:
        mark("load index, embedder and model")
        answerer.retriever.search(query, k=3); mark("first search")
        answerer.ask(query); mark("first answer (search again + generate)")
else:
    with open_retriever(folder) as retriever:
        mark("load index and embedder")
        retriever.search(query, k=5); mark("first search")
print(json.dumps(marks))
"""


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds


def command_rows(index: Path, repeat: int) -> list[tuple[str, float, float]]:
    commands = {
        "python -c pass": [PYTHON, "-c", "pass"],
        "hea-rag --help": [HEA_RAG, "--help"],
        "python -c 'import torch'": [PYTHON, "-c", "import torch"],
        "python -c 'import sentence_transformers'": [PYTHON, "-c", "import sentence_transformers"],
        "hea-rag search (cold)": [HEA_RAG, "search", QUERY, "--index", str(index)],
        "hea-rag ask --model smollm2-135m (cold)": [
            HEA_RAG, "ask", QUESTION, "--index", str(index), "--model", "smollm2-135m", "--no-adapter"],
    }
    timed(commands["hea-rag ask --model smollm2-135m (cold)"])  # converts the preset once
    rows = []
    for name, command in commands.items():
        runs = [timed(command) for _ in range(repeat)]
        rows.append((name, min(runs), statistics.median(runs)))
    return rows


def phase_rows(index: Path, model: str) -> dict[str, float]:
    done = subprocess.run([PYTHON, "-c", PHASES, str(index), QUESTION, model],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_index(folder: Path) -> None:
    csv = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    subprocess.run([HEA_RAG, "index", str(csv), "--index", str(folder)], check=True,
                   capture_output=True)


def print_phases(title: str, marks: dict[str, float]) -> None:
    print(f"\n{title}\n\n| phase | ends at (s) | takes (s) |\n|---|---|---|")
    previous = 0.0
    for name, at in marks.items():
        print(f"| {name} | {at:.2f} | {at - previous:.2f} |")
        previous = at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            build_index(index)
        rows = command_rows(index, args.repeat)
        print(f"| command (fresh process, start to exit) | best (s) | median of {args.repeat} (s) |")
        print("|---|---|---|")
        for name, best, median in rows:
            print(f"| {name} | {best:.2f} | {median:.2f} |")
        print_phases("`search`, phases inside one fresh process:", phase_rows(index, ""))
        print_phases("`ask --model smollm2-135m`, phases inside one fresh process:",
                     phase_rows(index, "smollm2-135m"))


if __name__ == "__main__":
    main()
