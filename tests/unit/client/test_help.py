"""Every ``echofs`` command and flag explains itself in ``--help``, with its
default where it has one."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from echofs.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "echofs",
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child_name, child in action.choices.items():
                yield from _parsers(child, f"{name} {child_name}")


PARSERS = dict(_parsers(build_parser()))


def test_the_walk_reaches_every_command():
    for name in ("echofs serve", "echofs dev cluster", "echofs db", "echofs put",
                 "echofs admin override", "echofs admin create-user", "echofs bench chaos"):
        assert name in PARSERS


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_command_and_flag_has_help(name):
    parser = PARSERS[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        label = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{name} {choice.dest}: no help"
            continue
        assert action.help and action.help != argparse.SUPPRESS, f"{name} {label}: no help"
        text = formatter._get_help_string(action)
        switch = isinstance(action.default, bool)  # its help says what it turns on or off
        if action.default not in (None, argparse.SUPPRESS) and not switch and (
                action.option_strings or action.nargs in ("?", "*")):
            assert "default" in text, f"{name} {label}: default {action.default!r} not shown"
    # The whole help renders (a stray % in a help text would raise here).
    assert parser.format_help()


def test_defaults_appear_in_the_rendered_help():
    text = PARSERS["echofs dev cluster"].format_help()
    assert "(default: 3)" in text and "--no-controller" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: True)" not in text
