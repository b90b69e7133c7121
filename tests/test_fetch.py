"""`hea-rag fetch`: OpenAlex, Crossref and arXiv through real HTTP servers on 127.0.0.1.

The recorded bodies of shared/data/real_world/api are served as they are (tests/api_replay.py);
paging, retries and timeouts use small servers written here. Nothing is mocked: the real client
(requests + requests-cache + urllib3 retries) talks HTTP to them, through the real CLI.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from api_replay import LocalServer, recorded_title_search, replay_server
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.ingest.doi import arxiv_doi, arxiv_id_from_doi, normalize_arxiv_id
from hea_rag.sources import arxiv, crossref, openalex
from hea_rag.sources.fetch import ids_in_text

CU_DOI = "10.1063/1.4938384"  # in both OpenAlex and Crossref, the abstracts agree
ADDR_DOI = "10.1016/j.addr.2015.01.008"  # an abstract in OpenAlex only
PNAS_DOI = "10.1073/pnas.1414271111"
JSON_KEYS = ["doi", "title", "abstract", "year", "authors", "journal", "source", "url",
             "retrieved_at"]


@pytest.fixture(autouse=True)
def fetch_env(tmp_path, monkeypatch):
    """A fresh HTTP cache per test, millisecond backoff, no arXiv pause, no mailto."""
    monkeypatch.setenv("HEA_RAG_HTTP_CACHE", str(tmp_path / "http-cache"))
    monkeypatch.setenv("HEA_RAG_HTTP_BACKOFF", "0.001")
    monkeypatch.setenv("HEA_RAG_ARXIV_INTERVAL", "0")
    monkeypatch.setenv("HEA_RAG_HTTP_TIMEOUT", "10")
    monkeypatch.delenv("HEA_RAG_MAILTO", raising=False)


@pytest.fixture(scope="session")
def api_dir(shared_dir) -> Path:
    return shared_dir / "data" / "real_world" / "api"


@pytest.fixture(scope="session")
def cu_title(api_dir) -> str:
    """The Cu thin-film paper's title, as the recorded title search asked for it."""
    return recorded_title_search(api_dir, "copper-native-oxide")


@pytest.fixture
def replay(api_dir, monkeypatch):
    server = replay_server(api_dir)
    for name, url in server.urls().items():
        monkeypatch.setenv(name, url)
    yield server
    server.stop()


def serve(monkeypatch, respond) -> LocalServer:
    server = LocalServer(respond)
    for name, url in server.urls().items():
        monkeypatch.setenv(name, url)
    return server


def fetch(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["fetch", *args], input=input)


def records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("hea-rag: error: ")]


def json_answer(obj, status=200, headers=None):
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode()


def body(api_dir: Path, name: str) -> str:
    return (api_dir / name).read_text(encoding="utf-8")


# --- identifiers ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("2104.12255v1", "2104.12255v1"),
    ("arXiv:1605.08386", "1605.08386"),
    ("https://arxiv.org/abs/1605.08386v2", "1605.08386v2"),
    ("arxiv.org/pdf/1707.08567v1.pdf", "1707.08567v1"),
    ("10.48550/arXiv.2312.07559", "2312.07559"),
    ("hep-th/9901001", "hep-th/9901001"),
    ("math.CO/0601001V2", "math/0601001v2"),
    ("abc", None), ("INVALIDID", None), ("1234", None), ("", None),
])
def test_arxiv_ids_normalized(raw, expected):
    assert normalize_arxiv_id(raw) == expected


def test_arxiv_dois_convert_both_ways():
    assert arxiv_doi("2104.12255v1") == "10.48550/arxiv.2104.12255"
    assert arxiv_id_from_doi("https://doi.org/10.48550/arXiv.2304.05376") == "2304.05376"
    assert arxiv_id_from_doi(CU_DOI) is None


def test_ids_found_in_a_bibtex_file_and_a_list():
    text = (
        "@article{a, title={Only a DOI}, doi = {10.1063/1.4938384},\n"
        "  url = {https://doi.org/10.1063/1.4938384}}\n"
        "https://doi.org/10.1016/0022-3115(94)90165-1.\n"
        "arXiv:2104.12255v1\n1605.08386\nhep-th/9901001\n"
        "10.1073/pnas.1414271111,2014,A CSV row\n"
    )
    dois, arxiv_ids = ids_in_text(text)
    assert dois == [CU_DOI, "10.1016/0022-3115(94)90165-1", PNAS_DOI]
    assert arxiv_ids == ["2104.12255v1", "1605.08386", "hep-th/9901001"]


# --- every recorded body parsed -----------------------------------------------------------------


def test_openalex_abstract_rebuilt_equals_crossref_jats_stripped(api_dir):
    """The shared README's cross-check: the same 2,051 characters from both APIs."""
    oa = json.loads(body(api_dir, "openalex/works_filter-title.search_copper-native-oxide-thin-film.json"))
    cr = json.loads(body(api_dir, "crossref/work_10.1063-1.4938384.json"))["message"]
    rebuilt = openalex.rebuild_abstract(oa["results"][0]["abstract_inverted_index"])
    stripped = crossref.strip_markup(cr["abstract"])
    assert rebuilt == stripped
    assert len(rebuilt) == 2051
    # as records, the double-escaped `&amp;lt;` becomes `<` in both
    a, b = openalex.parse_work(oa["results"][0]), crossref.parse_work(cr)
    assert a.abstract == b.abstract and "temperatures (<75 K) and low strain values (<5%)" in a.abstract
    assert a.doi == b.doi == CU_DOI and a.year == b.year == 2015


def test_addr_abstract_only_in_openalex(api_dir):
    oa = openalex.parse_work(json.loads(body(api_dir, "openalex/work_doi_10.1016-j.addr.2015.01.008.json")))
    cr = crossref.parse_work(json.loads(body(api_dir, "crossref/work_10.1016-j.addr.2015.01.008.json"))["message"])
    assert oa.doi == cr.doi == ADDR_DOI
    assert oa.abstract and len(oa.abstract) > 1000
    assert cr.abstract is None
    assert oa.title == cr.title == ("Pharmacokinetics, biodistribution and cell uptake of "
                                    "antisense oligonucleotides")
    assert oa.journal == cr.journal == "Advanced Drug Delivery Reviews"


def test_crossref_jats_sections_keep_their_titles_as_words(api_dir):
    pnas = crossref.parse_work(json.loads(body(api_dir, "crossref/work_10.1073-pnas.1414271111.json"))["message"])
    assert pnas.abstract.startswith("Significance The inadequate mechanical properties")
    assert "<" not in pnas.abstract and "jats" not in pnas.abstract
    nature = crossref.parse_work(json.loads(body(api_dir, "crossref/work_10.1038-s42256-024-00832-8.json"))["message"])
    assert nature.abstract.startswith("Abstract Large language models (LLMs)")
    assert crossref.strip_markup("Al<jats:sub>0.3</jats:sub>CoCrFeNi<jats:p>x</jats:p>") == "Al0.3CoCrFeNi x"


def test_crossref_work_without_abstract_and_null_dates(api_dir):
    perspective = crossref.parse_work(json.loads(body(api_dir, "crossref/work_10.1021-acs.jctc.2c01235.json"))["message"])
    assert (perspective.abstract, perspective.year) == (None, 2023)
    assert perspective.authors[0] == "Geemi P. Wellawatte"
    widget = json.loads(body(api_dir, "crossref/works_query_widget_cursor-star.json"))["message"]
    first = crossref.parse_work(widget["items"][0])
    assert first.year is None and first.title == "Widget Mania: Using a GUI Widget Framework"
    last = crossref.parse_work(widget["items"][-1])
    assert last.abstract.startswith("In addition to this Swing-based screenshot of JChemPaint")


@pytest.mark.parametrize("name, expected", [
    ("arxiv/api2026_id_list_1605.08386.xml",
     {"key": "1605.08386v1", "doi": "10.48550/arxiv.1605.08386", "year": 2016,
      "title": "Heat-bath random walks with Markov bases", "journal": "arXiv"}),
    ("arxiv/api2026_id_list_2104.12255v1.xml",
     {"key": "2104.12255v1", "title": "0", "year": 2021}),
    ("arxiv/api-old_id_list_1710.08557.xml",
     {"key": "1710.08557v1", "doi": "10.1186/s12984-017-0305-3", "year": 2017,
      "title": "On Neuromechanical Approaches for the Study of Biological Grasp and Manipulation",
      "journal": "Journal of NeuroEngineering and Rehabilitation, 2017"}),
    ("arxiv/api-old_id_list_1312.2021.xml",
     {"key": "1312.2021v1", "title": "Living with the Wrong Sign", "year": 2013,
      "journal": "Phys. Rev. D 89, 084044 (2014)"}),
])
def test_arxiv_feeds_in_both_formats(api_dir, name, expected):
    total, entries = arxiv.parse_feed(body(api_dir, name), name)
    assert total == len(entries) == 1
    work = arxiv.parse_entry(entries[0])
    assert {key: getattr(work, key) for key in expected} == expected
    assert work.abstract and "\n" not in work.abstract and not work.abstract.startswith(" ")
    assert work.authors and work.url == f"https://arxiv.org/abs/{work.key}"


def test_arxiv_error_entries_and_empty_feed(api_dir):
    for name, words in (("arxiv/api2026_id_list_abc_error400.xml", "incorrect id format for abc"),
                        ("arxiv/api-old_id_list_INVALIDID_error400.xml", "incorrect id format for INVALIDID")):
        with pytest.raises(arxiv.ArxivRefused, match=words):
            arxiv.parse_feed(body(api_dir, name), name)
    assert arxiv.parse_feed(body(api_dir, "arxiv/api2026_id_list_0000.0000_empty.xml"), "x") == (0, [])


def test_lookups_of_every_recorded_work_through_the_cli(replay):
    result = fetch("--doi", PNAS_DOI, "https://doi.org/10.1016/J.ADDR.2015.01.008",
                   "10.1021/acs.jctc.5b00178")
    assert result.exit_code == 0, result.output
    found = records(result.stdout)
    assert [r["doi"] for r in found] == [PNAS_DOI, ADDR_DOI, "10.1021/acs.jctc.5b00178"]
    assert all(list(r) == JSON_KEYS for r in found)
    assert found[0]["abstract"].startswith("Significance") and found[0]["source"] == "openalex"
    assert found[2]["title"] is None and found[2]["abstract"] is None  # the select= projection
    crossref_hits = records(fetch("--source", "crossref", "--doi", CU_DOI, PNAS_DOI, ADDR_DOI,
                                  "10.1021/acs.jctc.2c01235", "10.1038/s42256-024-00832-8").stdout)
    assert [bool(r["abstract"]) for r in crossref_hits] == [True, True, False, False, True]
    arxiv_hits = [records(fetch("--arxiv", i).stdout)[0] for i in ("1605.08386", "arXiv:2104.12255v1")]
    assert [(r["title"], r["year"]) for r in arxiv_hits] == [
        ("Heat-bath random walks with Markov bases", 2016), ("0", 2021)]


def test_searches_of_every_recorded_list_through_the_cli(replay, cu_title):
    cu = fetch("--title", cu_title)
    assert cu.exit_code == 0, cu.output
    assert [r["doi"] for r in records(cu.stdout)] == [CU_DOI]
    chem = records(fetch("--title", "Augmenting large language models with chemistry tools").stdout)
    assert [r["doi"] for r in chem] == ["10.1038/s42256-024-00832-8", "10.48550/arxiv.2304.05376"]
    paperqa = records(fetch("--title", "PaperQA: Retrieval-Augmented Generative Agent for "
                                       "Scientific Research").stdout)
    assert [r["doi"] for r in paperqa] == ["10.48550/arxiv.2312.07559"]
    cr = records(fetch("--source", "crossref", "--title", cu_title).stdout)
    assert [r["doi"] for r in cr] == [CU_DOI] and len(cr[0]["abstract"]) == 2037
    widgets = records(fetch("--source", "crossref", "widget", "--limit", "20").stdout)
    assert len(widgets) == 20 and sum(bool(r["abstract"]) for r in widgets) == 1
    testing = fetch("--source", "arxiv", "testing", "--limit", "10")
    assert len(records(testing.stdout)) == 10
    assert "fetched 10 works" in testing.stderr


# --- failures: one line each, exit 1, the rest goes on ------------------------------------------


def test_not_found_ids_reported_one_line_each_and_the_rest_goes_on(replay):
    result = fetch("--doi", PNAS_DOI, "10.1046/j.1365-2699.2003.00795")  # 404 with an HTML body
    assert result.exit_code == 1
    assert [r["doi"] for r in records(result.stdout)] == [PNAS_DOI]
    assert error_lines(result.stderr) == [
        "hea-rag: error: openalex: 10.1046/j.1365-2699.2003.00795: not found (HTTP 404)"]
    plain = fetch("--source", "crossref", "--doi", "10.48550/arXiv.2312.07559")  # text/plain 404
    assert plain.exit_code == 1 and plain.stdout == ""
    assert plain.stderr.splitlines() == [
        "hea-rag: error: crossref: 10.48550/arxiv.2312.07559: not found (HTTP 404)"]
    half = fetch("--arxiv", "0808.05394", "1707.08567")
    assert [r["url"] for r in records(half.stdout)] == ["https://arxiv.org/abs/1707.08567v1"]
    assert error_lines(half.stderr) == ["hea-rag: error: arxiv: 0808.05394: not found"]
    assert fetch("--arxiv", "0000.0000").stderr.splitlines() == [
        "hea-rag: error: arxiv: 0000.0000: not found"]
    assert "Traceback" not in result.output + plain.output + half.output


def test_arxiv_error_entry_reported_per_id(api_dir, monkeypatch):
    feed = body(api_dir, "arxiv/api2026_id_list_abc_error400.xml").encode()
    server = serve(monkeypatch, lambda path, query: (400, {"Content-Type": "application/atom+xml"}, feed))
    try:
        result = fetch("--arxiv", "1605.08386")
    finally:
        server.stop()
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "hea-rag: error: arxiv: 1605.08386: refused: incorrect id format for abc"]


def test_bad_ids_and_zero_hits(replay):
    bad = fetch("--arxiv", "abc")
    assert (bad.exit_code, bad.stderr.splitlines()) == (1, ["hea-rag: error: input: abc: not an arXiv id"])
    assert replay.seen == []  # never asked
    none = fetch("--source", "crossref", "--title", "askldjrq3rjaw938h")
    assert none.exit_code == 1
    assert none.stderr.splitlines() == ["hea-rag: error: crossref: no works match 'askldjrq3rjaw938h'"]
    not_arxiv = fetch("--source", "arxiv", "--doi", CU_DOI)
    assert not_arxiv.exit_code == 1 and "not an arXiv DOI" in not_arxiv.stderr


def test_malformed_response_names_source_and_id(monkeypatch):
    server = serve(monkeypatch, lambda path, query: (200, {"Content-Type": "application/json"}, b"{oops"))
    try:
        result = fetch("--doi", CU_DOI)
        feed = fetch("--arxiv", "1605.08386")
    finally:
        server.stop()
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hea-rag: error: openalex: {CU_DOI}: malformed response")
    assert feed.exit_code == 1 and "arxiv: 1605.08386: malformed response" in feed.stderr
    assert "Traceback" not in result.output + feed.output


def test_no_server_at_all(monkeypatch):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HEA_RAG_OPENALEX_URL", f"http://127.0.0.1:{port}")
    result = fetch("--doi", CU_DOI)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"hea-rag: error: cannot reach 127.0.0.1:{port} (connection refused); cached results: 0"]


def test_a_server_that_never_answers_times_out(monkeypatch):
    def slow(path, query):
        time.sleep(1.5)
        return json_answer({})

    monkeypatch.setenv("HEA_RAG_HTTP_TIMEOUT", "0.2")
    server = serve(monkeypatch, slow)
    try:
        result = fetch("--doi", CU_DOI)
    finally:
        server.stop()
    assert result.exit_code == 1
    assert "(no answer within 0.2s); cached results: 0" in result.stderr
    assert len(server.seen) == 2  # one retry after a read timeout, then it gives up


# --- politeness: retries, headers -------------------------------------------------------------


def test_retry_after_429_is_honoured(api_dir, monkeypatch):
    work = body(api_dir, "openalex/work_doi_10.1073-pnas.1414271111.json").encode()
    answers = [(429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down"),
               (200, {"Content-Type": "application/json"}, work)]
    times = []

    def respond(path, query):
        times.append(time.monotonic())
        return answers.pop(0)

    server = serve(monkeypatch, respond)
    try:
        result = fetch("--doi", PNAS_DOI)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert [r["doi"] for r in records(result.stdout)] == [PNAS_DOI]
    assert len(times) == 2
    assert times[1] - times[0] >= 0.9  # waited the second the server asked for


def test_retries_are_bounded(monkeypatch):
    monkeypatch.setenv("HEA_RAG_HTTP_RETRIES", "3")
    server = serve(monkeypatch, lambda path, query: (503, {"Content-Type": "text/html"}, b"<p>busy</p>"))
    try:
        result = fetch("--source", "crossref", "--doi", CU_DOI)
    finally:
        server.stop()
    assert len(server.seen) == 4  # the request and 3 retries
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"hea-rag: error: crossref: {CU_DOI}: HTTP 503 Service Unavailable after 3 retries"]


def test_polite_headers_and_mailto(replay, monkeypatch):
    monkeypatch.setenv("HEA_RAG_MAILTO", "someone@example.org")
    assert fetch("--doi", PNAS_DOI).exit_code == 0
    assert fetch("--source", "crossref", "--doi", CU_DOI).exit_code == 0
    assert fetch("--arxiv", "1605.08386").exit_code == 0
    openalex_seen, crossref_seen, arxiv_seen = replay.seen
    for seen in replay.seen:
        assert seen.headers["User-Agent"].startswith("hea-rag/")
        assert "mailto:someone@example.org" in seen.headers["User-Agent"]
    assert openalex_seen.query["mailto"] == crossref_seen.query["mailto"] == "someone@example.org"
    assert "mailto" not in arxiv_seen.query


# --- paging ------------------------------------------------------------------------------------


def _numbered_openalex(n: int) -> dict:
    return {"id": f"https://openalex.org/W{n}", "doi": f"https://doi.org/10.9999/page.{n}",
            "title": f"Work {n}", "publication_year": 2024,
            "abstract_inverted_index": {"Abstract": [0], "of": [1], f"work{n}": [2]}}


def test_openalex_and_crossref_follow_cursors(monkeypatch):
    pages = {"*": ("c1", [1, 2]), "c1": ("c2", [3, 4]), "c2": ("c3", [5]), "c3": (None, [])}

    def respond(path, query):
        cursor, numbers = pages[query["cursor"]]
        if path.startswith("/openalex"):
            return json_answer({"meta": {"next_cursor": cursor}, "results": [_numbered_openalex(n) for n in numbers]})
        items = [{"DOI": f"10.9999/page.{n}", "title": [f"Work {n}"]} for n in numbers]
        return json_answer({"message": {"next-cursor": cursor, "items": items}})

    server = serve(monkeypatch, respond)
    try:
        everything = fetch("high entropy", "alloy", "--since", "2024-01-01", "--until", "2024-12-31")
        capped = fetch("high entropy alloy", "--source", "crossref", "--limit", "3")
    finally:
        server.stop()
    assert [r["title"] for r in records(everything.stdout)] == [f"Work {n}" for n in range(1, 6)]
    assert records(everything.stdout)[4]["abstract"] == "Abstract of work5"
    assert [r["doi"] for r in records(capped.stdout)] == ["10.9999/page.1", "10.9999/page.2", "10.9999/page.3"]
    openalex_asks = [s.query for s in server.seen if s.path == "/openalex/works"]
    assert [q["cursor"] for q in openalex_asks] == ["*", "c1", "c2", "c3"]
    assert openalex_asks[0]["search"] == "high entropy alloy"
    assert openalex_asks[0]["filter"] == "from_publication_date:2024-01-01,to_publication_date:2024-12-31"
    crossref_asks = [s.query for s in server.seen if s.path == "/crossref/works"]
    assert [q["cursor"] for q in crossref_asks] == ["*", "c1"]  # stopped at the limit
    assert crossref_asks[0]["query"] == "high entropy alloy" and crossref_asks[0]["rows"] == "3"


def test_arxiv_pages_by_start_offset(api_dir, monkeypatch):
    feed = body(api_dir, "arxiv/api2026_search_query_testing_start0_max10.xml")
    entries = re.findall(r"<entry>.*?</entry>", feed, re.S)
    head = re.sub(r"<opensearch:totalResults>\d+", "<opensearch:totalResults>10",
                  feed[: feed.index("<entry>")])

    def respond(path, query):  # the 10 recorded entries, 4 per page whatever is asked
        start = int(query["start"])
        page = head + "".join(entries[start : start + 4]) + "</feed>"
        return 200, {"Content-Type": "application/atom+xml"}, page.encode()

    server = serve(monkeypatch, respond)
    try:
        result = fetch("--source", "arxiv", "testing", "--since", "2020-01-01", "--limit", "9")
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    keys = [arxiv.parse_entry(e).key for e in arxiv.parse_feed(feed, "testing")[1]]
    assert [r["url"].rsplit("/", 1)[1] for r in records(result.stdout)] == keys[:9]
    assert [s.query["start"] for s in server.seen] == ["0", "4", "8"]
    assert server.seen[0].query["search_query"] == (
        "(testing) AND submittedDate:[202001010000 TO 999912312359]")


# --- cache ------------------------------------------------------------------------------------


def test_rerun_served_from_cache_with_the_server_stopped_and_refresh(api_dir, monkeypatch):
    server = replay_server(api_dir)
    for name, url in server.urls().items():
        monkeypatch.setenv(name, url)
    first = fetch("--doi", PNAS_DOI, ADDR_DOI)
    assert first.exit_code == 0 and "0 from the cache" in first.stderr
    server.stop()
    again = fetch("--doi", PNAS_DOI, ADDR_DOI)
    assert again.exit_code == 0, again.output
    assert "2 from the cache" in again.stderr
    assert records(again.stdout) == records(first.stdout)  # retrieved_at included: when it was got
    refreshed = fetch("--doi", PNAS_DOI, "--refresh")
    assert refreshed.exit_code == 1
    assert refreshed.stderr.splitlines()[-1].startswith("hea-rag: error: cannot reach 127.0.0.1:")
    partly = fetch("--doi", PNAS_DOI, CU_DOI)  # one cached, one never fetched
    assert partly.exit_code == 1 and [r["doi"] for r in records(partly.stdout)] == [PNAS_DOI]
    assert partly.stderr.splitlines()[-1].endswith("(connection refused); cached results: 1")


def test_refresh_asks_again(replay):
    assert fetch("--doi", PNAS_DOI).exit_code == 0
    assert fetch("--doi", PNAS_DOI).exit_code == 0
    assert len(replay.seen) == 1
    assert fetch("--doi", PNAS_DOI, "--refresh").exit_code == 0
    assert len(replay.seen) == 2


# --- output files, the index, --complete, a subprocess --------------------------------------------


def test_output_file_and_usage_errors(replay, tmp_path):
    out = tmp_path / "works.jsonl"
    result = fetch("--doi", PNAS_DOI, "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert [r["doi"] for r in records(out.read_text(encoding="utf-8"))] == [PNAS_DOI]
    assert fetch().exit_code == 2
    assert fetch("--doi", "--arxiv", "x").exit_code == 2
    assert fetch("--doi", CU_DOI, "--since", "2024-01-01").exit_code == 2
    assert fetch("--ids", str(tmp_path / "missing.txt")).exit_code == 1


@pytest.mark.slow
def test_fetch_into_the_index_then_search_finds_it(replay, tmp_path, embedder, cu_title):
    folder = tmp_path / "index"
    ids = tmp_path / "refs.bib"  # one with an abstract, two without (Crossref has none)
    ids.write_text(f"@article{{a, doi={{{CU_DOI}}}}}\n@article{{b, doi={{{ADDR_DOI}}}}}\n"
                   "@article{c, doi={10.1021/acs.jctc.2c01235}}\n", encoding="utf-8")
    result = fetch("--source", "crossref", "--ids", str(ids), "--index", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"{folder}: added 1 papers" in result.stderr and "2 skipped" in result.stderr
    assert f"skipped crossref {ADDR_DOI}: no abstract in crossref" in result.stderr
    assert "skipped crossref 10.1021/acs.jctc.2c01235: no abstract in crossref" in result.stderr
    again = fetch("--title", cu_title, "--index", str(folder))  # the same paper from OpenAlex
    assert "added 0 papers" in again.stderr and "1 duplicates" in again.stderr
    hits = CliRunner().invoke(cli, ["search", "oxide layers on copper thin films", "--json",
                                    "--index", str(folder)])
    assert hits.exit_code == 0, hits.output
    assert json.loads(hits.stdout.splitlines()[0])["doi"] == CU_DOI


@pytest.mark.slow
def test_complete_fills_in_titles_without_reembedding(replay, tmp_path, embedder):
    papers = tmp_path / "papers.jsonl"
    papers.write_text(
        json.dumps({"doi": PNAS_DOI, "abstract": "Hypoxia and lysyl oxidase raised collagen "
                    "cross-linking and the tensile properties of engineered cartilage."}) + "\n"
        + json.dumps({"doi": "10.9999/nowhere", "abstract": "A paper no API knows about."}) + "\n",
        encoding="utf-8")
    folder = tmp_path / "index"
    assert CliRunner().invoke(cli, ["index", str(papers), "--index", str(folder)]).exit_code == 0
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        before = reader.vectors_of([1]).tolist()
    result = fetch("--complete", "--index", str(folder))
    assert result.exit_code == 1  # 10.9999/nowhere is not found (the replay server has no record)
    assert f"{folder}: filled in 1 of 2 papers with a DOI but no title" in result.stderr
    with IndexReader(folder) as reader:
        assert reader.problems() == []
        row = reader.papers([1])[1]
        assert row.title.startswith("Developing functional musculoskeletal tissues")
        assert row.year == 2014 and row.source == "Proceedings of the National Academy of Sciences"
        assert row.abstract.startswith("Hypoxia and lysyl oxidase")  # the indexed text stays
        assert reader.vectors_of([1]).tolist() == before
        assert reader.lexical_search(["musculoskeletal"], 5) != []  # the title is searchable


def test_cli_as_a_subprocess(replay, tmp_path):
    import os

    env = {**os.environ, **replay.urls()}
    done = subprocess.run([sys.executable, "-m", "hea_rag", "fetch", "--arxiv", "2104.12255v1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [(r["title"], r["doi"]) for r in records(done.stdout)] == [("0", "10.48550/arxiv.2104.12255")]
    missing = subprocess.run([sys.executable, "-m", "hea_rag", "fetch", "--doi", "10.1046/j.1365-2699.2003.00795"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.splitlines() == [
        "hea-rag: error: openalex: 10.1046/j.1365-2699.2003.00795: not found (HTTP 404)"]
