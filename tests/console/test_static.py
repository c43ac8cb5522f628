"""The console's own static files: colours readable by everyone (WCAG AA, 4.5:1 for
text), and nothing fetched from anywhere else."""

from __future__ import annotations

import re
from pathlib import Path

import statusgate.api.console as console

STATIC = Path(console.__file__).parent / "static"
TEMPLATES = Path(console.__file__).parent / "templates"


def colours() -> dict[str, str]:
    css = (STATIC / "console.css").read_text()
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", css))


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_meet_wcag_aa_on_their_backgrounds() -> None:
    found = colours()
    pairs = [("text", "back"), ("text", "panel"), ("muted", "back"), ("muted", "panel")]
    pairs += [("link", "back"), ("link", "panel"), ("focus", "back")]
    pairs += [(f"{tone}-text", f"{tone}-back") for tone in ("good", "bad", "warn", "wait")]
    for text, back in pairs:
        ratio = contrast(found[text], found[back])
        assert ratio >= 4.5, f"--{text} on --{back}: {ratio:.2f}"


def test_nothing_is_loaded_from_another_site() -> None:
    for path in [*STATIC.iterdir(), *TEMPLATES.iterdir()]:
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path
