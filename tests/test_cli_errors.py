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
