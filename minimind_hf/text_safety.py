"""Characters that have no place in training text: what makes a record invalid, and how the inspector shows them.

A record is rejected (a counted skip with `skip_invalid_samples`, else a file:line error) when a string in it holds
a C0/C1 control character other than tab, newline and carriage return (NUL, BEL, ESC: terminal escapes, binary
junk), a bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069: text that reads differently than it is
stored), or an unpaired UTF-16 surrogate (JSON's "\\ud800" alone: no UTF-8 exists for it, the Arrow writer fails).
"""

import re
import unicodedata

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def unsafe_character(text: str) -> str | None:
    """A description of the first unsafe character in ``text``, or None."""
    match = _UNSAFE.search(text)
    if match is None:
        return None
    char = match.group()
    kind = "an unpaired surrogate" if "\ud800" <= char <= "\udfff" else "the control character"
    name = unicodedata.name(char, "") or {"\x00": "NUL", "\x07": "BEL", "\x1b": "ESC"}.get(char, "")
    return f"{kind} U+{ord(char):04X}{f' ({name})' if name else ''} at character {match.start()}"


def strings(value):
    """Every string in a JSON-like value (nested dicts and lists), iteratively: deep nesting cannot overflow."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def escape_unsafe(text: str) -> str:
    """``text`` with every unsafe character shown as its escape (``\\x1b``), safe to print to a terminal."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)
