"""A corpus of hostile strings for parametrised tests at every input boundary (markup,
template syntax, CSV formulas, dialplan and SIP syntax, paths, tricky Unicode, sizes, odd
phone numbers), plus bytes that are not UTF-8."""

import json
from pathlib import Path

HERE = Path(__file__).parent
CATEGORIES: dict[str, list[str]] = json.loads((HERE / "strings.json").read_text("utf-8"))
STRINGS = [value for values in CATEGORIES.values() for value in values]
INVALID_UTF8 = (HERE / "invalid-utf8.bin").read_bytes()
