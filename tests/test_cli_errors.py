"""How the CLI reports failures: one line, a non-zero exit code, a traceback only with --debug."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_and_after_the_subcommand(tmp_path, where):
    command = ["index", str(tmp_path / "missing.csv"), "--index", str(tmp_path / "index")]
    args = ["--debug", *command] if where == "before" else [*command, "--debug"]
    result = run_cli(*args)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "InputError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("hea-rag: error: ")


def test_every_command_offers_debug():
    for name, command in cli.commands.items():
        assert "--debug" in {opt for p in command.params for opt in p.opts}, name


def _break_info(monkeypatch):
    """An unexpected failure inside a command (a bug we did not foresee)."""
    import hea_rag.info

    def broken(folder):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(hea_rag.info, "collect_info", broken)


def test_internal_error_without_debug_suggests_it(monkeypatch, tmp_path):
    _break_info(monkeypatch)
    result = run_cli("info", "--index", str(tmp_path))
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line == ("hea-rag: error: internal error: RuntimeError: simulated bug "
                    "(rerun with --debug for details)")
    assert "Traceback" not in result.stderr


def test_internal_error_with_debug_does_not_suggest_it_again(monkeypatch, tmp_path):
    _break_info(monkeypatch)
    result = run_cli("info", "--index", str(tmp_path), "--debug")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "hea-rag: error: internal error: RuntimeError: simulated bug")


def test_search_highlighting_leaves_alloy_names_whole(monkeypatch, capsys):
    """On a terminal, titles and passages are printed without colouring digits inside formulas."""
    from hea_rag import output
    from hea_rag.retrieve import Hit
    from hea_rag.store import PaperRow

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    paper = PaperRow(1, "10.9999/x", "Eutectic AlCoCrFeNi2.1 lamellae", None, 2022, None, "text")
    hit = Hit(rank=1, score=1.5, paper=paper, passage_id=1,
              text="The eutectic AlCoCrFeNi2.1 alloy and (FeCoNi)86Al7Ti7.", dense=0.5, lexical=2.0)
    output.print_hits([hit])
    shown = capsys.readouterr().out
    assert "\x1b[" in shown  # colours are on: the test would notice highlighting
    assert "Eutectic AlCoCrFeNi2.1 lamellae" in shown
    assert "AlCoCrFeNi2.1 alloy and (FeCoNi)86Al7Ti7." in shown
