"""One question, one answer: who the model is, capitals, arithmetic, units, translation and the hand-written Q&A.
Answers are computed or looked up in content/, so they are correct by construction."""

from .content import load
from .messages import qa

IDENTITY = load("identity")
CAPITALS = load("capitals")
UNITS = load("units")
VOCABULARY = load("vocabulary")
FACTS, WRITING, CODE, GREETINGS = (load(name) for name in ("facts", "writing", "code", "greetings"))


def identity_items():
    items = [qa(lang, q, IDENTITY["answer"][lang]) for lang in ("zh", "en") for q in IDENTITY["questions"][lang]]
    items += [qa(lang, x["question"], x["answer"]) for lang in ("zh", "en") for x in IDENTITY["other_questions"][lang]]
    return items


# ---------------------------------------------------------------- capitals


def capital_zh(country_zh, capital_zh, style=0):
    question = ["{}的首都是哪里？", "{}的首都是哪个城市？", "请告诉我{}的首都。"][style % 3].format(country_zh)
    return qa("zh", question, f"{country_zh}的首都是{capital_zh}。")


def capital_en(country_en, capital_en, style=0):
    question = ["What is the capital of {}?", "Which city is the capital of {}?"][style % 2].format(country_en)
    return qa("en", question, f"The capital of {country_en} is {capital_en}.")


def capital_items():
    items = []
    for i, (czh, capzh, cen, capen) in enumerate(CAPITALS):
        items += [capital_zh(czh, capzh, i), capital_en(cen, capen, i)]
    return items


# ---------------------------------------------------------------- arithmetic and units


def add_zh(a, b, style=0):
    question = ["计算 {} + {}。", "{} 加 {} 等于多少？", "{} + {} 等于几？"][style % 3].format(a, b)
    return qa("zh", question, f"{a} + {b} = {a + b}。")


def arithmetic_items(rng):
    items = [add_zh(12, 7)]
    for i in range(14):
        items.append(add_zh(rng.randint(1, 99), rng.randint(1, 99), i))
    for i in range(10):
        a, b = sorted((rng.randint(1, 99), rng.randint(1, 99)), reverse=True)
        question = ["{} 减 {} 等于多少？", "计算 {} - {}。"][i % 2].format(a, b)
        items.append(qa("zh", question, f"{a} - {b} = {a - b}。"))
    for i in range(12):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        question = ["{} 乘以 {} 等于多少？", "计算 {} × {}。"][i % 2].format(a, b)
        items.append(qa("zh", question, f"{a} × {b} = {a * b}。"))
    for i in range(9):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        question = ["What is {} + {}?", "What is {} plus {}?", "Calculate {} + {}."][i % 3].format(a, b)
        items.append(qa("en", question, f"{a} + {b} = {a + b}."))
    for _ in range(6):
        a, b = sorted((rng.randint(1, 99), rng.randint(1, 99)), reverse=True)
        items.append(qa("en", f"What is {a} minus {b}?", f"{a} - {b} = {a - b}."))
    for i in range(6):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        question = ["What is {} times {}?", "Calculate {} × {}."][i % 2].format(a, b)
        items.append(qa("en", question, f"{a} × {b} = {a * b}."))
    return items


def unit_zh(n, u1, u2, factor):
    return qa("zh", f"{n} {u1}等于多少{u2}？", f"{n} {u1}等于 {n * factor} {u2}。")


def unit_items(rng):
    items = [unit_zh(3, "公里", "米", 1000)]
    for i in range(14):
        zh1, zh2, _, _, factor = UNITS[i % len(UNITS)]
        items.append(unit_zh(rng.randint(2, 12), zh1, zh2, factor))
    for i in range(10):
        _, _, en1, en2, factor = UNITS[(i + 3) % len(UNITS)]
        n = rng.randint(2, 12)
        items.append(qa("en", f"How many {en2} are in {n} {en1}?", f"{n} {en1} is {n * factor} {en2}."))
    for i in range(8):
        c = rng.choice(range(-10, 45, 5))
        f = c * 9 // 5 + 32  # exact: c is a multiple of 5
        if i % 2:
            items.append(qa("en", f"Convert {c} °C to Fahrenheit.", f"{c} °C = {c} × 9/5 + 32 = {f} °F."))
        else:
            items.append(qa("zh", f"{c} 摄氏度等于多少华氏度？", f"{c}°C = {c} × 9/5 + 32 = {f}°F。"))
    return items


# ---------------------------------------------------------------- words


def translate_zh(zh, en, style=0):
    question = ["把“{}”翻译成英文。", "“{}”用英语怎么说？"][style % 2].format(zh)
    return qa("zh", question, f"“{zh}”的英文是 {en}。")


def translate_en(zh, en, style=0):
    question = ['Translate "{}" into Chinese.', 'How do you say "{}" in Chinese?'][style % 2].format(en)
    return qa("en", question, f'"{en}" in Chinese is {zh}.')


def translation_items():
    items = []
    for i, (zh, en) in enumerate(VOCABULARY["words"]):
        items.append(translate_zh(zh, en, i))
        if i % 5 == 0:
            items.append(translate_en(zh, en, i // 5))
    for zh, en in VOCABULARY["sentences"]:
        items.append(qa("zh", f"把这句话翻译成英文：{zh}", en))
        items.append(qa("en", f"Translate into Chinese: {en}", zh))
    for a, b in VOCABULARY["antonyms"]["zh"]:
        items.append(qa("zh", f"“{a}”的反义词是什么？", f"“{a}”的反义词是“{b}”。"))
    for a, b in VOCABULARY["antonyms"]["en"]:
        items.append(qa("en", f'What is the opposite of "{a}"?', f'The opposite of "{a}" is "{b}".'))
    return items


def hand_written_items():
    """facts, writing, code and greetings, as written."""
    return [
        qa(lang, x["question"], x["answer"])
        for lang in ("zh", "en")
        for table in (FACTS, WRITING, CODE, GREETINGS)
        for x in table[lang]
    ]
