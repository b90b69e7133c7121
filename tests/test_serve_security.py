"""`hea-rag serve`'s guards: the token, the Host and Origin checks, the binding rule, and uploads
that are too large, not UTF-8, not what their extension says, or named to escape their folder.
A refused upload leaves the index as it was."""

from __future__ import annotations

import tempfile

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import serve_fixture as fixture
from hea_rag.answer import AskSettings
from hea_rag.cli import cli
from hea_rag.server.app import create_app
from hea_rag.server.service import Service
from hea_rag.server.settings import ServeSettings, check_binding, BindingRefused
from hea_rag.store import Manifest

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, embedder):
    return fixture.build_index(tmp_path_factory.mktemp("guarded"))


@pytest.fixture(scope="module")
def generator():
    from hea_rag.answer import shipped_adapter
    from hea_rag.generator import load_generator

    return load_generator(fixture.MODEL, shipped_adapter(fixture.MODEL))


@pytest.fixture
def make_client(index_dir, generator):
    """Test clients over the fixture index, each with its own settings."""
    services = []

    def make(base_url="http://127.0.0.1", **settings) -> TestClient:
        service = Service(index_dir, generator, AskSettings(), ServeSettings(**settings))
        services.append(service)
        return TestClient(create_app(service), base_url=base_url)

    yield make
    for service in services:
        service.close()


@pytest.fixture
def uploads_dir(tmp_path, monkeypatch):
    """Where the server's temporary upload folders go, to see what they held afterwards."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def upload(client, name: str, data: bytes):
    return client.post("/api/index", files=[("files", (name, data, "application/octet-stream"))])


def csv_bytes(tmp_path) -> bytes:
    return fixture.write_csv(tmp_path / "one.csv", [fixture.NEW_PAPER]).read_bytes()


def generation(index_dir) -> tuple[str, dict]:
    manifest = Manifest.load(index_dir)
    return manifest.generation, manifest.counts


# --- the token ------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/static/app.js"),
                                          ("GET", "/api/info"), ("POST", "/api/search"),
                                          ("POST", "/api/ask"), ("POST", "/api/index"),
                                          ("GET", "/api/openapi.json")])
def test_every_request_without_the_token_gets_401(make_client, method, path):
    client = make_client(token=TOKEN)
    response = client.request(method, path, json={"query": "x", "question": "x"})
    assert response.status_code == 401
    assert "token" in response.json()["error"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.request(method, path, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_the_token_opens_the_api_and_the_page(make_client):
    client = make_client(token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    found = client.post("/api/search", json={"query": "VCrFeTaW irradiation"}, headers=bearer)
    assert found.status_code == 200 and found.json()["hits"][0]["doi"] == "10.9997/serve.2023.003"
    login = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/")  # the client kept the cookie
    assert page.status_code == 200 and 'id="question"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_binding_beyond_loopback_needs_a_token():
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.5"):
        check_binding(ServeSettings(host=host))
    check_binding(ServeSettings(host="0.0.0.0", token=TOKEN))
    with pytest.raises(BindingRefused, match="--token"):
        check_binding(ServeSettings(host="0.0.0.0"))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--model", fixture.MODEL],
                                env={"HEA_RAG_TOKEN": ""})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "hea-rag: error: binding to 0.0.0.0 lets other machines in: give --token (or set "
        "HEA_RAG_TOKEN), or keep the default 127.0.0.1"]


def test_a_loopback_server_refuses_other_host_names(make_client):
    """A web page whose name resolves to 127.0.0.1 (DNS rebinding) cannot read the API."""
    response = make_client(base_url="http://attacker.example").get("/api/info")
    assert response.status_code == 421
    assert make_client(base_url="http://localhost:8000").get("/").status_code == 200


def test_a_page_elsewhere_cannot_post_here(make_client, tmp_path, index_dir):
    client = make_client()
    before = generation(index_dir)
    response = client.post("/api/index", headers={"Origin": "http://attacker.example"},
                           files=[("files", ("one.csv", csv_bytes(tmp_path), "text/csv"))])
    assert response.status_code == 403
    assert response.json() == {"error": "cross-site request refused"}
    assert generation(index_dir) == before
    same = client.post("/api/search", headers={"Origin": "http://127.0.0.1"}, json={"query": "x"})
    assert same.status_code == 200


# --- uploads --------------------------------------------------------------------------------


def test_a_file_name_with_dot_dots_is_only_a_label(make_client, tmp_path, uploads_dir, index_dir):
    target = tmp_path / "escaped.csv"
    name = "../" * 12 + str(target).lstrip("/")
    summary = upload(make_client(), name, csv_bytes(tmp_path)).json()
    assert summary["added"] == 1
    assert not target.exists()
    assert list(uploads_dir.iterdir()) == []  # the temporary folder is gone too
    from hea_rag.store import IndexReader

    with IndexReader(index_dir) as reader:
        origins = [row[0] for row in reader.db.execute("SELECT origin FROM papers")]
    assert "escaped.csv row 2" in origins  # the client's name without its folders


def test_an_oversized_upload_gets_413(make_client, tmp_path, uploads_dir, index_dir):
    client = make_client(max_upload_bytes=1000)
    before = generation(index_dir)
    response = upload(client, "big.csv", csv_bytes(tmp_path) + b"x" * 2000)
    assert response.status_code == 413
    assert response.json() == {"error": "the upload is larger than 1000 bytes"}
    # without a Content-Length (chunked), the body is counted as it arrives
    body = (b'--B\r\nContent-Disposition: form-data; name="files"; filename="big.csv"\r\n\r\n'
            + b"Title,Abstract\r\n" + b"x" * 5000 + b"\r\n--B--\r\n")
    chunked = client.post("/api/index", content=iter([body[:500], body[500:]]),
                          headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert chunked.status_code == 413
    assert generation(index_dir) == before
    assert list(uploads_dir.iterdir()) == []


def test_a_csv_that_is_not_utf8_gets_415_naming_file_and_line(make_client, index_dir):
    before = generation(index_dir)
    data = "Title,Abstract\nLégère,The CoCrFeNi alloy was annealed at 900 °C.\n".encode("latin-1")
    response = upload(make_client(), "latin1.csv", data)
    assert response.status_code == 415
    assert response.json()["error"].startswith("latin1.csv line 2: not UTF-8")
    assert generation(index_dir) == before


@pytest.mark.parametrize("name, data, message", [
    ("paper.pdf", b"Title,Abstract\nA,B\n", "paper.pdf: not a PDF (no %PDF- header)"),
    ("papers.csv", b"%PDF-1.7\n\x00\x01\x02binary", "papers.csv: binary data, not CSV with an "
                                                   "abstract column"),
    ("papers.csv", b"just a sentence, no header naming an abstract\n",
     "papers.csv: the content is not CSV with an abstract column"),
    ("refs.bib", b"A plain paragraph about alloys.", "refs.bib: the content is not BibTeX"),
    ("refs.ris", b"@article{x, title={A}}", "refs.ris: the content is not RIS"),
    ("data.json", b"Title,Abstract\n", "data.json: the content is not JSON"),
    ("program.exe", b"MZ\x90\x00", "program.exe: unsupported file type .exe"),
    ("empty.txt", b"   \n", "empty.txt: empty file"),
])
def test_a_file_that_is_not_what_its_extension_says_is_refused(make_client, index_dir, name,
                                                               data, message):
    before = generation(index_dir)
    response = upload(make_client(), name, data)
    assert response.status_code in (400, 415)
    assert response.json()["error"].startswith(message)
    assert generation(index_dir) == before


def test_one_bad_file_refuses_the_whole_upload(make_client, tmp_path, index_dir):
    before = generation(index_dir)
    response = make_client().post("/api/index", files=[
        ("files", ("good.csv", csv_bytes(tmp_path), "text/csv")),
        ("files", ("bad.pdf", b"not a pdf", "application/pdf"))])
    assert response.status_code == 415
    assert generation(index_dir) == before


def test_an_upload_needs_multipart_files(make_client):
    client = make_client()
    response = client.post("/api/index", json={"files": []})
    assert response.status_code == 415 and "multipart/form-data" in response.json()["error"]
    response = client.post("/api/index", data={"other": "field"},
                           files=[("other", ("a.csv", b"x", "text/csv"))])
    assert response.status_code == 400 and "`files`" in response.json()["error"]
