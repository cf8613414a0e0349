"""Deterministic sft_512-like SFT data: MiniMind ``conversations`` records, 1-3 user/assistant exchanges, mostly
Chinese, whole conversation under 512 characters.

    python bench/synth_sft.py out.jsonl --n 100000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random

# Frequent Chinese characters, so the text exercises the tokenizer's real merges.
HANZI = (
    "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过"
    "家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从已想样意问很最"
    "知理把机长外使被现实加量全重点物体开东西本回文力高水化工程两部明性特由同期电已解之提通新信化数合位情边则"
    "间感世界身身题色路少制结建应声取变各象放气度带清告相书计义利区问格何先步更白式代调米花友设格院式离落温"
    "春夏秋冬风雨雪云山河海湖江林树草鸟鱼马牛羊猫狗虫城市村乡街道家庭学校老师学生朋友父母孩子历史科学技术"
    "音乐艺术文化经济社会自然环境健康生活工作学习阅读写作思考问题答案方法原因结果影响发展提高保护重要简单"
)
PUNCT = "，，，，。、；："
ENGLISH = (
    "the model data learning python function list value system user answer question example simple fast small "
    "language network training token result because however water energy light music history science computer"
).split()
QUESTION_TAILS = ("？", "吗？", "呢？", "。", "，请详细说明。", "，请简要回答。")
OPENERS = ("请问", "帮我", "能否", "如何", "为什么", "请解释", "写一段", "总结一下", "翻译：", "计算")


def _words(rng: random.Random, n_chars: int) -> str:
    out, size = [], 0
    while size < n_chars:
        if rng.random() < 0.08:
            word = " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(1, 4)))
            word = f" {word} "
        elif rng.random() < 0.04:
            word = str(rng.randint(0, 10 ** rng.randint(1, 6)))
        else:
            word = "".join(rng.choice(HANZI) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.15:
            word += rng.choice(PUNCT)
        out.append(word)
        size += len(word)
    return "".join(out)[:n_chars]


def _question(rng: random.Random) -> str:
    return rng.choice(OPENERS) + _words(rng, rng.randint(6, 50)) + rng.choice(QUESTION_TAILS)


def _answer(rng: random.Random, budget: int, scale: float = 1.0) -> str:
    n = max(4, min(budget, rng.randint(15, int(220 * scale))))
    text = _words(rng, n)
    if rng.random() < 0.05:  # some answers are several lines, like lists in real data
        text = text[: n // 2] + "\n1. " + text[n // 2 :]
    return text.rstrip("，、；：") + "。"


def conversation(rng: random.Random, max_chars: int = 500) -> dict:
    exchanges = rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
    turns, used = [], 0
    for _ in range(exchanges):
        question = _question(rng)
        budget = max_chars - used - len(question)
        if budget < 20:
            break
        answer = _answer(rng, budget, max_chars / 500)
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        used += len(question) + len(answer)
    return {"conversations": turns}


def generate(path: str, n: int, seed: int = 0, max_chars: int = 500) -> str:
    """``n`` conversations of at most ``max_chars`` characters (500: sft_512-like; 1000: sft_1024-like, answers up to
    twice as long)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(json.dumps(conversation(rng, max_chars), ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-chars", type=int, default=500, help="500: sft_512-like, 1000: sft_1024-like")
    args = parser.parse_args()
    print(generate(args.out, args.n, args.seed, args.max_chars))
