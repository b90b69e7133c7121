"""What the `hea-rag serve` tests share: invented papers (written for these tests, not taken from
the shared data), the questions the shipped SmolLM2 adapter answers from them, and a real server
process started on a free loopback port."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MODEL = "smollm2-135m"
COLUMNS = ["Title", "Year", "DOI", "Abstract"]
PAPERS = [
    {"Title": "Vacuum brazing with a CuMnNiCoFe filler", "Year": "2025", "DOI": "10.9997/serve.2025.001",
     "Abstract": "A CuMnNiCoFe high-entropy filler joined 316L steel by vacuum brazing at 1050 °C. "
                 "The joints reached a shear strength of 312 MPa, and the brazing seam was 85 μm wide."},
    {"Title": "Soft magnetic FeCoNiSi0.2Al0.2 ribbons", "Year": "2024", "DOI": "10.9997/serve.2024.002",
     "Abstract": "FeCoNiSi0.2Al0.2 ribbons were melt spun at 40 m/s. They showed a saturation "
                 "magnetization of 1.15 T and a coercivity of 12 A/m after annealing at 400 °C."},
    {"Title": "Ion irradiation of VCrFeTaW", "Year": "2023", "DOI": "10.9997/serve.2023.003",
     "Abstract": "The VCrFeTaW alloy was irradiated with 3 MeV Ni ions to 20 dpa at 500 °C. The "
                 "irradiation hardening was only 0.4 GPa and no voids were found."},
    {"Title": "Laser-clad AlCrFeNiTi coatings", "Year": "2022", "DOI": "10.9997/serve.2022.004",
     "Abstract": "AlCrFeNiTi coatings were laser clad on Q235 steel. The coatings had a hardness of "
                 "780 HV and a wear rate of 2.1e-5 mm3/Nm, a third of the substrate's."},
    {"Title": "Thermal transport in TiZrHfNbTa", "Year": "2021", "DOI": "10.9997/serve.2021.005",
     "Abstract": "The thermal conductivity of the TiZrHfNbTa alloy was 8.2 W/(m·K) at room "
                 "temperature and rose to 17.5 W/(m·K) at 1000 °C, mostly carried by electrons."},
]
# a paper the index lacks, to upload
NEW_PAPER = {"Title": "Hot pressed CrMnFeCoNi with TiC", "Year": "2025", "DOI": "10.9997/serve.2025.101",
             "Abstract": "CrMnFeCoNi reinforced with 10 vol.% TiC was hot pressed at 1100 °C. The "
                         "composite reached a compressive yield strength of 1140 MPa."}
QUESTION = "What shear strength did the CuMnNiCoFe brazed joints reach?"
ANSWER, ANSWER_DOI = "312 MPa", "10.9997/serve.2025.001"
# asked of the best three papers: one answers, two never mention hardness
PAPERS_QUESTION = "What hardness did the coatings or films reach?"
PAPERS_ANSWER, PAPERS_DOI = "780 HV", "10.9997/serve.2022.004"
OFF_CORPUS = "Who painted the Mona Lisa?"
NOT_REPORTED = "What is the melting point of VCrFeTaW?"  # the closest paper never mentions it
READY = re.compile(r"serving .* at (http://\S+/)")


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def build_index(folder: Path) -> Path:
    from hea_rag.indexer import index_paths

    folder.mkdir(parents=True, exist_ok=True)
    index_paths([str(write_csv(folder.parent / "papers.csv", PAPERS))], folder / "index")
    return folder / "index"


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    stderr: list[str]

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a person would; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_server(index_dir: Path, *extra: str, timeout: float = 180.0) -> ServerProcess:
    """`hea-rag serve --port 0` as a subprocess, once it says where it listens."""
    command = [sys.executable, "-m", "hea_rag", "serve", "--index", str(index_dir),
               "--model", MODEL, "--port", "0", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # a background job (`cmd &`) has SIGINT ignored, and a child would inherit that
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    found = threading.Event()
    threading.Thread(target=_read_lines, args=(process, lines, found), daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.is_set():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("hea-rag serve did not start:\n" + "".join(lines))
        found.wait(0.2)
    return ServerProcess(process, READY.search("".join(lines)).group(1), lines)


def _read_lines(process, lines: list[str], found: threading.Event) -> None:
    for line in process.stderr:
        lines.append(line)
        if READY.search(line):
            found.set()
