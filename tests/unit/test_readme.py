"""The README is the manual: its two commands come first, and every command and setting is in it."""

import argparse
import re
from pathlib import Path

import pytest

import app
from backend.settings import ENV_VARS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix}{name}")
                found += _subcommands(sub, f"{prefix}{name} ")
    return found


def test_readme_opens_with_exactly_the_two_setup_commands():
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", README, re.S)
    body_before_second = README.split("```", 4)
    assert README.startswith("# Hearth\n\n```bash\n")
    assert blocks[0].strip() == "./setup.sh && .venv/bin/python app.py"
    assert blocks[1].strip() == "./setup.sh --test && .venv/bin/python -m pytest"
    assert body_before_second[2].strip() == "", "nothing may stand between the two commands"


@pytest.mark.parametrize("command", _subcommands(app.build_parser()))
def test_every_command_is_documented(command):
    assert f"python app.py {command}" in README


@pytest.mark.parametrize("variable", sorted(ENV_VARS))
def test_every_environment_variable_is_documented(variable):
    assert f"`{variable}`" in README


@pytest.mark.parametrize(
    "flag",
    [
        a.option_strings[-1]
        for a in app.build_parser()._actions
        if a.option_strings[1:2] != ["--help"] and a.option_strings
    ],
)
def test_every_flag_is_documented(flag):
    assert f"`{flag}`" in README
