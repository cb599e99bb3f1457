"""Grid encoders: exact round trips on every real ARC grid and on random grids, and a safe parser."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from arc24_lib.data import load_builtin
from arc24_lib.encoders import (
    DEFAULT_ENCODER,
    DEFAULT_SYMBOLS,
    ENCODERS,
    GridEncoder,
    GridShapeEncoder,
    MinimalGridEncoder,
    ReplaceNumberEncoder,
    RowNumberEncoder,
    get_encoder,
    parse_encoder,
)

LEAVES = ["MinimalGridEncoder()", "GridWithSeparationEncoder('|')", "RepeatNumberEncoder(n=3)"]
WRAPPERS = ["GridCodeBlockEncoder({})", "GridShapeEncoder({})", "RowNumberEncoder({})",
            "ReplaceNumberEncoder({})"]
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HEADER_CHARS = ("g", "r", "i", "d", "x", "h", ":", "p", "e", "`")  # symbols the wrappers also write
ENCODER_TEXTS = [
    *LEAVES,
    *(wrapper.format(leaf) for wrapper in WRAPPERS for leaf in LEAVES),
    DEFAULT_ENCODER,
    "GridCodeBlockEncoder(GridShapeEncoder(RowNumberEncoder(ReplaceNumberEncoder(MinimalGridEncoder()))))",
    "GridShapeEncoder(RowNumberEncoder(ReplaceNumberEncoder(GridWithSeparationEncoder(split_symbol=','), "
    f"symbols={NUMBER_WORDS!r})))",
    f"GridCodeBlockEncoder(GridShapeEncoder(RowNumberEncoder(ReplaceNumberEncoder(MinimalGridEncoder(), "
    f"symbols={HEADER_CHARS!r}))))",
    "RowNumberEncoder(RowNumberEncoder(RepeatNumberEncoder(n=2)))",
    "GridShapeEncoder(GridCodeBlockEncoder(GridWithSeparationEncoder('||')))",
]
DATASETS = ["arc-agi-1/training", "arc-agi-1/evaluation", "arc-agi-2/training", "arc-agi-2/evaluation"]
SMALL = np.array([[1, 2], [3, 4]])
LETTERS = tuple("abcdefghij")


def replace_minimal(symbols: object) -> str:
    """The string of a ReplaceNumberEncoder around MinimalGridEncoder with these symbols."""
    return f"ReplaceNumberEncoder(MinimalGridEncoder(), symbols={symbols!r})"


@pytest.fixture(scope="module")
def real_grids() -> list[np.ndarray]:
    """Every distinct grid (train and test, inputs and outputs) of ARC-AGI-1 and ARC-AGI-2."""
    datasets = [load_builtin(name) for name in DATASETS]
    assert [len(dataset) for dataset in datasets] == [400, 400, 1000, 120]
    unique = {}
    for dataset in datasets:
        for task in dataset:
            for example in task.examples:
                for grid in (example.input, example.output):
                    if grid is not None:
                        unique[(grid.shape, grid.tobytes())] = grid
    return list(unique.values())


@st.composite
def grids(draw: st.DrawFn) -> np.ndarray:
    """Random grids of 1-30 rows and 1-30 columns with colours 0-9."""
    shape = (draw(st.integers(1, 30)), draw(st.integers(1, 30)))
    return draw(arrays(np.int64, shape, elements=st.integers(0, 9)))


def assert_same_grid(decoded: np.ndarray, grid: np.ndarray) -> None:
    assert decoded.dtype == np.int64
    assert decoded.shape == grid.shape
    assert np.array_equal(decoded, grid)


# --- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("encoder_text", ENCODER_TEXTS)
def test_encoder_round_trips_every_real_grid(real_grids, encoder_text):
    encoder = parse_encoder(encoder_text)
    assert len(real_grids) > 9000
    for grid in real_grids:
        assert_same_grid(encoder.to_grid(encoder.to_text(grid)), grid)


@pytest.mark.parametrize("encoder_text", ENCODER_TEXTS)
@settings(max_examples=25, deadline=None)
@given(grid=grids())
def test_encoder_round_trips_random_grids(encoder_text, grid):
    encoder = parse_encoder(encoder_text)
    assert_same_grid(encoder.to_grid(encoder.to_text(grid)), grid)


@pytest.mark.parametrize("encoder_text", ENCODER_TEXTS)
@settings(max_examples=25, deadline=None)
@given(grid=grids(), data=st.data())
def test_encoder_to_grid_of_edited_text_fails_or_matches_text(encoder_text, grid, data):
    encoder = parse_encoder(encoder_text)
    text = encoder.to_text(grid)
    position = data.draw(st.integers(0, len(text)))
    inserted = data.draw(st.sampled_from([*"0123456789\n |`x:,", "", DEFAULT_SYMBOLS[3], "one"]))
    cut = data.draw(st.integers(0, 2))
    edited = text[:position] + inserted + text[position + cut:]
    try:
        decoded = encoder.to_grid(edited)
    except ValueError:
        return
    # Whatever is accepted is exactly the encoding of the grid returned.
    assert encoder.to_text(decoded) == edited.strip()


@pytest.mark.parametrize("encoder_text", ENCODER_TEXTS)
def test_encoder_to_grid_tolerates_surrounding_whitespace(encoder_text):
    encoder = parse_encoder(encoder_text)
    text = encoder.to_text(SMALL)
    for padded in (f"\n\n{text}\n", f"  {text}  ", f"\t\n {text}\n\n \n"):
        assert_same_grid(encoder.to_grid(padded), SMALL)


@pytest.mark.parametrize("encoder_text", ENCODER_TEXTS)
def test_encoder_repr_round_trips(encoder_text):
    encoder = parse_encoder(encoder_text)
    rebuilt = parse_encoder(repr(encoder))
    assert repr(rebuilt) == repr(encoder)
    assert rebuilt == encoder
    assert rebuilt.to_text(SMALL) == encoder.to_text(SMALL)


# --- exact texts ----------------------------------------------------------------------------

@pytest.mark.parametrize(("encoder_text", "expected"), [
    ("MinimalGridEncoder()", "12\n34"),
    ("GridWithSeparationEncoder('|')", "|1|2|\n|3|4|"),
    ("GridWithSeparationEncoder(',')", ",1,2,\n,3,4,"),
    ("RepeatNumberEncoder(n=3)", "111222\n333444"),
    ("RepeatNumberEncoder(1)", "12\n34"),
    ("GridCodeBlockEncoder(MinimalGridEncoder())", "```grid\n12\n34\n```"),
    ("GridShapeEncoder(MinimalGridEncoder())", "grid shape: 2x2\n12\n34"),
    ("RowNumberEncoder(MinimalGridEncoder())", "1 12\n2 34"),
    ("ReplaceNumberEncoder(MinimalGridEncoder())", "òõ\nöø"),
    (replace_minimal(LETTERS), "bc\nde"),
    (DEFAULT_ENCODER, "grid shape: 2x2\n1 12\n2 34"),
    ("GridShapeEncoder(RowNumberEncoder(ReplaceNumberEncoder(MinimalGridEncoder())))",
     "grid shape: 2x2\n1 òõ\n2 öø"),
])
def test_encoder_writes_expected_text(encoder_text, expected):
    assert parse_encoder(encoder_text).to_text(SMALL) == expected


def test_shape_header_is_rows_by_columns():
    grid = np.array([[1, 2, 3]])
    assert parse_encoder(DEFAULT_ENCODER).to_text(grid) == "grid shape: 1x3\n1 123"


def test_default_encoder_repr_is_its_string():
    assert repr(parse_encoder(DEFAULT_ENCODER)) == DEFAULT_ENCODER
    assert parse_encoder(DEFAULT_ENCODER) == GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))


def test_default_symbols_are_single_non_merging_tokens(smollm2_tokenizer):
    encoder = ReplaceNumberEncoder(MinimalGridEncoder())
    grid = np.random.default_rng(0).integers(0, 10, size=(30, 30))
    n_tokens = len(smollm2_tokenizer(encoder.to_text(grid), add_special_tokens=False)["input_ids"])
    assert n_tokens == grid.size + grid.shape[0] - 1  # one per cell and one per newline


# --- decoding errors ------------------------------------------------------------------------

@pytest.mark.parametrize(("encoder_text", "text"), [
    ("MinimalGridEncoder()", ""),
    ("MinimalGridEncoder()", " \n\t "),
    ("MinimalGridEncoder()", "abc"),
    ("MinimalGridEncoder()", "12\n3"),
    ("MinimalGridEncoder()", "12\n\n34"),
    ("MinimalGridEncoder()", "12 \n34"),
    ("MinimalGridEncoder()", "1²\n34"),
    ("GridWithSeparationEncoder('|')", "|1|2|\n|3|4"),
    ("GridWithSeparationEncoder('|')", "|1|2|\n|3||"),
    ("GridWithSeparationEncoder('|')", "|12|\n|34|"),
    ("RepeatNumberEncoder(n=3)", "111222\n33344"),
    ("RepeatNumberEncoder(n=3)", "111222\n334444"),
    ("GridCodeBlockEncoder(MinimalGridEncoder())", "```grid\n12\n34"),
    ("GridCodeBlockEncoder(MinimalGridEncoder())", "```\n12\n34\n```"),
    ("ReplaceNumberEncoder(MinimalGridEncoder())", "òõ\nö4"),
    ("ReplaceNumberEncoder(MinimalGridEncoder())", "òõ\nöA"),
    (DEFAULT_ENCODER, "grid shape: 3x2\n1 12\n2 34"),
    (DEFAULT_ENCODER, "grid shape: 2x3\n1 12\n2 34"),
    (DEFAULT_ENCODER, "grid shape: 02x2\n1 12\n2 34"),
    (DEFAULT_ENCODER, "grid shape: 2x2\n1 12\n3 34"),
    (DEFAULT_ENCODER, "grid shape: 2x2\n2 12\n1 34"),
    (DEFAULT_ENCODER, "grid shape: 2x2\n1 12\n2 3"),
    (DEFAULT_ENCODER, "grid shape: 2x2\n1 12\n2  34"),
    (DEFAULT_ENCODER, "grid shape: 2x2"),
    (DEFAULT_ENCODER, "grid size: 2x2\n1 12\n2 34"),
    (DEFAULT_ENCODER, "1 12\n2 34"),
    (DEFAULT_ENCODER, "grid shape: 2x2\n12\n34"),
])
def test_to_grid_rejects_bad_text(encoder_text, text):
    with pytest.raises(ValueError):
        parse_encoder(encoder_text).to_grid(text)


@pytest.mark.parametrize(("text", "message"), [
    ("grid shape: 3x2\n1 12\n2 34", "header says shape 3x2"),
    ("grid shape: 2x2\n1 12\n3 34", "start with '2 '"),
    ("grid shape: 2x2\n1 12\n2 3", "ragged rows"),
    ("grid shape: 2x2\n1 1a\n2 34", "only the digits"),
])
def test_to_grid_error_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_encoder(DEFAULT_ENCODER).to_grid(text)


@pytest.mark.parametrize("grid", [
    np.array([1, 2]), np.zeros((0, 3), dtype=int), np.array([[1, 10]]), np.array([[-1, 0]]),
    np.array([[0.5, 1.0]]), np.array([[True, False]]), np.array([["1", "2"]]),
])
def test_to_text_rejects_bad_grid(grid):
    with pytest.raises(ValueError):
        MinimalGridEncoder().to_text(grid)


def test_to_grid_rejects_non_text():
    with pytest.raises(ValueError, match="str"):
        MinimalGridEncoder().to_grid(None)


# --- construction and parsing ---------------------------------------------------------------

@pytest.mark.parametrize("encoder_text", [
    "ReplaceNumberEncoder(GridShapeEncoder(MinimalGridEncoder()))",
    "ReplaceNumberEncoder(RowNumberEncoder(MinimalGridEncoder()))",
    "ReplaceNumberEncoder(ReplaceNumberEncoder(MinimalGridEncoder()))",
    "RowNumberEncoder(GridShapeEncoder(MinimalGridEncoder()))",
    "RowNumberEncoder(GridCodeBlockEncoder(MinimalGridEncoder()))",
    f"ReplaceNumberEncoder(GridWithSeparationEncoder('|'), symbols={('|', *LETTERS[1:])!r})",
    f"ReplaceNumberEncoder(GridWithSeparationEncoder('ab'), symbols={('xa', *LETTERS[2:], 'k')!r})",
    replace_minimal(LETTERS[:9]),
    replace_minimal(("a", *LETTERS[:9])),
    replace_minimal(("ab", *LETTERS[:9])),
    replace_minimal(("k1", *LETTERS[:9])),
    replace_minimal(("k l", *LETTERS[:9])),
    replace_minimal(("", *LETTERS[:9])),
    replace_minimal(("\n", *LETTERS[:9])),
    replace_minimal("abcdefghij"),
    "GridWithSeparationEncoder('1')",
    "GridWithSeparationEncoder(' ')",
    "GridWithSeparationEncoder('')",
    "GridWithSeparationEncoder(3)",
    "RepeatNumberEncoder(n=0)",
    "RepeatNumberEncoder(n=True)",
    "RepeatNumberEncoder(n=2.0)",
    "RepeatNumberEncoder(n=10000000000)",
    "GridShapeEncoder(1)",
    "GridShapeEncoder('MinimalGridEncoder()')",
    "GridShapeEncoder(None)",
])
def test_encoder_rejects_compositions_and_arguments_that_cannot_round_trip(encoder_text):
    with pytest.raises(ValueError):
        parse_encoder(encoder_text)


@pytest.mark.parametrize("encoder_text", [
    "__import__('os').system('true')",
    "os.system('x')",
    "MinimalGridEncoder().__class__",
    "MinimalGridEncoder.__init__",
    "GridShapeEncoder(exec('1'))",
    "GridShapeEncoder(eval('MinimalGridEncoder()'))",
    "[c for c in ()]",
    "lambda: 0",
    "MinimalGridEncoder(); 1",
    "MinimalGridEncoder()\nMinimalGridEncoder()",
    "Unknown()",
    "RepeatNumberEncoder(n=1+2)",
    "RepeatNumberEncoder(n=-3)",
    "RepeatNumberEncoder(n=(3))+1",
    "GridShapeEncoder(base_encoder=MinimalGridEncoder, x=1)",
    "GridShapeEncoder(MinimalGridEncoder)",
    "GridShapeEncoder(base=MinimalGridEncoder())",
    "GridShapeEncoder(MinimalGridEncoder(), MinimalGridEncoder())",
    "GridShapeEncoder()",
    "MinimalGridEncoder(1)",
    "GridShapeEncoder(*[MinimalGridEncoder()])",
    "GridShapeEncoder(**{'base_encoder': MinimalGridEncoder()})",
    "GridWithSeparationEncoder(f'{1}')",
    "GridWithSeparationEncoder(b'|')",
    "RepeatNumberEncoder(n=...)",
    "ReplaceNumberEncoder(MinimalGridEncoder(), symbols=('a',) * 10)",
    "ReplaceNumberEncoder(MinimalGridEncoder(), symbols=tuple('abcdefghij'))",
    replace_minimal(tuple(range(10))),
    "ReplaceNumberEncoder(MinimalGridEncoder(), symbols={'a', 'b'})",
    "MinimalGridEncoder()[0]",
    "MinimalGridEncoder",
    "'MinimalGridEncoder()'",
    "(MinimalGridEncoder(), MinimalGridEncoder())",
    "MinimalGridEncoder() if 1 else 0",
    "(x := MinimalGridEncoder())",
    "GridShapeEncoder(MinimalGridEncoder(" + ")" * 1000,
    "(" * 300 + "MinimalGridEncoder()" + ")" * 300,
    "GridCodeBlockEncoder(" * 60 + "MinimalGridEncoder()" + ")" * 60,
    "",
    "   ",
])
def test_parse_encoder_rejects_anything_but_literal_encoder_calls(encoder_text):
    with pytest.raises(ValueError):
        parse_encoder(encoder_text)


def test_parse_encoder_error_names_the_part_and_the_known_encoders():
    with pytest.raises(ValueError, match="Unknown") as error:
        parse_encoder("GridShapeEncoder(Unknown())")
    assert all(name in str(error.value) for name in ENCODERS)
    with pytest.raises(ValueError, match="os.system"):
        parse_encoder("os.system('x')")


@pytest.mark.parametrize("payload", [
    "__import__('pathlib').Path({path!r}).touch()",
    "GridShapeEncoder(__import__('pathlib').Path({path!r}).touch())",
    "RepeatNumberEncoder(n=open({path!r}, 'w').close())",
    "MinimalGridEncoder().__class__(open({path!r}, 'w'))",
    "[open({path!r}, 'w') for _ in (1,)]",
    "GridWithSeparationEncoder(f\"{{open({path!r}, 'w')}}\")",
])
def test_parse_encoder_evaluates_nothing(tmp_path, payload):
    marker = tmp_path / "marker"
    with pytest.raises(ValueError):
        parse_encoder(payload.format(path=str(marker)))
    assert not marker.exists()


def test_parse_encoder_accepts_positional_keyword_and_padded_forms():
    assert parse_encoder("  GridShapeEncoder(base_encoder=RowNumberEncoder(MinimalGridEncoder()))\n") == \
        parse_encoder(DEFAULT_ENCODER)
    assert parse_encoder("RepeatNumberEncoder(3)") == parse_encoder("RepeatNumberEncoder(n=3)")
    assert parse_encoder("GridWithSeparationEncoder()") == parse_encoder("GridWithSeparationEncoder('|')")
    symbols = list(DEFAULT_SYMBOLS)
    assert parse_encoder(f"ReplaceNumberEncoder(MinimalGridEncoder(), symbols={symbols!r})") == \
        parse_encoder("ReplaceNumberEncoder(MinimalGridEncoder())")


def test_get_encoder_passes_encoders_through_and_parses_strings():
    encoder = parse_encoder(DEFAULT_ENCODER)
    assert get_encoder(encoder) is encoder
    assert get_encoder(DEFAULT_ENCODER) == encoder
    assert isinstance(get_encoder("MinimalGridEncoder()"), GridEncoder)
    with pytest.raises(ValueError):
        get_encoder(3)
