"""Benchmark `hea-rag fetch` against a local replay of the recorded API bodies.

Serves ../shared/data/real_world/api on 127.0.0.1 (tests/api_replay.py), then prints two
markdown tables:
1. parsing speed per API: every recorded body with works parsed REPEAT times (records/s), and
   one pass through the real client over HTTP, cold (server) and warm (cache, server stopped);
2. for each DOI recorded in both OpenAlex and Crossref: whether the rebuilt abstracts agree
   (as rebuilt from the inverted index / tag-stripped, whitespace runs made one space; and as
   the final records, entities decoded). "—": one of the two has no abstract.

    .venv/bin/python scripts/bench_fetch.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from api_replay import recorded_title_search, replay_server  # noqa: E402

from hea_rag.config import shared_dir  # noqa: E402
from hea_rag.sources import arxiv, crossref, openalex  # noqa: E402

API = shared_dir(ROOT) / "data" / "real_world" / "api"


def works_in(path: Path):
    """(api, parse function, objects) for one recorded body holding works, else None."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".xml":
        try:
            return "arxiv", arxiv.parse_entry, arxiv.parse_feed(text, path.name)[1]
        except arxiv.ArxivRefused:
            return None
    if path.suffix != ".json":
        return None
    data = json.loads(text)
    if path.parent.name == "openalex":
        return "openalex", openalex.parse_work, data.get("results", [data])
    message = data["message"]
    return "crossref", crossref.parse_work, message.get("items", [message])


def parse_speed(repeat: int) -> dict[str, tuple[int, float]]:
    """api -> (records per pass, records/s over `repeat` passes)."""
    groups: dict[str, list] = {}
    for path in sorted(API.glob("*/*")):
        found = works_in(path)
        if found:
            groups.setdefault(found[0], []).append(found[1:])
    speed = {}
    for api, bodies in groups.items():
        count = sum(len(objs) for _, objs in bodies)
        started = time.perf_counter()
        for _ in range(repeat):
            for parse, objs in bodies:
                for obj in objs:
                    parse(obj)
        speed[api] = (count, count * repeat / (time.perf_counter() - started))
    return speed


LOOKUPS = [  # every recorded single-work answer and list, as `hea-rag fetch` asks for them
    ["--doi", "10.1073/pnas.1414271111", "10.1016/j.addr.2015.01.008", "10.1021/acs.jctc.5b00178"],
    ["--title", recorded_title_search(API, "copper-native-oxide")],
    ["--title", "Augmenting large language models with chemistry tools"],
    ["--source", "crossref", "--doi", "10.1063/1.4938384", "10.1073/pnas.1414271111",
     "10.1016/j.addr.2015.01.008", "10.1021/acs.jctc.2c01235", "10.1038/s42256-024-00832-8"],
    ["--source", "crossref", "widget", "--limit", "20"],
    ["--arxiv", "1605.08386"], ["--arxiv", "2104.12255v1"], ["--arxiv", "1710.08557"],
    ["--arxiv", "1312.2021"],
    ["--source", "arxiv", "testing", "--limit", "10"],
]


def cli_pass() -> tuple[int, float, float]:
    """(records, seconds cold over HTTP, seconds warm from the cache with the server stopped)."""
    from click.testing import CliRunner

    from hea_rag.cli import cli

    server = replay_server(API)
    os.environ.update(server.urls())
    times, counts = [], []
    for phase in ("cold", "warm"):
        started, count = time.perf_counter(), 0
        for args in LOOKUPS:
            result = CliRunner().invoke(cli, ["fetch", *args])
            assert result.exit_code == 0, (args, result.output)
            count += sum(line.startswith("{") for line in result.stdout.splitlines())
        times.append(time.perf_counter() - started)
        counts.append(count)
        server.stop() if phase == "cold" else None
    assert counts[0] == counts[1]
    return counts[0], times[0], times[1]


def abstract_pairs() -> list[tuple[str, str | None, str | None, str | None, str | None]]:
    """(doi, openalex raw, crossref raw, openalex record, crossref record) per DOI in both."""
    oa, cr = {}, {}
    for path in sorted(API.glob("*/*.json")):
        found = works_in(path)
        if not found:
            continue
        api, _, objs = found
        for obj in objs:
            if api == "openalex":
                work = openalex.parse_work(obj)
                oa[work.doi] = (openalex.rebuild_abstract(obj.get("abstract_inverted_index")), work.abstract)
            else:
                work = crossref.parse_work(obj)
                cr[work.doi] = (crossref.strip_markup(obj.get("abstract")), work.abstract)
    return [(doi, *oa[doi][:1], *cr[doi][:1], oa[doi][1], cr[doi][1]) for doi in sorted(oa.keys() & cr.keys())]


def agreement(a: str | None, b: str | None) -> str:
    if a is None or b is None:
        return "—"
    return "yes" if a == b else f"no ({difflib.SequenceMatcher(None, a, b).ratio():.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ.update(HEA_RAG_HTTP_CACHE=cache, HEA_RAG_ARXIV_INTERVAL="0", HEA_RAG_HTTP_BACKOFF="0.001")
        count, cold, warm = cli_pass()
    print("| API | records in the recorded bodies | parsed records/s |")
    print("| --- | ---: | ---: |")
    for api, (records, per_second) in sorted(parse_speed(args.repeat).items()):
        print(f"| {api} | {records} | {per_second:,.0f} |")
    print(f"\n`hea-rag fetch` over HTTP, {len(LOOKUPS)} commands, {count} records: "
          f"{cold:.2f} s from the replay server ({count / cold:,.0f} records/s), "
          f"{warm:.2f} s from the cache with the server stopped ({count / warm:,.0f} records/s)\n")
    print("| DOI | OpenAlex rebuilt, chars | Crossref tag-stripped, chars | identical | records identical |")
    print("| --- | ---: | ---: | --- | --- |")
    for doi, oa_raw, cr_raw, oa_record, cr_record in abstract_pairs():
        print(f"| {doi} | {len(oa_raw or '')} | {len(cr_raw or '')} | {agreement(oa_raw, cr_raw)} | "
              f"{agreement(oa_record, cr_record)} |")


if __name__ == "__main__":
    main()
