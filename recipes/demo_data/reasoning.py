"""Questions answered with a worked reasoning (the assistant's reasoning_content): the hand-written ones, then
generated multiplication, word problems, weekdays and primality, with every step computed."""

from .content import load
from .messages import qa

REASONING = load("reasoning")
WEEKDAYS = load("calendar")["weekdays"]


def primes_up_to(n):
    return [p for p in range(2, n + 1) if all(p % d for d in range(2, p))]


def smallest_factor(n):
    return next((d for d in range(2, n) if d * d <= n and n % d == 0), None)


def multiplication(a, tens, ones, lang):
    """Two-digit multiplication, split into tens and ones."""
    b, p1, p2 = tens + ones, a * tens, a * ones
    if lang == "zh":
        reasoning = f"把 {b} 拆成 {tens} 和 {ones}：{a} × {tens} = {p1}，{a} × {ones} = {p2}。两部分相加：{p1} + {p2} = {p1 + p2}。"
        return qa("zh", f"计算 {a} × {b}，请一步一步算。", f"{a} × {b} = {a * b}。", reasoning)
    reasoning = f"Split {b} into {tens} and {ones}: {a} × {tens} = {p1} and {a} × {ones} = {p2}. Add them: {p1} + {p2} = {p1 + p2}."
    return qa("en", f"What is {a} × {b}? Work it out step by step.", f"{a} × {b} = {a * b}.", reasoning)


def give_and_buy(x, y, z, i, lang):
    """Give some away, buy some more."""
    left, total = x - y, x - y + z
    words = REASONING["word_problems"][lang]
    if lang == "zh":
        name, item = words["people"][i % 4], words["things"][i % 5]
        question = f"{name}有 {x} 个{item}，送给朋友 {y} 个，又买了 {z} 个。{name}现在有多少个{item}？"
        reasoning = (
            f"一开始有 {x} 个。送出 {y} 个后剩下 {x} - {y} = {left} 个。又买了 {z} 个：{left} + {z} = {total} 个。"
        )
        return qa("zh", question, f"{name}现在有 {total} 个{item}。", reasoning)
    (name, pronoun), item = words["people"][i % 4], words["things"][i % 4]
    question = f"{name} has {x} {item}. {pronoun} gives {y} to a friend and then buys {z} more. How many {item} does {name} have now?"
    reasoning = (
        f"Start with {x}. After giving away {y}: {x} - {y} = {left}. After buying {z} more: {left} + {z} = {total}."
    )
    return qa("en", question, f"{name} now has {total} {item}.", reasoning)


def weekday_after(d, n, lang):
    r, res = n % 7, (d + n) % 7
    day = WEEKDAYS[lang]
    if lang == "zh":
        step = f"从星期{day[d]}往后数 {r} 天是星期{day[res]}。" if r else f"余数为 0，所以还是星期{day[d]}。"
        reasoning = f"一周有 7 天，{n} ÷ 7 = {n // 7} 余 {r}。{step}"
        return qa("zh", f"今天是星期{day[d]}，{n} 天后是星期几？", f"{n} 天后是星期{day[res]}。", reasoning)
    step = (
        f"Counting {r} days forward from {day[d]} gives {day[res]}."
        if r
        else f"The remainder is 0, so it is {day[d]} again."
    )
    reasoning = f"A week has 7 days. {n} ÷ 7 = {n // 7} remainder {r}. {step}"
    question = f"If today is {day[d]}, what day of the week will it be in {n} days?"
    return qa("en", question, f"In {n} days it will be {day[res]}.", reasoning)


def primality(n, lang):
    d = smallest_factor(n)
    if lang == "zh":
        if d:
            answer = f"{n} 不是质数，因为 {n} = {d} × {n // d}。"
            reasoning = f"检查不超过 √{n} 的数：{n} ÷ {d} = {n // d}，能整除。"
        else:
            listed = "、".join(map(str, primes_up_to(int(n**0.5))))
            answer = f"{n} 是质数。"
            reasoning = f"不超过 √{n} 的质数有 {listed}，它们都不能整除 {n}。"
        return qa("zh", f"{n} 是质数吗？", answer, reasoning)
    if d:
        answer = f"No. {n} is not prime, because {n} = {d} × {n // d}."
        reasoning = f"Try divisors up to √{n}: {n} ÷ {d} = {n // d} with no remainder."
    else:
        listed = ", ".join(map(str, primes_up_to(int(n**0.5))))
        answer = f"Yes, {n} is a prime number."
        reasoning = f"The primes up to √{n} are {listed}, and none of them divides {n}."
    return qa("en", f"Is {n} a prime number?", answer, reasoning)


def reasoning_items(rng):
    items = [
        qa(lang, x["question"], x["answer"], x["reasoning"])
        for lang in ("zh", "en")
        for x in REASONING["worked"][lang]
    ]
    for i in range(13):
        a, tens, ones = rng.randint(12, 49), rng.randint(1, 3) * 10, rng.randint(1, 9)
        items.append(multiplication(a, tens, ones, "zh" if i < 8 else "en"))
    for i in range(11):
        x = rng.randint(10, 30)
        y, z = rng.randint(1, x - 1), rng.randint(1, 15)
        items.append(give_and_buy(x, y, z, i, "zh" if i < 6 else "en"))
    for i in range(7):
        d, n = rng.randint(0, 6), rng.randint(2, 30)
        items.append(weekday_after(d, n, "zh" if i < 4 else "en"))
    for i, n in enumerate(rng.sample(range(20, 120), 7)):
        items.append(primality(n, "zh" if i < 4 else "en"))
    return items
