"""Plain text for pretraining: the prose in content/prose.yaml, the SFT tables stated as sentences, times tables and
sums, the hand-written answers, and short generated lines about people in capital cities."""

from .content import load
from .single_turn import CAPITALS, CODE, FACTS, IDENTITY, UNITS, VOCABULARY, WRITING

PROSE = load("prose")
CALENDAR = load("calendar")


def chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def table_lines():
    """The capitals, words and units of the SFT set, a few facts per line."""
    lines = ["".join(f"{c}的首都是{cap}。" for c, cap, _, _ in group) for group in chunks(CAPITALS, 4)]
    lines += [" ".join(f"The capital of {c} is {cap}." for _, _, c, cap in group) for group in chunks(CAPITALS, 4)]
    words = VOCABULARY["words"]
    lines += ["".join(f"“{zh}”的英文是 {en}。" for zh, en in group) for group in chunks(words, 5)]
    lines += [" ".join(f'The Chinese word for "{en}" is {zh}.' for zh, en in group) for group in chunks(words, 5)]
    lines += ["".join(f"1 {a}等于 {f} {b}。" for a, b, _, _, f in UNITS)]
    lines += [" ".join(f"One {a[:-1]} is {f} {b}." for _, _, a, b, f in UNITS)]
    weekdays = CALENDAR["weekdays"]
    lines += [
        "一周有七天：" + "、".join("星期" + d for d in weekdays["zh"]) + "。",
        "The days of the week are " + ", ".join(weekdays["en"]) + ".",
    ]
    return lines


def number_lines(rng):
    lines = []
    for n in range(2, 10):
        lines.append(f"{n} 的乘法：" + "，".join(f"{n} × {k} = {n * k}" for k in range(1, 10)) + "。")
        lines.append(f"The {n} times table: " + ", ".join(f"{n} × {k} = {n * k}" for k in range(1, 10)) + ".")
    for _ in range(24):
        pairs = [(rng.randint(1, 99), rng.randint(1, 99)) for _ in range(4)]
        lines.append("".join(f"{a} 加 {b} 等于 {a + b}。" for a, b in pairs))
        lines.append(" ".join(f"{a} plus {b} equals {a + b}." for a, b in pairs))
    return lines


def people_lines(rng):
    lines = []
    seasons = CALENDAR["seasons"]
    for _ in range(48):
        person, activity, season = (
            rng.choice(PROSE["people"]["zh"]),
            rng.choice(PROSE["activities"]["zh"]),
            rng.randrange(4),
        )
        _, capital, _, _ = rng.choice(CAPITALS)
        lines.append(f"{person}住在{capital}。{seasons['zh'][season]}的周末，{person}最喜欢{activity}。")
    for _ in range(32):
        person, activity, season = (
            rng.choice(PROSE["people"]["en"]),
            rng.choice(PROSE["activities"]["en"]),
            rng.randrange(4),
        )
        _, _, _, capital = rng.choice(CAPITALS)
        lines.append(
            f"{person} lives in {capital}. On {seasons['en'][season]} weekends, {person} likes {activity} best."
        )
    return lines


def pretraining_lines(rng):
    lines = (
        [IDENTITY["answer"]["zh"], IDENTITY["answer"]["en"]] + PROSE["paragraphs"]["zh"] + PROSE["paragraphs"]["en"]
    )
    lines += table_lines() + number_lines(rng)
    lines += [x["answer"] for table in (FACTS, WRITING, CODE) for lang in ("zh", "en") for x in table[lang]]
    return lines + people_lines(rng)
