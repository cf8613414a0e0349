"""Tool use: the system message offers functions (a JSON string under "tools"), the assistant calls them, the tool
answers, the assistant replies from the result. Results are computed here, so replies match them."""

import json

from .content import load
from .messages import bot, call, tool_exchange, user
from .single_turn import GREETINGS, IDENTITY

TOOLS = load("tools")


def function_spec(name, description, parameters):
    properties = {key: {"type": kind, "description": text} for key, (kind, text) in parameters.items()}
    parameters = {"type": "object", "properties": properties, "required": list(parameters)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def with_tools(lang, tool_names, messages):
    specs = [function_spec(name, **TOOLS["functions"][name]) for name in tool_names]
    system = {
        "role": "system",
        "content": TOOLS["system_prompt"][lang],
        "tools": json.dumps(specs, ensure_ascii=False),
    }
    return {"lang": lang, "messages": [system] + messages}


def weather(rng, lang, city_index):
    zh_city, en_city, _ = TOOLS["cities"][city_index]
    report_zh, phrase_zh, report_en, low, high = rng.choice(TOOLS["weather"])
    temp, humidity = rng.randint(low, high), rng.randrange(20, 96, 5)
    city, report = (zh_city, report_zh) if lang == "zh" else (en_city, report_en)
    result = {"city": city, "condition": report, "temperature_c": temp, "humidity": humidity}
    if lang == "zh":
        return call("get_weather", city=city), result, f"{city}现在{phrase_zh}，气温 {temp}°C，湿度 {humidity}%。"
    return (
        call("get_weather", city=city),
        result,
        f"In {city} it is {report} right now, {temp} °C with {humidity}% humidity.",
    )


def weather_conversations(rng):
    """One city, or two cities in parallel calls."""
    convs = []
    for i in range(10):
        lang, pair = ("zh" if i < 6 else "en"), i in (2, 8)
        a, b = rng.sample(range(len(TOOLS["cities"])), 2)
        call_a, result_a, answer = weather(rng, lang, a)
        calls, results = [call_a], [result_a]
        if pair:
            call_b, result_b, answer_b = weather(rng, lang, b)
            calls, results, answer = (
                calls + [call_b],
                results + [result_b],
                answer + ("" if lang == "zh" else " ") + answer_b,
            )
        names = [c["function"]["arguments"]["city"] for c in calls]
        if lang == "zh":
            question = f"{'和'.join(names)}现在天气怎么样？"
        else:
            question = f"What is the weather like in {' and '.join(names)} right now?"
        preface = TOOLS["lookup_preface"]["zh"] if i == 1 else ""
        messages = [user(question)] + tool_exchange(calls, results, preface) + [bot(answer)]
        if i in (0, 7):
            thanks, welcome = TOOLS["thanks"][lang]
            messages += [user(thanks), bot(welcome)]
        convs.append(
            with_tools(lang, ["get_weather", "get_current_time"] if i % 3 == 0 else ["get_weather"], messages)
        )
    return convs


def calculator_conversations(rng):
    convs = []
    for i in range(7):
        lang = "zh" if i < 4 else "en"
        a, b = rng.randint(12, 999), rng.randint(12, 99)
        op = ["*", "/", "+"][i % 3]
        if op == "/":
            a = a * b
        value = {"*": a * b, "/": a // b, "+": a + b}[op]
        sign = {"*": "×", "/": "÷", "+": "+"}[op]
        word_zh, word_en = {"*": ("乘以", "times"), "/": ("除以", "divided by"), "+": ("加", "plus")}[op]
        question = f"帮我算一下 {a} {word_zh} {b}。" if lang == "zh" else f"Please compute {a} {word_en} {b}."
        end = "。" if lang == "zh" else "."
        exchange = tool_exchange([call("calculate", expression=f"{a} {op} {b}")], [{"result": value}])
        convs.append(
            with_tools(lang, ["calculate"], [user(question)] + exchange + [bot(f"{a} {sign} {b} = {value}{end}")])
        )
    return convs


def clock_conversations(rng):
    convs = []
    for i in range(4):
        lang = "zh" if i < 2 else "en"
        zh_city, en_city, timezone = TOOLS["cities"][[0, 4, 5, 7][i]]
        clock = f"{rng.randint(0, 23):02d}:{rng.randrange(0, 60, 5):02d}"
        question = f"{zh_city}现在几点？" if lang == "zh" else f"What time is it in {en_city} now?"
        answer = f"{zh_city}现在是 {clock}。" if lang == "zh" else f"It is {clock} in {en_city} now."
        exchange = tool_exchange(
            [call("get_current_time", timezone=timezone)], [{"timezone": timezone, "time": clock}]
        )
        convs.append(
            with_tools(lang, ["get_current_time", "get_weather"], [user(question)] + exchange + [bot(answer)])
        )
    return convs


def currency_conversations(rng):
    """Conversion with the rate the tool reports."""
    convs = []
    names = {code: (zh, en) for zh, en, code in TOOLS["currencies"]}
    for i, (source, target, rate) in enumerate(TOOLS["rates"]):
        lang = "zh" if i < 3 else "en"
        amount = rng.choice([20, 50, 100, 200, 500])
        value = round(amount * rate, 2)
        if lang == "zh":
            question = f"{amount} {names[source][0]}能换多少{names[target][0]}？"
            answer = f"按当前汇率 {rate}，{amount} {names[source][0]}约等于 {value:g} {names[target][0]}。"
        else:
            question = f"How many {names[target][1]} is {amount} {names[source][1]}?"
            answer = (
                f"At the current rate of {rate}, {amount} {names[source][1]} is about {value:g} {names[target][1]}."
            )
        result = {"amount": amount, "from": source, "to": target, "rate": rate, "result": value}
        exchange = tool_exchange(
            [call("convert_currency", amount=amount, from_currency=source, to_currency=target)], [result]
        )
        convs.append(with_tools(lang, ["convert_currency"], [user(question)] + exchange + [bot(answer)]))
    return convs


def tool_conversations(rng):
    convs = weather_conversations(rng) + calculator_conversations(rng) + clock_conversations(rng)
    convs += currency_conversations(rng)
    # Tools on offer do not mean a tool is needed.
    convs.append(
        with_tools(
            "zh",
            ["get_weather", "calculate"],
            [user(GREETINGS["zh"][0]["question"]), bot(GREETINGS["zh"][0]["answer"])],
        )
    )
    convs.append(
        with_tools("en", ["calculate"], [user(IDENTITY["questions"]["en"][0]), bot(IDENTITY["answer"]["en"])])
    )
    return convs
