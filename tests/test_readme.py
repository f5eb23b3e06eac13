"""The numbers of the README and of docs/*.md cannot drift: each one they quote from a run equals its committed
source file (benchmarks/readme_numbers.py), and the command outputs they print are what the commands print today."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import benchmark
from pblf.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: The pages checked: the README and every page of docs/ (the list readme_numbers.py checks by default).
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def numbers():
    return benchmark("readme_numbers")


def test_the_checked_pages_are_the_readme_and_docs(numbers):
    assert numbers.pages() == PAGES and len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_number_a_page_quotes_equals_its_source(numbers, page):
    assert numbers.check(page) == []


def write(tmp_path: Path, readme: str, **sources: str) -> Path:
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "README.md"
    path.write_text(readme)
    return path


def test_a_drifted_number_an_unsourced_one_and_wrong_arithmetic_are_named(numbers, tmp_path):
    readme = write(tmp_path, (
        "<!-- numbers: result.json | 0.4 = 85.50 - 85.10 -->\n"
        "Standard 85.37, seed 2 85.50, a gain of +0.40 [−0.77, 1.19], and 0.4 points.\n"
        "<!-- /numbers -->\n"
        "Typed by hand: 91.20.\n"
    ), **{"result.json": '{"top1": [85.3712, 85.4999], "ci": [-0.771, 1.19], "gain": 0.4}'})
    problems = numbers.check(readme, tmp_path)
    # 85.50 is 85.4999 rounded; 85.10 (in the arithmetic) is nowhere, and 85.50 - 85.10 is 0.40 as declared
    assert problems == [f"{readme}:1: 85.10 (in '0.4 = 85.50 - 85.10') is in none of ['result.json']",
                        f"{readme}:4: 91.20 is outside every numbers block: put it in one that names the file it "
                        "comes from"]
    (tmp_path / "result.json").write_text('{"top1": [85.38, 85.50, 85.10], "ci": [-0.771, 1.19], "gain": 0.4}')
    assert f"{readme}:2: 85.37 is in none of the block's sources (result.json)" in numbers.check(readme, tmp_path)


def test_sections_code_quotations_and_ranges_are_read_as_such(numbers, tmp_path):
    readme = write(tmp_path, (
        "Table 6.2, §6.3.1, Figures 6.1-6.3 and Python 3.11; `lr: 0.1`; the thesis: \"95 ± 0.52\".\n"
        "```\n$ pblf plan\n21.0 days\n```\n"
        "<!-- numbers: a.csv -->\n93.0-94.0 %, torch 2.14.1, −0.09 and +0.21.\n<!-- /numbers -->\n"
    ), **{"a.csv": "x\n93.04\n94.0\n-0.09\n0.21\n"})
    assert numbers.check(readme, tmp_path) == []
    assert [q.text for q in numbers.quoted_numbers("a range 93.0-94.0, a sign −0.09, +0.21")] == \
        ["93.0", "94.0", "−0.09", "+0.21"]


def test_a_block_needs_its_close_and_existing_sources(numbers, tmp_path):
    readme = write(tmp_path, "<!-- numbers: missing.json -->\n1.5\n")
    problems = numbers.check(readme, tmp_path)
    assert problems[0] == f"{readme}:1: a numbers block without <!-- /numbers -->"
    readme = write(tmp_path, "<!-- numbers: missing.json -->\n<!-- /numbers -->\n")
    assert numbers.check(readme, tmp_path) == [f"{readme}:1: source missing.json does not exist"]


def test_a_numbers_block_shown_in_code_is_an_example_and_every_page_is_checked(numbers, tmp_path, capsys):
    example = write(tmp_path, "```\n<!-- numbers: missing.json | 7.5 = 92.86 - 85.37 -->\n1.5\n<!-- /numbers -->\n```\n")
    assert numbers.check(example, tmp_path) == []
    page = tmp_path / "page.md"
    page.write_text("Typed by hand: 91.20.\n")
    assert numbers.main([str(example), str(page)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{example}: every quoted number matches its source",
        f"{page}:1: 91.20 is outside every numbers block: put it in one that names the file it comes from",
        f"{page}: 1 problem(s)"]


def printed_commands() -> list[tuple[str, str]]:
    """Every fenced block of the README and docs/ that starts with ``$ pblf plan``: the command and what it
    printed."""
    blocks = [block for page in PAGES
              for block in re.findall(r"^```\n\$ (pblf plan[^\n]*)\n(.*?)^```", page.read_text(), flags=re.S | re.M)]
    assert blocks, "no page prints a pblf plan output"
    return blocks


@pytest.mark.parametrize("command, printed", printed_commands(), ids=lambda value: value[:60])
def test_a_printed_plan_is_what_pblf_plan_prints(command, printed, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out == printed
