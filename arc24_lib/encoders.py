"""Grid encoders: grids to text and back, exact inverse pairs, built from strings by a safe parser.

Composition rules (checked when an encoder is built, so every accepted encoder round-trips):
- Leaf encoders turn a grid into digits: `MinimalGridEncoder`, `GridWithSeparationEncoder`,
  `RepeatNumberEncoder`.
- `ReplaceNumberEncoder` wraps a leaf only, so it replaces grid digits and never row numbers or
  the shape header.
- `RowNumberEncoder` wraps an encoder that writes exactly one line per row: a leaf,
  `ReplaceNumberEncoder` or another `RowNumberEncoder`.
- `GridShapeEncoder` and `GridCodeBlockEncoder` wrap any encoder.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from arc24_lib.data import Grid

DEFAULT_ENCODER = "GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))"
# Latin-1 letters, one per colour: in the SmolLM2 tokenizer each is one token and runs of them
# never merge (ASCII capitals merge, "AAA" is one token), and none is a digit, whitespace, '|',
# '`', 'x' or a letter of the "grid shape" header.
DEFAULT_SYMBOLS = ("ñ", "ò", "õ", "ö", "ø", "ù", "ú", "û", "ü", "ý")
MAX_ENCODER_STRING = 1000
_DIGITS = re.compile(r"[0-9]+")
_ROW_NUMBER = re.compile(r"([0-9]+) (.*)")
_SHAPE_HEADER = re.compile(r"grid shape: ([0-9]+)x([0-9]+)")


def _check_grid(grid: Any) -> np.ndarray:
    """The grid as an integer array, or ValueError if it is not a 2-D grid of colours 0-9."""
    array = np.asarray(grid)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"a grid must be a non-empty 2-D array; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"a grid must hold integers 0-9; got dtype {array.dtype}")
    if array.min() < 0 or array.max() > 9:
        raise ValueError(f"a grid must hold integers 0-9; got values {array.min()} to {array.max()}")
    return array


def _digit_rows(grid: np.ndarray) -> list[str]:
    """Each row of the grid as a string of digits, one per cell."""
    ascii_codes = grid.astype(np.uint8) + ord("0")  # shape (rows, cols)
    return [row.tobytes().decode("ascii") for row in ascii_codes]


def _parse_digits(line: str, row: int) -> np.ndarray:
    """A string of digits as a 1-D int64 array; ValueError naming the row otherwise."""
    if not _DIGITS.fullmatch(line):
        raise ValueError(f"row {row + 1} is {line[:40]!r}; expected only the digits 0-9")
    return np.frombuffer(line.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of cells as a grid; ValueError if they differ in length."""
    for index, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise ValueError(f"ragged rows: row {index + 1} has {len(row)} cells, row 1 has {len(rows[0])}")
    return np.stack(rows)


class GridEncoder:
    """Base class: `to_text` and `to_grid` are exact inverses; `repr` re-creates the encoder."""

    one_line_per_row: ClassVar[bool] = False  # does `to_text` write exactly one line per grid row?

    def to_text(self, grid: Grid) -> str:
        """The grid as text."""
        return self._encode(_check_grid(grid))

    def to_grid(self, text: str) -> Grid:
        """The grid that `to_text` turned into `text`; ValueError if `text` is not such a text."""
        if not isinstance(text, str):
            raise ValueError(f"to_grid needs a str; got {type(text).__name__}")
        text = text.strip()
        if not text:
            raise ValueError("cannot decode a grid from empty text")
        grid = self._decode(text)
        # Canonical check: only the exact text this encoder writes is accepted, so a decoded grid
        # can never differ from the grid that was encoded.
        if self._encode(grid) != text:
            raise ValueError(f"text is not in the exact format written by {self!r}")
        return grid

    def _encode(self, grid: np.ndarray) -> str:
        raise NotImplementedError

    def _decode(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        """The constructor call that re-creates this encoder: base encoder first, then keywords."""
        parts = []
        for field in fields(self):  # every concrete encoder is a dataclass
            value = getattr(self, field.name)
            if isinstance(value, GridEncoder):
                parts.append(repr(value))
            elif value is not None:
                parts.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


# --- leaf encoders: grid cells to digits ---------------------------------------------------

class LeafGridEncoder(GridEncoder):
    """An encoder that writes grid cells as digits, one line per row, with no wrapper."""

    one_line_per_row = True

    @property
    def reserved_chars(self) -> set[str]:
        """Characters besides digits and newline that this encoder writes."""
        return set()

    def _decode(self, text: str) -> np.ndarray:
        return _stack_rows([self._decode_row(line, row) for row, line in enumerate(text.split("\n"))])

    def _decode_row(self, line: str, row: int) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True, repr=False)
class MinimalGridEncoder(LeafGridEncoder):
    """One digit per cell, rows joined by newlines: [[1, 2], [3, 4]] -> "12\\n34"."""

    def _encode(self, grid: np.ndarray) -> str:
        return "\n".join(_digit_rows(grid))

    def _decode_row(self, line: str, row: int) -> np.ndarray:
        return _parse_digits(line, row)



@dataclass(frozen=True, repr=False)
class GridWithSeparationEncoder(LeafGridEncoder):
    """A symbol between and around cells: [[1, 2]] -> "|1|2|"."""

    split_symbol: str = "|"

    def __post_init__(self) -> None:
        symbol = self.split_symbol
        if not isinstance(symbol, str) or not symbol or any(c.isdigit() or c.isspace() for c in symbol):
            raise ValueError(f"split_symbol is {symbol!r}; use a non-empty string with no digits "
                             "or whitespace, such as '|'")

    @property
    def reserved_chars(self) -> set[str]:
        """Characters besides digits and newline that this encoder writes."""
        return set(self.split_symbol)

    def _encode(self, grid: np.ndarray) -> str:
        symbol = self.split_symbol
        return "\n".join(symbol + symbol.join(row) + symbol for row in _digit_rows(grid))

    def _decode_row(self, line: str, row: int) -> np.ndarray:
        symbol = self.split_symbol
        if len(line) <= 2 * len(symbol) or not (line.startswith(symbol) and line.endswith(symbol)):
            raise ValueError(f"row {row + 1} is {line[:40]!r}; expected cells between {symbol!r}")
        # "|12|" parses as [1, 2] here; the canonical check in to_grid then rejects it.
        return _parse_digits("".join(line[len(symbol):-len(symbol)].split(symbol)), row)



@dataclass(frozen=True, repr=False)
class RepeatNumberEncoder(LeafGridEncoder):
    """Each cell's digit written n times: [[1, 2]] with n=3 -> "111222"."""

    n: int = 3

    def __post_init__(self) -> None:
        if type(self.n) is not int or not 1 <= self.n <= 10:
            raise ValueError(f"n is {self.n!r}; use an integer from 1 to 10, such as 3")

    def _encode(self, grid: np.ndarray) -> str:
        return "\n".join(_digit_rows(np.repeat(grid, self.n, axis=1)))

    def _decode_row(self, line: str, row: int) -> np.ndarray:
        digits = _parse_digits(line, row)
        if len(digits) % self.n:
            raise ValueError(f"row {row + 1} has {len(digits)} digits, not a multiple of n={self.n}")
        cells = digits.reshape(-1, self.n)  # shape (cols, n)
        if (cells != cells[:, :1]).any():
            raise ValueError(f"row {row + 1} is {line[:40]!r}; each digit must be repeated {self.n} times")
        return cells[:, 0]


# --- wrapper encoders -----------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class WrapperGridEncoder(GridEncoder):
    """An encoder that changes the text of its `base_encoder`."""

    base_encoder: GridEncoder

    def __post_init__(self) -> None:
        if not isinstance(self.base_encoder, GridEncoder):
            name = type(self).__name__
            raise ValueError(f"{name} needs a grid encoder as base_encoder, got {self.base_encoder!r}; "
                             f"for example {name}(MinimalGridEncoder())")


@dataclass(frozen=True, repr=False)
class GridCodeBlockEncoder(WrapperGridEncoder):
    """The base text in a fenced code block: "```grid\\n{text}\\n```"."""

    prefix: ClassVar[str] = "```grid\n"
    suffix: ClassVar[str] = "\n```"

    def _encode(self, grid: np.ndarray) -> str:
        return f"{self.prefix}{self.base_encoder._encode(grid)}{self.suffix}"

    def _decode(self, text: str) -> np.ndarray:
        if not (text.startswith(self.prefix) and text.endswith(self.suffix)):
            raise ValueError(f"expected a code block starting {self.prefix!r} and ending {self.suffix!r}")
        return self.base_encoder._decode(text[len(self.prefix):-len(self.suffix)])


def parse_shape_header(line: str) -> tuple[int, int] | None:
    """(rows, columns) declared by a "grid shape: HxW" line, or None when it is not one."""
    match = _SHAPE_HEADER.fullmatch(line)
    return None if match is None else (int(match[1]), int(match[2]))


@dataclass(frozen=True, repr=False)
class GridShapeEncoder(WrapperGridEncoder):
    """A shape header, then the base text: "grid shape: {rows}x{cols}\\n{text}"."""

    def _encode(self, grid: np.ndarray) -> str:
        rows, cols = grid.shape
        return f"grid shape: {rows}x{cols}\n{self.base_encoder._encode(grid)}"

    def _decode(self, text: str) -> np.ndarray:
        header, _, body = text.partition("\n")
        shape = parse_shape_header(header)
        if shape is None or not body:
            raise ValueError(f"first line is {header[:40]!r}; expected 'grid shape: HxW' and then the grid")
        grid = self.base_encoder._decode(body)
        if grid.shape != shape:
            raise ValueError(f"header says shape {shape[0]}x{shape[1]} but the grid is "
                             f"{grid.shape[0]}x{grid.shape[1]}")
        return grid


@dataclass(frozen=True, repr=False)
class RowNumberEncoder(WrapperGridEncoder):
    """Each line of the base text after its 1-based row number and a space: "1 12\\n2 34"."""

    one_line_per_row = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base_encoder.one_line_per_row:
            raise ValueError(f"RowNumberEncoder cannot wrap {self.base_encoder!r}, which does not write "
                             "one line per row; put RowNumberEncoder inside it instead")

    def _encode(self, grid: np.ndarray) -> str:
        lines = self.base_encoder._encode(grid).split("\n")
        assert len(lines) == len(grid), "base encoder must write one line per row"
        return "\n".join(f"{number} {line}" for number, line in enumerate(lines, start=1))

    def _decode(self, text: str) -> np.ndarray:
        lines = []
        for number, line in enumerate(text.split("\n"), start=1):
            match = _ROW_NUMBER.fullmatch(line)
            if match is None or int(match[1]) != number:
                raise ValueError(f"line {number} is {line[:40]!r}; expected it to start with '{number} '")
            lines.append(match[2])
        return self.base_encoder._decode("\n".join(lines))


@dataclass(frozen=True, repr=False)
class ReplaceNumberEncoder(WrapperGridEncoder):
    """The leaf's digits 0-9 replaced by `symbols[0]` to `symbols[9]` (DEFAULT_SYMBOLS if None)."""

    symbols: tuple[str, ...] | None = None
    one_line_per_row = True

    def __post_init__(self) -> None:
        if not isinstance(self.base_encoder, LeafGridEncoder):
            raise ValueError(f"ReplaceNumberEncoder must wrap a leaf encoder (MinimalGridEncoder, "
                             f"GridWithSeparationEncoder, RepeatNumberEncoder), not {self.base_encoder!r}; "
                             "put RowNumber/Shape/CodeBlock encoders outside it")
        symbols = DEFAULT_SYMBOLS if self.symbols is None else self.symbols
        if not isinstance(symbols, tuple | list) or not all(isinstance(s, str) for s in symbols):
            raise ValueError(f"symbols is {symbols!r}; use a tuple of 10 strings such as {DEFAULT_SYMBOLS!r}")
        object.__setattr__(self, "symbols", tuple(symbols))
        self._check_symbols(self.symbols, self.base_encoder.reserved_chars)

    @cached_property
    def _symbol_pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(re.escape(symbol) for symbol in self.symbols))

    @cached_property
    def _to_digit(self) -> dict[str, str]:
        return {symbol: str(digit) for digit, symbol in enumerate(self.symbols)}

    @staticmethod
    def _check_symbols(symbols: tuple[str, ...], reserved: set[str]) -> None:
        problem = None
        if len(symbols) != 10 or len(set(symbols)) != 10:
            problem = "there must be 10 distinct symbols, one per digit"
        elif any(not s or any(c.isdigit() or c.isspace() or c in reserved for c in s) for s in symbols):
            problem = f"a symbol is empty or holds a digit, whitespace or one of {sorted(reserved)}"
        elif any(a != b and b.startswith(a) for a in symbols for b in symbols):
            problem = "a symbol is the start of another, so decoding would be ambiguous"
        if problem:
            raise ValueError(f"symbols is {symbols!r}: {problem}; for example use {DEFAULT_SYMBOLS!r}")

    def _encode(self, grid: np.ndarray) -> str:
        table = str.maketrans({str(d): symbol for d, symbol in enumerate(self.symbols)})
        return self.base_encoder._encode(grid).translate(table)

    def _decode(self, text: str) -> np.ndarray:
        if _DIGITS.search(text):
            raise ValueError(f"text holds a digit; {self!r} writes cells as the symbols {self.symbols!r}")
        to_digit = self._to_digit
        return self.base_encoder._decode(self._symbol_pattern.sub(lambda match: to_digit[match[0]], text))

    def __repr__(self) -> str:
        if self.symbols == DEFAULT_SYMBOLS:
            return f"ReplaceNumberEncoder({self.base_encoder!r})"
        return f"ReplaceNumberEncoder({self.base_encoder!r}, symbols={self.symbols!r})"


# --- safe parser ----------------------------------------------------------------------------

ENCODERS: dict[str, type[GridEncoder]] = {cls.__name__: cls for cls in (
    MinimalGridEncoder, GridWithSeparationEncoder, RepeatNumberEncoder, GridCodeBlockEncoder,
    GridShapeEncoder, RowNumberEncoder, ReplaceNumberEncoder)}
_KNOWN = ", ".join(ENCODERS)


def _reject(node: ast.AST, problem: str) -> ValueError:
    return ValueError(f"cannot build an encoder from {ast.unparse(node)[:80]!r}: {problem}; "
                      f"write a call of one of {_KNOWN} with literal arguments")


def _literal(node: ast.AST) -> Any:
    """A nested encoder call, a literal constant, or a tuple/list of literal strings."""
    if isinstance(node, ast.Call):
        return _build(node)
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool, type(None)):
        return node.value
    if isinstance(node, ast.Tuple | ast.List) and all(
            isinstance(item, ast.Constant) and type(item.value) is str for item in node.elts):
        return tuple(item.value for item in node.elts)
    raise _reject(node, "only encoder calls, literal constants and tuples of strings are allowed")


def _build(node: ast.AST) -> GridEncoder:
    """The encoder an AST call node describes; nothing is evaluated."""
    if not isinstance(node, ast.Call):
        raise _reject(node, "expected an encoder call such as MinimalGridEncoder()")
    if not isinstance(node.func, ast.Name) or node.func.id not in ENCODERS:
        raise _reject(node.func, "unknown encoder")
    cls = ENCODERS[node.func.id]
    if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
        raise _reject(node, "*args and **kwargs are not allowed")
    args = [_literal(arg) for arg in node.args]
    kwargs = {keyword.arg: _literal(keyword.value) for keyword in node.keywords}
    try:
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as error:
        raise _reject(node, f"wrong arguments for {cls.__name__}{inspect.signature(cls)}: {error}") from None
    return cls(*args, **kwargs)


def parse_encoder(text: str) -> GridEncoder:
    """Build an encoder from a string such as DEFAULT_ENCODER, without evaluating it."""
    if not isinstance(text, str) or len(text) > MAX_ENCODER_STRING:
        shown = repr(text)[:80]
        raise ValueError(f"encoder string {shown} is not a str of at most {MAX_ENCODER_STRING} characters; "
                         f"write a call of one of {_KNOWN}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as error:
        raise ValueError(f"encoder string {text[:80]!r} is not a single expression ({error}); "
                         f"write a call of one of {_KNOWN}") from None
    return _build(tree.body)


def get_encoder(encoder: str | GridEncoder) -> GridEncoder:
    """An encoder given as one, or built from its string."""
    if isinstance(encoder, GridEncoder):
        return encoder
    if isinstance(encoder, str):
        return parse_encoder(encoder)
    raise ValueError(f"encoder is {encoder!r}; pass a GridEncoder or a string such as {DEFAULT_ENCODER!r}")
