"""Conversations of several exchanges: follow-up questions that need the first turn, and topic switches."""

from .messages import bot, user
from .single_turn import CAPITALS, VOCABULARY, add_zh, capital_en, capital_zh, translate_en, translate_zh


def follow_up_conversations(rng):
    """Second turns that only make sense with the first one in context."""
    convs = []
    for i in range(12):
        (czh1, capzh1, cen1, capen1), (czh2, capzh2, cen2, capen2) = rng.sample(CAPITALS, 2)
        if i < 7:
            first, follow = capital_zh(czh1, capzh1, i), [user(f"那{czh2}呢？"), bot(f"{czh2}的首都是{capzh2}。")]
        else:
            first = capital_en(cen1, capen1, i)
            follow = [user(f"What about {cen2}?"), bot(f"The capital of {cen2} is {capen2}.")]
        convs.append({"lang": first["lang"], "messages": first["messages"] + follow})
    for i in range(8):
        a, b, k = rng.randint(1, 50), rng.randint(1, 50), rng.randint(2, 5)
        s = a + b
        if i < 5:
            messages = add_zh(a, b, i)["messages"] + [user(f"再乘以 {k} 呢？"), bot(f"{s} × {k} = {s * k}。")]
        else:
            messages = [user(f"What is {a} + {b}?"), bot(f"{a} + {b} = {s}.")]
            messages += [user(f"And if you multiply that by {k}?"), bot(f"{s} × {k} = {s * k}.")]
        convs.append({"lang": "zh" if i < 5 else "en", "messages": messages})
    for i in range(8):
        (zh1, en1), (zh2, en2), (zh3, en3) = rng.sample(VOCABULARY["words"], 3)
        if i < 5:
            messages = translate_zh(zh1, en1, i)["messages"] + [
                user(f"那“{zh2}”呢？"),
                bot(f"“{zh2}”的英文是 {en2}。"),
            ]
            if i % 2:
                messages += [user(f"“{zh3}”呢？"), bot(f"“{zh3}”的英文是 {en3}。")]
        else:
            messages = translate_en(zh1, en1, i)["messages"] + [
                user(f'And "{en2}"?'),
                bot(f'"{en2}" in Chinese is {zh2}.'),
            ]
        convs.append({"lang": "zh" if i < 5 else "en", "messages": messages})
    return convs


def mixed_conversations(rng, items, count_zh, count_en):
    """Two or three unrelated exchanges in one conversation, the way people switch topics."""
    convs = []
    for lang, count in (("zh", count_zh), ("en", count_en)):
        pool = [item for item in items if item["lang"] == lang]
        for i in range(count):
            picked = rng.sample(pool, 2 + (i % 3 == 0))
            convs.append({"lang": lang, "messages": [m for item in picked for m in item["messages"]]})
    return convs
