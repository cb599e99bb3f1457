"""Feature ids cited in the library resolve in docs/FEATURES.md, and the modules it names exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"\(((?:[DRAMTIEK]\d)(?:,\s*[DRAMTIEK]\d)*)\)|# --- ([DRAMTIEK]\d):")


def feature_table() -> dict[str, str]:
    """id -> its row's `where` cell."""
    rows = re.findall(r"^\| ([A-Z]\d) \| [^|]+ \| ([^|]+) \|$", (ROOT / "docs" / "FEATURES.md").read_text(), re.M)
    return dict(rows)


def test_every_cited_feature_id_is_in_the_table():
    table = feature_table()
    cited = {}
    for path in sorted((ROOT / "arc24_lib").rglob("*.py")):
        for match in CITED.finditer(path.read_text()):
            for feature in re.split(r",\s*", match.group(1) or match.group(2)):
                cited.setdefault(feature, path.name)
    assert len(cited) >= 20
    missing = {feature: where for feature, where in cited.items() if feature not in table}
    assert not missing, f"cited in arc24_lib but not in docs/FEATURES.md: {missing}"


def test_the_table_names_modules_that_exist():
    for feature, where in feature_table().items():
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", where):
            place = ROOT / name if name == "notebooks/" else ROOT / "arc24_lib" / name
            assert place.exists(), f"{feature}: {name} does not exist"
