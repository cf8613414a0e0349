"""Messages in MiniMind-3's layout. Tool calls and results are JSON strings, so the Arrow schema stays uniform when
`datasets` loads the file."""

import json


def user(text):
    return {"role": "user", "content": text}


def bot(text, reasoning=None):
    message = {"role": "assistant", "content": text}
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


def qa(lang, question, answer, reasoning=None):
    """One question-answer exchange; conversations are built from one or more of these."""
    return {"lang": lang, "messages": [user(question), bot(answer, reasoning)]}


def call(name, **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def tool_exchange(calls, results, preface=""):
    """An assistant turn that calls tools, then one tool message per result."""
    messages = [{"role": "assistant", "content": preface, "tool_calls": json.dumps(calls, ensure_ascii=False)}]
    return messages + [{"role": "tool", "content": json.dumps(r, ensure_ascii=False)} for r in results]
