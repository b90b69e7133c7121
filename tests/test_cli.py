"""The `hea-rag` command line, through click's CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from hea_rag import __version__
from hea_rag.cli import cli

QUERY = "compressive yield strength of CrMoNbTa0.5V at 1500 °C"
MONBVTACR_DOI = "10.9999/fake.2024.001"
HIT_KEYS = {"rank", "score", "paper_id", "doi", "title", "year", "text"}


def run_cli(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def hea_rag(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hea_rag", *args],
        input=input, capture_output=True, text=True, timeout=300,
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hea-rag: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder, corpus_csv):
    """The invented corpus indexed once through the CLI: (index folder, CliRunner result)."""
    folder = tmp_path_factory.mktemp("cli") / "index"
    result = run_cli("index", str(corpus_csv), "--index", str(folder))
    assert result.exit_code == 0, result.output
    return folder, result


# --- help and startup ---------------------------------------------------------------------


def test_help_does_not_import_heavy_libraries():
    code = textwrap.dedent(
        """
        import json, sys
        from click.testing import CliRunner
        from hea_rag.cli import cli
        runner = CliRunner()
        codes = [runner.invoke(cli, args).exit_code
                 for args in (["--help"], ["index", "--help"], ["search", "--help"], ["info", "--help"])]
        heavy = [m for m in ("torch", "transformers", "sentence_transformers", "faiss") if m in sys.modules]
        print(json.dumps({"codes": codes, "heavy": heavy, "torch": "torch" in sys.modules}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["codes"] == [0, 0, 0, 0]
    assert report["torch"] is False
    assert report["heavy"] == []


def test_help_as_a_subprocess():
    done = hea_rag("--help")
    assert done.returncode == 0
    for command in ("index", "search", "info"):
        assert command in done.stdout
    assert done.stderr == ""


def test_version():
    result = run_cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    "command, options",
    [
        ("index", ["--index", "--embedder", "--chunk-tokens", "--lock-timeout", "HEA_RAG_INDEX"]),
        ("search", ["--top-k", "--json", "--mode", "--index", "HEA_RAG_EMBEDDER"]),
        ("info", ["--index", "--json"]),
    ],
)
def test_command_help(command, options):
    result = run_cli(command, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: cli {command}") or f"{command} [OPTIONS]" in result.stdout
    for option in options:
        assert option in result.stdout


def test_unknown_command_and_bad_option_values():
    assert run_cli("reindex").exit_code == 2
    assert run_cli("search", "x", "--mode", "fuzzy").exit_code == 2
    assert run_cli("search", "x", "-k", "0").exit_code == 2
    assert run_cli("index").exit_code == 2  # PATHS is required


# --- index --------------------------------------------------------------------------------


def test_index_summary_on_stderr_only(indexed, corpus_csv):
    folder, result = indexed
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert str(folder) in line
    for part in ("added 12 papers", "0 duplicates", "0 skipped", "0 failed", "12 papers in the index"):
        assert part in line
    again = run_cli("index", str(corpus_csv), "--index", str(folder))
    assert again.exit_code == 0 and again.stdout == ""
    assert "added 0 papers (0 passages), 12 duplicates" in again.stderr


def test_index_uses_the_index_environment_variable(index_env, corpus_csv):
    result = run_cli("index", str(corpus_csv))
    assert result.exit_code == 0, result.output
    assert str(index_env) in result.stderr
    assert json.loads((index_env / "manifest.json").read_text())["counts"]["papers"] == 12


def test_index_from_stdin(tmp_path):
    folder = tmp_path / "index"
    text = "# Cryogenic CoCrNi\n\nThe CoCrNi alloy reached 1.3 GPa at 77 K with 90 % elongation.\n"
    result = run_cli("index", "-", "--index", str(folder), input=text)
    assert result.exit_code == 0, result.output
    assert "added 1 papers" in result.stderr
    hits = json_lines(run_cli("search", "NiCrCo at 77 K", "--json", "--index", str(folder)).stdout)
    assert hits[0]["title"] == "Cryogenic CoCrNi"


def test_index_missing_file_is_one_line_error(tmp_path):
    missing = tmp_path / "no-such-papers.csv"
    done = hea_rag("index", str(missing), "--index", str(tmp_path / "index"))
    assert done.returncode != 0
    assert done.stdout == ""
    assert_one_line_error(done.stderr, str(missing), "no such file")
    assert not (tmp_path / "index" / "manifest.json").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "index", str(tmp_path / "missing.csv"), "--index", str(tmp_path / "index"))
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "InputError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("hea-rag: error: ")


def test_index_with_a_malformed_row(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "Title,DOI,Abstract\n"
        "Good one,10.9999/ok.1,The CoCrFeNiMo0.2 alloy reached 700 MPa after aging at 800 °C.\n"
        "Broken,10.9999/bad.1,The NbTaTi alloy,and,extra,cells\n"
        "Good two,,The AlCrFeNiTi alloy had a hardness of 650 HV after SPS at 1100 °C.\n",
        encoding="utf-8",
    )
    folder = tmp_path / "index"
    result = run_cli("index", str(path), "--index", str(folder))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert "added 2 papers" in lines[0] and "1 failed" in lines[0]
    assert f"failed {path} row 3" in result.stderr and "fields but the header has 3" in result.stderr
    assert lines[-1] == "hea-rag: error: 1 file(s) or row(s) failed (listed above); 2 new papers were added"
    assert "Traceback" not in result.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["papers"] == 2  # the good rows were indexed anyway


def test_index_reports_skipped_rows(tmp_path):
    path = tmp_path / "some-empty.csv"
    path.write_text(
        "Abstract,DOI\n[No abstract available],10.9999/empty.1\n"
        "The HfNbTaTiZr alloy kept 40 % ductility at 1000 °C.,10.9999/full.1\n",
        encoding="utf-8",
    )
    result = run_cli("index", str(path), "--index", str(tmp_path / "index"))
    assert result.exit_code == 0, result.output
    assert "added 1 papers" in result.stderr and "1 skipped" in result.stderr
    assert f"skipped {path} row 2: empty abstract" in result.stderr


def test_index_with_another_embedder_is_refused(indexed, corpus_csv):
    folder, _ = indexed
    before = (folder / "manifest.json").read_text()
    result = run_cli("index", str(corpus_csv), "--index", str(folder), "--embedder", "some/other-model")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "all-MiniLM-L6-v2", "some/other-model")
    assert (folder / "manifest.json").read_text() == before


# --- search -------------------------------------------------------------------------------


def test_search_json_lines(indexed):
    folder, _ = indexed
    result = run_cli("search", QUERY, "--json", "--index", str(folder))
    assert result.exit_code == 0, result.output
    hits = json_lines(result.stdout)
    assert len(hits) == 5  # the default k
    for hit in hits:
        assert HIT_KEYS <= set(hit)
        assert "query" not in hit
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert len({h["paper_id"] for h in hits}) == 5
    assert hits[0]["doi"] == MONBVTACR_DOI
    assert hits[0]["title"] == "Sintered MoNbVTa0.5Cr refractory alloy" and hits[0]["year"] == 2024
    assert "MoNbVTa0.5Cr" in hits[0]["text"]
    assert result.stderr == ""


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_search_modes_and_k(indexed, mode):
    folder, _ = indexed
    result = run_cli("search", "CrMoNbTa0.5V yield strength", "--json", "-k", "2", "--mode", mode,
                     "--index", str(folder))
    assert result.exit_code == 0, result.output
    hits = json_lines(result.stdout)
    assert len(hits) == 2
    if mode != "dense":
        assert hits[0]["doi"] == MONBVTACR_DOI


def test_search_batch_from_stdin(indexed):
    folder, _ = indexed
    queries = ["CrMoNbTa0.5V at 1500 °C", "NiFeCrCoAl0.3 grain size", "C(CrHfZrTi) hardness"]
    result = run_cli("search", "--json", "-k", "3", "--index", str(folder),
                     input=queries[0] + "\n\n  " + queries[1] + "  \n" + queries[2] + "\n")
    assert result.exit_code == 0, result.output
    hits = json_lines(result.stdout)
    assert [h["query"] for h in hits] == [q for q in queries for _ in range(3)]
    firsts = [h["doi"] for h in hits if h["rank"] == 1]
    assert firsts == [MONBVTACR_DOI, "10.9999/fake.2023.002", "10.9999/fake.2022.003"]


def test_search_dash_reads_stdin(indexed):
    folder, _ = indexed
    result = run_cli("search", "-", "--json", "-k", "1", "--index", str(folder), input="CrMoNbTaV\n")
    assert result.exit_code == 0, result.output
    (hit,) = json_lines(result.stdout)
    assert hit["query"] == "CrMoNbTaV" and hit["doi"] == MONBVTACR_DOI


def test_search_text_output(indexed):
    folder, _ = indexed
    result = run_cli("search", QUERY, "-k", "2", "--index", str(folder))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    rank, score, doi, year, title = lines[0].split("\t")
    assert (rank, doi, year, title) == ("1", MONBVTACR_DOI, "2024", "Sintered MoNbVTa0.5Cr refractory alloy")
    assert float(score) > 0
    assert lines[1].startswith("\t") and "MoNbVTa0.5Cr" in lines[1]
    assert lines[2].startswith("2\t")


def test_search_text_output_batch_has_query_headers(indexed):
    folder, _ = indexed
    result = run_cli("search", "-k", "1", "--index", str(folder), input="CrMoNbTaV\nNbMoTaW films\n")
    assert result.exit_code == 0, result.output
    headers = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert headers == ["# CrMoNbTaV", "# NbMoTaW films"]


def test_search_paper_without_title_shows_its_first_words(indexed):
    folder, _ = indexed
    result = run_cli("search", "CoCrFeNiCu0.5 corrosion", "-k", "1", "--mode", "lexical", "--index", str(folder))
    first = result.stdout.splitlines()[0].split("\t")
    assert first[2:4] == ["-", "-"]  # no DOI, no year
    assert first[4].startswith("The corrosion of CoCrFeNiCu0.5") and first[4].endswith(" ...")


def test_search_missing_index_is_one_line_error(tmp_path):
    done = hea_rag("search", "CrMoNbTaV", "--index", str(tmp_path / "nothing"))
    assert done.returncode != 0
    assert done.stdout == ""
    assert_one_line_error(done.stderr, "no index at", str(tmp_path / "nothing"), "hea-rag index")


def test_search_with_another_embedder_is_refused(indexed):
    folder, _ = indexed
    result = run_cli("search", "x", "--index", str(folder), "--embedder", "some/other-model")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "some/other-model")
    assert result.stdout == ""


# --- info ---------------------------------------------------------------------------------


def test_info_json(indexed):
    import torch

    folder, _ = indexed
    result = run_cli("info", "--json", "--index", str(folder))
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["index"]["counts"]["papers"] == 12
    assert info["index"]["embedder"] == "all-MiniLM-L6-v2" and info["index"]["dimension"] == 384
    assert info["index"]["path"] == str(folder.resolve())
    cuda = torch.cuda.is_available()  # the report agrees with torch, GPU or not
    assert info["device"]["cuda"] is cuda
    assert info["device"]["gpu"] == (torch.cuda.get_device_name(0) if cuda else None)
    assert info["device"]["torch_threads"] == torch.get_num_threads()
    assert info["versions"]["hea-rag"] == __version__
    assert info["versions"]["torch"]


def test_info_text_and_missing_index(tmp_path):
    """No index is no damage: info still describes the machine, and exits 0."""
    result = run_cli("info", "--index", str(tmp_path / "none"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("index\n")
    assert "  status  " in result.stdout and "no index at" in result.stdout
    assert "\ndevice\n" in result.stdout and "\nversions\n" in result.stdout


def test_a_reader_that_stops_early_gets_no_error(corpus_index):
    """`hea-rag search - | head -1`: the command stops quietly with SIGPIPE's status (141),
    no traceback and no error line, as Unix tools do when their reader goes away."""
    questions = "\n".join(["yield strength of CoCrFeMnNi", "hardness of AlCoCrFeNi"] * 200) + "\n"
    process = subprocess.Popen([sys.executable, "-m", "hea_rag", "search", "-k", "10", "--index",
                                str(corpus_index[0]), "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdin.write(questions.encode())
    process.stdin.close()
    assert process.stdout.readline().startswith(b"# yield strength")
    process.stdout.close()  # the reader goes away with most results unread
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "error" not in stderr and "Traceback" not in stderr, stderr
