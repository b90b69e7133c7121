"""`hea-rag serve`'s JSON API through FastAPI's test client: the real MiniLM, the real SmolLM2 with
its shipped adapter, a real index of invented papers (tests/serve_fixture.py)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import fields

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import serve_fixture as fixture
from hea_rag.answer import Answer, AskSettings, shipped_adapter
from hea_rag.cli import cli
from hea_rag.server.app import create_app
from hea_rag.server.jobs import FairQueue, Job, QueueFull
from hea_rag.server.service import Service
from hea_rag.server.settings import ServeSettings

pytestmark = pytest.mark.slow
BASE = "http://127.0.0.1"  # the Host a loopback server without a token accepts


@pytest.fixture(scope="module")
def generator():
    from hea_rag.generator import load_generator

    return load_generator(fixture.MODEL, shipped_adapter(fixture.MODEL))


@pytest.fixture
def index_dir(tmp_path, embedder):
    return fixture.build_index(tmp_path / "served")


@contextmanager
def served(index_dir, generator, **settings):
    service = Service(index_dir, generator, AskSettings(), ServeSettings(**settings))
    try:
        with TestClient(create_app(service), base_url=BASE) as client:
            yield client, service
    finally:
        service.close()


@pytest.fixture
def client(index_dir, generator):
    with served(index_dir, generator) as (client, _):
        yield client


def events(response) -> list[tuple[str, dict]]:
    """The server-sent events of a streamed response, in order."""
    found = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def cli_json(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# --- the CLI's shapes -----------------------------------------------------------------------


def test_ask_answers_with_the_cli_json_shape_and_values(client, index_dir):
    response = client.post("/api/ask", json={"question": fixture.QUESTION})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {f.name for f in fields(Answer)}
    assert answer["answer"] == fixture.ANSWER and answer["answerable"] is True
    assert [s["doi"] for s in answer["sources"]] == [fixture.ANSWER_DOI]
    assert fixture.ANSWER in answer["evidence"]["text"]
    [expected] = cli_json("ask", fixture.QUESTION, "--json", "--model", fixture.MODEL,
                          "--index", str(index_dir))
    for record in (answer, expected):
        record.pop("timings")
    assert answer == expected


def test_ask_papers_streams_each_paper_as_ask_papers_json(client, index_dir):
    response = client.post("/api/ask", json={"question": fixture.PAPERS_QUESTION, "papers": 3,
                                             "stream": True})
    found = events(response)
    rows = [data for kind, data in found if kind == "row"]
    result = found[-1][1]
    assert found[-1][0] == "answer" and rows == result["answers"]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert [(row["answer"], row["source"]["doi"]) for row in rows if row["answerable"]] == [
        (fixture.PAPERS_ANSWER, fixture.PAPERS_DOI)]
    assert {row["reason"] for row in rows if not row["answerable"]} == {"no_match"}
    [expected] = cli_json("ask", fixture.PAPERS_QUESTION, "--papers", "3", "--json", "--model",
                          fixture.MODEL, "--index", str(index_dir))
    for record in (result, expected):
        record.pop("timings")
    assert result == expected
    too_many = client.post("/api/ask", json={"question": fixture.PAPERS_QUESTION, "papers": 21})
    assert too_many.status_code == 422


def test_search_returns_the_cli_records(client, index_dir):
    response = client.post("/api/search", json={"query": "CuMnNiCoFe brazing shear", "k": 3})
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["query"] == "CuMnNiCoFe brazing shear"
    assert found["hits"][0]["doi"] == fixture.ANSWER_DOI
    expected = cli_json("search", "CuMnNiCoFe brazing shear", "-k", "3", "--json",
                        "--index", str(index_dir))
    assert found["hits"] == expected


def test_info_is_the_cli_report_plus_the_server(client, index_dir):
    report = client.get("/api/info").json()
    result = CliRunner().invoke(cli, ["info", "--json", "--index", str(index_dir)])
    expected = json.loads(result.stdout)
    assert report["index"] == expected["index"]
    assert report["index"]["counts"]["papers"] == len(fixture.PAPERS)
    assert report["server"]["model"] == fixture.MODEL
    assert report["server"]["counts"] == expected["index"]["counts"]


def test_openapi_describes_every_endpoint(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/search", "/api/info", "/api/index"} <= set(paths)
    upload = paths["/api/index"]["post"]["requestBody"]["content"]
    assert "files" in upload["multipart/form-data"]["schema"]["properties"]


# --- streaming and refusals -----------------------------------------------------------------


def test_ask_streams_the_answer_as_it_is_generated(client):
    response = client.post("/api/ask", json={"question": fixture.QUESTION, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(response)
    kinds = [kind for kind, _ in found]
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "answer"
    tokens = [data["text"] for kind, data in found if kind == "token"]
    assert len(tokens) > 1  # several pieces, sent as they came
    answer = found[-1][1]
    assert "".join(tokens) == answer["model_output"] and answer["answer"] == fixture.ANSWER


@pytest.mark.parametrize("question, reason", [(fixture.OFF_CORPUS, "low_score"),
                                              (fixture.NOT_REPORTED, "no_match")])
def test_refusals_say_why(client, question, reason):
    from hea_rag.answer import REFUSALS

    answer = client.post("/api/ask", json={"question": question}).json()
    assert answer["answerable"] is False and answer["reason"] == reason
    assert answer["answer"].split(":")[0] == REFUSALS[reason].split(":")[0]


def test_a_bad_request_is_a_json_message(client):
    response = client.post("/api/ask", json={"question": ""})
    assert response.status_code == 422
    assert response.json() == {"error": "question: String should have at least 1 character"}
    response = client.post("/api/search", json={"query": "x", "mode": "telepathy"})
    assert response.status_code == 422 and response.json()["error"].startswith("mode:")
    assert client.get("/api/nothing").json() == {"error": "Not Found"}


# --- the queue ------------------------------------------------------------------------------


def blocker(service) -> threading.Event:
    """Occupy the model's thread with a job that waits for the returned event."""
    release, running = threading.Event(), threading.Event()

    def work(job):
        running.set()
        release.wait(60)

    import asyncio

    service.model.submit("blocker", Job(work, asyncio.new_event_loop()))
    assert running.wait(10)
    return release


def test_a_full_queue_answers_503_and_searches_do_not_wait(index_dir, generator):
    import asyncio

    with served(index_dir, generator, queue_size=1) as (client, service):
        release = blocker(service)
        try:
            service.model.submit("other", Job(lambda job: None, asyncio.new_event_loop()))
            response = client.post("/api/ask", json={"question": fixture.QUESTION})
            assert response.status_code == 503
            assert int(response.headers["Retry-After"]) >= 1
            assert "queue is full" in response.json()["error"]
            started = time.perf_counter()
            found = client.post("/api/search", json={"query": "VCrFeTaW irradiation"})
            assert found.status_code == 200 and time.perf_counter() - started < 30
            assert found.json()["hits"][0]["doi"] == "10.9997/serve.2023.003"
        finally:
            release.set()
        deadline = time.perf_counter() + 30  # the model's thread still has "other" to take
        while len(service.model.queue) and time.perf_counter() < deadline:
            time.sleep(0.05)
        assert client.post("/api/ask", json={"question": fixture.QUESTION}).status_code == 200


def test_the_queue_takes_clients_in_turn():
    queue = FairQueue(capacity=4)
    jobs = {name: Job(lambda job: None, None) for name in ("a1", "a2", "a3", "b1")}
    assert [queue.put("a", jobs[n], 1) for n in ("a1", "a2", "a3")] == [1, 2, 3]
    assert queue.put("b", jobs["b1"], 1) == 2  # b's first question goes before a's second
    with pytest.raises(QueueFull):
        queue.put("c", Job(lambda job: None, None), 7)
    assert [queue.take() for _ in range(4)] == [jobs[n] for n in ("a1", "b1", "a2", "a3")]


def test_a_client_that_leaves_frees_its_place():
    queue = FairQueue(capacity=1)
    job = Job(lambda job: None, None)
    queue.put("a", job, 1)
    queue.discard(job)
    assert len(queue) == 0
    queue.put("b", Job(lambda job: None, None), 1)  # the place is free again


def test_an_unexpected_failure_reaches_the_client_without_a_traceback(client):
    import asyncio

    service = client.app.state.service
    loop = asyncio.new_event_loop()
    job = Job(lambda job: 1 / 0, loop)
    service.model.submit("x", job)
    kinds = []
    while not kinds or kinds[-1][0] != "error":
        kinds.append(loop.run_until_complete(asyncio.wait_for(job.events.get(), 30)))
    assert kinds[-1][1] == {"error": "internal error: ZeroDivisionError (see the server's log)",
                            "status": 500}


# --- the index changing under the server ----------------------------------------------------


def upload(client, name: str, data: bytes, **params):
    return client.post("/api/index", params=params, files=[("files", (name, data, "text/csv"))])


def csv_bytes(tmp_path, rows) -> bytes:
    return fixture.write_csv(tmp_path / "rows.csv", rows).read_bytes()


def test_an_upload_is_indexed_and_searched_at_once(client, tmp_path):
    response = upload(client, "new.csv", csv_bytes(tmp_path, [fixture.NEW_PAPER]), stream="true")
    found = events(response)
    assert [kind for kind, _ in found][-1] == "summary"
    assert any(kind == "progress" and data.get("total") == 1 for kind, data in found)
    summary = found[-1][1]
    assert (summary["added"], summary["papers_total"], summary["failed"]) == (
        1, len(fixture.PAPERS) + 1, [])
    hits = client.post("/api/search", json={"query": "CrMnFeCoNi TiC hot pressed"}).json()["hits"]
    assert hits[0]["doi"] == fixture.NEW_PAPER["DOI"]
    assert client.get("/api/info").json()["server"]["counts"]["papers"] == len(fixture.PAPERS) + 1
    again = upload(client, "again.csv", csv_bytes(tmp_path, [fixture.NEW_PAPER])).json()
    assert (again["added"], again["duplicates"]) == (0, 1)


def test_bad_rows_are_reported_by_the_client_file_name(client, tmp_path):
    rows = [fixture.NEW_PAPER, {"Title": "empty", "Year": "", "DOI": "", "Abstract": ""}]
    summary = upload(client, "mixed.csv", csv_bytes(tmp_path, rows)).json()
    assert summary["added"] == 1
    assert [note["where"] for note in summary["skipped"]] == ["mixed.csv row 3"]


def test_a_generation_written_by_the_cli_is_used_without_restart(client, index_dir, tmp_path):
    query = {"query": "CrMnFeCoNi TiC hot pressed", "k": 10}
    before = client.post("/api/search", json=query).json()["hits"]
    assert fixture.NEW_PAPER["DOI"] not in {hit["doi"] for hit in before}
    more = fixture.write_csv(tmp_path / "more.csv", [fixture.NEW_PAPER])
    result = CliRunner().invoke(cli, ["index", str(more), "--index", str(index_dir)])
    assert result.exit_code == 0, result.stderr
    after = client.post("/api/search", json=query).json()["hits"]
    assert after[0]["doi"] == fixture.NEW_PAPER["DOI"]
    answer = client.post("/api/ask", json={
        "question": "What compressive yield strength did the CrMnFeCoNi TiC composite reach?"})
    assert answer.json()["sources"][0]["doi"] == fixture.NEW_PAPER["DOI"]


def test_searches_keep_working_while_an_upload_indexes(client, tmp_path, paper_generator):
    import csv as csv_module

    rows = paper_generator(300, seed=7)
    path = tmp_path / "many.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv_module.DictWriter(handle, fieldnames=fixture.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    done: list = []
    thread = threading.Thread(target=lambda: done.append(upload(client, "many.csv",
                                                                path.read_bytes())))
    thread.start()
    searched = 0
    while thread.is_alive():
        response = client.post("/api/search", json={"query": "VCrFeTaW irradiation"})
        assert response.status_code == 200
        assert response.json()["hits"][0]["doi"] == "10.9997/serve.2023.003"
        searched += 1
    thread.join()
    assert done[0].json()["added"] == 300 and searched >= 2


def test_a_server_without_an_index_makes_one_from_the_first_upload(tmp_path, generator, embedder):
    folder = tmp_path / "new-index"
    with served(folder, generator) as (client, _):
        missing = client.post("/api/search", json={"query": "CrMnFeCoNi"})
        assert missing.status_code == 404 and "no index at" in missing.json()["error"]
        assert client.get("/").status_code == 200
        summary = upload(client, "first.csv", csv_bytes(tmp_path, [fixture.NEW_PAPER])).json()
        assert (summary["added"], summary["papers_total"]) == (1, 1)
        hits = client.post("/api/search", json={"query": "CrMnFeCoNi TiC"}).json()["hits"]
        assert [hit["doi"] for hit in hits] == [fixture.NEW_PAPER["DOI"]]
