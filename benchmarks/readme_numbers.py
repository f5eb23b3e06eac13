"""Check that every number the README and docs/ quote from a result equals the committed file it comes from.

    python benchmarks/readme_numbers.py [PAGE.md ...]      (or: make readme-numbers)

Without arguments it checks README.md and every docs/*.md (:func:`pages`). A README that quotes results typed in by
hand drifts from them: a rerun changes a file and nobody retypes the paragraph. Here every decimal number in a
page's prose must lie inside a *numbers block* that names its sources, by their paths from the repository root
(wherever the page lies):

    <!-- numbers: benchmarks/results/reproduce_cpu.json config.yaml -->
    ... prose or tables quoting 36.61 and +0.21 [−0.77, 1.19] ...
    <!-- /numbers -->

(HTML comments: GitHub shows the text between them, not the markers). Inside a block each decimal number, written
with d decimals, must equal some number of one of the sources rounded to d decimals (a leading + or the typographic
minus − are read as a sign). A number a page works out from others is declared in the opening marker with its
arithmetic, ``<!-- numbers: FILES | 7.5 = 92.86 - 85.37 -->``, and then the arithmetic and the numbers it uses are
checked. Not checked: section and table numbers ("Table 6.2", "§6.3.1", "Figure 6.4"), code (fenced blocks and
`spans`: commands, paths, settings), and quotations ("..."), which are the thesis's words. Commands whose output a
page prints (a fenced block starting ``$ pblf plan``) are rerun and compared by ``tests/test_readme.py``.

Exit status 0 when every page's numbers match, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import ast
import operator
import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: A decimal number as the README writes it: digits with optional thousands commas, a point and decimals; not part
#: of a longer word, version or path. Its sign is the character before it (:func:`_sign`).
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)(?![\w.]*\d|[\w/])")
#: What may precede a number that names a part of the thesis (or a version) rather than a quantity.
REFERENCE = re.compile(r"(?:Tables?|Figures?|Figs?\.|§|Sections?|Ch\.|Chapter|Appendix|Eqs?\.|Algorithm|issue|Python)"
                       r"\s*(?:[\dA-C.]+(?:,|\s+and|\s*-|\s*–)\s*)*$")
OPEN = re.compile(r"<!--\s*numbers:\s*(.*?)\s*-->", re.S)
CLOSE = "<!-- /numbers -->"
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
             ast.Pow: operator.pow}


@dataclass(frozen=True)
class Quoted:
    """One decimal number of the README: its text, its value and decimals, and the line it is on."""

    text: str
    value: Decimal
    decimals: int
    line: int


def _sign(text: str, start: int) -> str:
    """The sign written before the number at ``start``: +, - or the typographic minus, unless it joins two numbers
    of a range ("93.0-94.0", "1.06-1.07")."""
    before = text[start - 1] if start > 0 else ""
    if before in "+-−" and before and not (start > 1 and text[start - 2].isalnum()):
        return before
    return ""


def _value(sign: str, whole: str, fraction: str) -> Decimal:
    return Decimal(f"{'-' if sign in ('-', '−') else ''}{whole.replace(',', '')}.{fraction}")


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def blank_fences(text: str) -> str:
    """``text`` with its fenced blocks replaced by spaces (offsets and line numbers kept): a numbers block shown in
    one is an example, not a block."""
    return re.sub(r"^```.*?^```", _blank, text, flags=re.S | re.M)


def blank_unchecked(text: str) -> str:
    """``text`` with what is not checked (fenced blocks, code spans, quotations) replaced by spaces, so that the
    offsets and line numbers of everything else stay as they were."""
    text = re.sub(r"`[^`\n]*`", _blank, blank_fences(text))
    return re.sub(r"\"[^\"\n]*\"", _blank, text)


def quoted_numbers(text: str, start: int = 0, end: int | None = None) -> list[Quoted]:
    """The checked decimal numbers of ``text[start:end]`` (of the text with unchecked parts blanked)."""
    found = []
    for match in NUMBER.finditer(text, start, len(text) if end is None else end):
        if REFERENCE.search(text[max(0, match.start() - 40):match.start()]):
            continue
        whole, fraction = match.groups()
        sign = _sign(text, match.start())
        found.append(Quoted(sign + match.group(0), _value(sign, whole, fraction), len(fraction),
                            text.count("\n", 0, match.start()) + 1))
    return found


def source_numbers(path: Path) -> set[Decimal]:
    """Every number written in a source file (any text: JSON, CSV, Markdown, YAML, logs, code), signed."""
    numbers = set()
    for match in re.finditer(r"(?<![\w.])(-?)(\d+)(?:\.(\d+))?(?:[eE]([+\-]?\d+))?", path.read_text(errors="replace")):
        sign, whole, fraction, exponent = match.groups()
        value = Decimal(f"{sign}{whole}.{fraction or '0'}")
        numbers.add(value.scaleb(int(exponent)) if exponent else value)
    return numbers


def matches(quoted: Quoted, numbers: set[Decimal]) -> bool:
    """Whether some source number, rounded to the quoted decimals, is the quoted number (half up or half even:
    Python's format and a person rounding differ on a last 5)."""
    step = Decimal(1).scaleb(-quoted.decimals)
    return any(number.quantize(step, rounding=mode) == quoted.value
               for number in numbers for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN))


def evaluate(expression: str) -> Decimal:
    """The value of an arithmetic ``expression`` of numbers, + - * / ** ( ) and exp() (nothing else is allowed)."""
    def walk(node: ast.AST) -> Decimal:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Decimal(str(node.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exp" \
                and len(node.args) == 1:
            return walk(node.args[0]).exp()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return Decimal(float(walk(node.left)) ** float(walk(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"{expression!r}: only numbers, + - * / ** ( ) and exp() are allowed")

    return walk(ast.parse(expression.strip().replace("−", "-").replace("×", "*"), mode="eval"))


def check(readme: Path, root: Path = ROOT) -> list[str]:
    """Every problem with the numbers of the page ``readme`` (the README or a page of docs/), one line each (empty
    when every number matches its source); the blocks' sources are read from ``root``."""
    raw = blank_fences(readme.read_text())
    text = blank_unchecked(raw)
    problems: list[str] = []
    covered: list[tuple[int, int]] = []
    for opening in OPEN.finditer(raw):
        line = raw.count("\n", 0, opening.start()) + 1
        close = raw.find(CLOSE, opening.end())
        if close < 0:
            problems.append(f"{readme}:{line}: a numbers block without {CLOSE}")
            continue
        covered.append((opening.start(), close))
        files, _, derived = opening.group(1).partition("|")
        numbers: set[Decimal] = set()
        for name in files.split():
            if not (root / name).is_file():
                problems.append(f"{readme}:{line}: source {name} does not exist")
                continue
            numbers |= source_numbers(root / name)
        declared = {}
        for declaration in filter(None, (d.strip() for d in derived.split(";"))):
            claimed, _, expression = declaration.partition("=")
            result = quoted_numbers(claimed.strip())
            if len(result) != 1 or not expression.strip():
                problems.append(f"{readme}:{line}: {declaration!r} is not 'NUMBER = ARITHMETIC'")
                continue
            for operand in quoted_numbers(expression):
                if not matches(operand, numbers):
                    problems.append(f"{readme}:{line}: {operand.text} (in {declaration!r}) is in none of {files.split()}")
            value = evaluate(expression)
            if not matches(result[0], {value}):
                problems.append(f"{readme}:{line}: {declaration!r}: the arithmetic gives {value:.4f}")
            declared[result[0].value] = result[0]
        for quoted in quoted_numbers(text, opening.end(), close):
            if quoted.value not in declared and not matches(quoted, numbers):
                problems.append(f"{readme}:{quoted.line}: {quoted.text} is in none of the block's sources "
                                f"({', '.join(files.split())})")
    for quoted, offset in ((q, m.start()) for m in NUMBER.finditer(text)
                           for q in quoted_numbers(text, m.start(), m.end())):
        if not any(start <= offset < end for start, end in covered):
            problems.append(f"{readme}:{quoted.line}: {quoted.text} is outside every numbers block: put it in one "
                            "that names the file it comes from")
    return problems


def pages(root: Path = ROOT) -> list[Path]:
    """The pages whose numbers are checked: the README and every Markdown file of docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    failed = False
    for page in [Path(arg) for arg in args] or pages():
        problems = check(page)
        for problem in problems:
            print(problem)
        print(f"{page}: {'every quoted number matches its source' if not problems else f'{len(problems)} problem(s)'}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
