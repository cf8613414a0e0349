"""Write the bundled demo data into minimind_hf/demo_data/: sft.jsonl, pretrain.jsonl and prompts.jsonl.

    python recipes/make_demo_data.py

Answers are either computed (arithmetic, unit conversion, tool results), looked up in the hand-written tables below,
or hand-written, so the data is correct by construction. A fixed seed makes the output byte-for-byte reproducible.

SFT records use MiniMind-3's layout: {"conversations": [{"role", "content", ...}]}. Tool definitions ride on the
system message as a JSON string under "tools"; an assistant's calls are a JSON string under "tool_calls" (strings keep
the Arrow schema uniform when `datasets` loads the file); reasoning sits under "reasoning_content".
"""

import argparse
import json
import random
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[1] / "minimind_hf" / "demo_data"
SEED = 1234

IDENTITY_ZH = "我是 MiniMind，一个小型语言模型。我可以回答问题、做简单的计算和翻译。"
IDENTITY_EN = "I am MiniMind, a small language model. I can answer questions, do simple math and translate."

# fmt: off
# (country zh, capital zh, country en, capital en)
CAPITALS = [
    ("中国", "北京", "China", "Beijing"), ("日本", "东京", "Japan", "Tokyo"), ("法国", "巴黎", "France", "Paris"),
    ("德国", "柏林", "Germany", "Berlin"), ("英国", "伦敦", "the United Kingdom", "London"),
    ("意大利", "罗马", "Italy", "Rome"), ("西班牙", "马德里", "Spain", "Madrid"), ("俄罗斯", "莫斯科", "Russia", "Moscow"),
    ("加拿大", "渥太华", "Canada", "Ottawa"), ("澳大利亚", "堪培拉", "Australia", "Canberra"),
    ("巴西", "巴西利亚", "Brazil", "Brasília"), ("印度", "新德里", "India", "New Delhi"), ("埃及", "开罗", "Egypt", "Cairo"),
    ("韩国", "首尔", "South Korea", "Seoul"), ("泰国", "曼谷", "Thailand", "Bangkok"),
    ("墨西哥", "墨西哥城", "Mexico", "Mexico City"), ("阿根廷", "布宜诺斯艾利斯", "Argentina", "Buenos Aires"),
    ("肯尼亚", "内罗毕", "Kenya", "Nairobi"), ("希腊", "雅典", "Greece", "Athens"), ("葡萄牙", "里斯本", "Portugal", "Lisbon"),
    ("挪威", "奥斯陆", "Norway", "Oslo"), ("瑞典", "斯德哥尔摩", "Sweden", "Stockholm"), ("土耳其", "安卡拉", "Turkey", "Ankara"),
    ("越南", "河内", "Vietnam", "Hanoi"), ("波兰", "华沙", "Poland", "Warsaw"), ("爱尔兰", "都柏林", "Ireland", "Dublin"),
    ("新西兰", "惠灵顿", "New Zealand", "Wellington"), ("秘鲁", "利马", "Peru", "Lima"), ("奥地利", "维也纳", "Austria", "Vienna"),
    ("芬兰", "赫尔辛基", "Finland", "Helsinki"), ("丹麦", "哥本哈根", "Denmark", "Copenhagen"), ("古巴", "哈瓦那", "Cuba", "Havana"),
    ("匈牙利", "布达佩斯", "Hungary", "Budapest"),
]

WORDS = [  # (zh, en)
    ("苹果", "apple"), ("猫", "cat"), ("狗", "dog"), ("水", "water"), ("书", "book"), ("太阳", "sun"), ("月亮", "moon"),
    ("朋友", "friend"), ("学校", "school"), ("老师", "teacher"), ("电脑", "computer"), ("音乐", "music"),
    ("花", "flower"), ("山", "mountain"), ("河", "river"), ("雨", "rain"), ("雪", "snow"), ("火车", "train"),
    ("飞机", "airplane"), ("医生", "doctor"), ("鸟", "bird"), ("鱼", "fish"), ("房子", "house"), ("牛奶", "milk"),
    ("面包", "bread"), ("米饭", "rice"), ("时间", "time"), ("世界", "world"), ("春天", "spring"), ("夏天", "summer"),
    ("秋天", "autumn"), ("冬天", "winter"), ("红色", "red"), ("蓝色", "blue"), ("绿色", "green"), ("谢谢", "thank you"),
    ("再见", "goodbye"), ("早上好", "good morning"), ("星星", "star"), ("大海", "sea"),
]
SENTENCES = [  # (zh, en)
    ("我喜欢读书。", "I like reading."), ("今天天气很好。", "The weather is nice today."),
    ("你叫什么名字？", "What is your name?"), ("我们明天见。", "See you tomorrow."),
    ("这本书很有意思。", "This book is very interesting."), ("我正在学习中文。", "I am learning Chinese."),
    ("请给我一杯水。", "Please give me a glass of water."), ("他每天早上跑步。", "He runs every morning."),
    ("外面正在下雨。", "It is raining outside."), ("我的猫喜欢睡觉。", "My cat likes to sleep."),
]
ANTONYMS_ZH = [("大", "小"), ("高", "矮"), ("快", "慢"), ("冷", "热"), ("多", "少"), ("长", "短"), ("新", "旧"), ("开", "关"),
               ("上", "下"), ("左", "右"), ("黑", "白"), ("远", "近"), ("早", "晚"), ("胖", "瘦")]
ANTONYMS_EN = [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("up", "down"), ("happy", "sad"), ("early", "late"),
               ("light", "dark"), ("open", "closed"), ("full", "empty"), ("strong", "weak"), ("rich", "poor"),
               ("always", "never")]

# (unit zh, unit zh, unit en, unit en, factor): n units of the first kind are n * factor of the second.
UNITS = [("公里", "米", "kilometers", "meters", 1000), ("米", "厘米", "meters", "centimeters", 100),
         ("千克", "克", "kilograms", "grams", 1000), ("小时", "分钟", "hours", "minutes", 60),
         ("分钟", "秒", "minutes", "seconds", 60), ("天", "小时", "days", "hours", 24),
         ("升", "毫升", "liters", "milliliters", 1000), ("周", "天", "weeks", "days", 7)]
WEEKDAYS_ZH = ["一", "二", "三", "四", "五", "六", "日"]
WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

FACTS_ZH = [
    ("什么是光合作用？", "光合作用是绿色植物利用光能，把二氧化碳和水转化为葡萄糖等有机物并释放氧气的过程。它主要在叶绿体中进行。"),
    ("水的化学式是什么？", "水的化学式是 H2O，一个水分子由两个氢原子和一个氧原子组成。"),
    ("地球绕太阳转一圈需要多长时间？", "大约 365.25 天，也就是一年。多出来的约四分之一天，正是每四年设置一次闰年的原因。"),
    ("太阳系中最大的行星是哪一颗？", "太阳系中最大的行星是木星。"),
    ("离太阳最近的行星是哪一颗？", "离太阳最近的行星是水星。"),
    ("太阳系有几颗行星？", "太阳系有八颗行星，按离太阳由近到远依次是：水星、金星、地球、火星、木星、土星、天王星和海王星。"),
    ("在标准大气压下，水的沸点是多少？", "在标准大气压下，水的沸点是 100 摄氏度。"),
    ("冰在多少度融化？", "在标准大气压下，冰在 0 摄氏度融化。"),
    ("什么是质数？", "质数是大于 1、并且只能被 1 和它本身整除的自然数，例如 2、3、5、7、11。"),
    ("勾股定理说的是什么？", "在直角三角形中，两条直角边的平方和等于斜边的平方，即 a² + b² = c²。例如边长 3、4、5 就满足 9 + 16 = 25。"),
    ("光在真空中的速度是多少？", "光在真空中的速度约为每秒 30 万公里，精确值是 299792458 米每秒。"),
    ("什么是语言模型？", "语言模型是根据前面的文字预测下一个词（或 token）的模型。不断重复这个预测，就能一段一段地生成文本。"),
    ("什么是机器学习？", "机器学习是让计算机从数据中总结规律的方法，而不是由人逐条编写规则。"),
    ("什么是监督微调？", "监督微调（SFT）是在预训练模型的基础上，用“问题—回答”形式的对话数据继续训练，让模型学会按对话格式回答。训练时通常只对助手的回答计算损失。"),
    ("什么是分词器？", "分词器把文本切分成 token，并把每个 token 映射成一个整数编号。语言模型读写的其实是这些编号。"),
    ("成年人有多少块骨头？", "成年人通常有 206 块骨头。"),
    ("中国最长的河流是哪条？", "中国最长的河流是长江，全长约 6300 公里。"),
    ("世界上最高的山峰是什么？", "世界上最高的山峰是珠穆朗玛峰，海拔约 8849 米。"),
    ("一天有多少小时？", "一天有 24 小时。"),
    ("一年有几个月？", "一年有 12 个月。"),
    ("为什么月亮会有圆缺变化？", "月亮本身不发光，而是反射太阳光。月亮绕地球运行时，我们看到的被照亮部分不断变化，于是出现新月、上弦月、满月和下弦月。"),
    ("为什么天空是蓝色的？", "阳光穿过大气层时，波长较短的蓝光比红光更容易被空气分子散射，散射的蓝光从四面八方进入眼睛，所以天空看起来是蓝色的。"),
    ("什么是 DNA？", "DNA（脱氧核糖核酸）是携带遗传信息的分子，呈双螺旋结构，用 A、T、C、G 四种碱基的排列顺序来记录信息。"),
    ("什么是重力？", "重力是地球对物体的吸引力，它让物体落向地面。在地球表面，重力加速度约为 9.8 米每二次方秒。"),
    ("一周有几天？", "一周有七天，从星期一到星期日。"),
    ("什么是神经网络？", "神经网络是由许多相连的“神经元”组成的计算模型。每一层把输入加权求和，再经过非线性函数，训练时不断调整这些权重。"),
    ("人呼吸需要什么气体？", "人呼吸需要氧气，呼出的气体中含有较多二氧化碳。"),
    ("长城是什么？", "长城是中国古代修建的军事防御工程，绵延上万里，今天保存最完整的大多是明代修建的部分。"),
    ("彩虹是怎么形成的？", "阳光进入空气中的小水滴后发生折射和反射，不同颜色的光偏折角度不同，于是分开形成彩虹。"),
    ("三角形的内角和是多少度？", "三角形的内角和是 180 度。"),
]
FACTS_EN = [
    ("What is photosynthesis?", "Photosynthesis is the process in which green plants use light energy to turn carbon dioxide and water into sugar, releasing oxygen. It takes place mainly in the chloroplasts."),
    ("What is the chemical formula of water?", "The chemical formula of water is H2O: two hydrogen atoms bonded to one oxygen atom."),
    ("How many planets are in the Solar System?", "There are eight planets. In order from the Sun: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune."),
    ("What is the largest planet in the Solar System?", "The largest planet in the Solar System is Jupiter."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("What is the boiling point of water?", "At sea level, water boils at 100 °C, which is 212 °F."),
    ("What is a prime number?", "A prime number is a whole number greater than 1 whose only divisors are 1 and itself, such as 2, 3, 5, 7 and 11."),
    ("What does the Pythagorean theorem say?", "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides: a² + b² = c². For example, 3² + 4² = 5²."),
    ("How fast does light travel?", "In a vacuum, light travels at about 300,000 kilometers per second (exactly 299,792,458 meters per second)."),
    ("What is a language model?", "A language model predicts the next word (or token) from the text before it. Repeating that prediction lets it generate text one piece at a time."),
    ("What is machine learning?", "Machine learning is a way of letting computers learn patterns from data instead of following rules written by hand."),
    ("What is a tokenizer?", "A tokenizer splits text into tokens and maps each token to an integer id. A language model reads and writes these ids."),
    ("What is supervised fine-tuning?", "Supervised fine-tuning (SFT) continues training a pretrained model on example conversations, so it learns to answer in a chat format. Usually only the assistant's replies count toward the loss."),
    ("Why is the sky blue?", "Sunlight is scattered by air molecules, and blue light, with its shorter wavelength, is scattered much more than red light. That scattered blue light reaches our eyes from every direction."),
    ("What is DNA?", "DNA (deoxyribonucleic acid) is the molecule that carries genetic information. It is a double helix, and the order of its four bases, A, T, C and G, encodes the information."),
    ("How many bones does an adult human have?", "An adult human usually has 206 bones."),
    ("What is the tallest mountain in the world?", "Mount Everest is the tallest mountain in the world, about 8,849 meters above sea level."),
    ("How many continents are there?", "There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America."),
    ("What is gravity?", "Gravity is the force that pulls objects toward each other. On Earth it makes things fall, accelerating them at about 9.8 meters per second squared."),
    ("How many days are in a leap year?", "A leap year has 366 days; the extra day is February 29."),
    ("What gas do people need to breathe?", "People need oxygen to breathe, and they breathe out carbon dioxide."),
    ("What is the sum of the angles in a triangle?", "The angles of a triangle always add up to 180 degrees."),
]

WRITING_ZH = [
    ("写一句关于春天的短诗。", "春风轻轻吹过田野，\n桃花把笑容开满枝头。"),
    ("帮我写一句感谢老师的话。", "老师，谢谢您耐心的教导，是您让我爱上了学习！"),
    ("用一句话描述大海。", "大海辽阔而深蓝，浪花一遍又一遍地拍打着沙滩。"),
    ("写一个关于读书的口号。", "多读一本书，多看一片天。"),
    ("给朋友写一句生日祝福。", "生日快乐！愿你新的一岁健康、开心，梦想一个个成真。"),
    ("用三个词形容秋天。", "金黄、凉爽、丰收。"),
    ("写一句鼓励学习的话。", "每天进步一点点，坚持下去就会看到很大的改变。"),
    ("写一段简短的自我介绍。", "大家好，我是 MiniMind，一个小型语言模型。我的参数不多，但我会认真回答问题，也很乐意陪你练习中文和英文。"),
    ("写两句关于月亮的诗。", "一轮明月挂在窗前，\n把清冷的光洒满小院。"),
]
WRITING_EN = [
    ("Write a two-line poem about the moon.", "A silver lamp above the hill,\nthe quiet moon keeps watch until dawn."),
    ("Write a short thank-you note to a friend.", "Thank you for helping me move last weekend. I could not have done it without you, and dinner is on me next time!"),
    ("Give me a slogan for saving water.", "Every drop counts: turn off the tap!"),
    ("Describe a rainy day in one sentence.", "Gray clouds hang low, and soft rain taps on the windows all afternoon."),
    ("Write a birthday message for my sister.", "Happy birthday to the best sister in the world! I hope this year brings you joy, good health and lots of cake."),
    ("Suggest three names for a small cat.", "How about Mochi, Pepper or Biscuit?"),
    ("Introduce yourself in two sentences.", "Hello, I am MiniMind, a small language model. I am tiny, but I try my best to give short and correct answers."),
]

CODE_ZH = [
    ("用 Python 写一个反转字符串的函数。", "```python\ndef reverse_string(s):\n    return s[::-1]\n```\n例如 reverse_string(\"abc\") 返回 \"cba\"。"),
    ("用 Python 计算一个列表中所有数字的和。", "可以直接用内置函数 sum：\n```python\nnumbers = [3, 5, 8]\nprint(sum(numbers))  # 16\n```"),
    ("写一个判断质数的 Python 函数。", "```python\ndef is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n```\n例如 is_prime(7) 返回 True，is_prime(9) 返回 False。"),
    ("Python 中怎样读取文本文件的所有行？", "```python\nwith open(\"data.txt\", encoding=\"utf-8\") as f:\n    lines = f.read().splitlines()\n```\nlines 是一个列表，每个元素是一行文字。"),
    ("用 Python 写一个求阶乘的函数。", "```python\ndef factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result\n```\n例如 factorial(5) 返回 120。"),
    ("在 Python 中如何交换两个变量的值？", "用一行元组赋值即可：\n```python\na, b = b, a\n```"),
    ("Python 中如何把字符串转成大写？", "使用 upper 方法：\n```python\nprint(\"hello\".upper())  # HELLO\n```"),
]
CODE_EN = [
    ("Write a Python function that checks whether a number is even.", "```python\ndef is_even(n):\n    return n % 2 == 0\n```\nFor example, is_even(4) returns True and is_even(7) returns False."),
    ("How do I get the length of a list in Python?", "Use the built-in len function:\n```python\nitems = [1, 2, 3]\nprint(len(items))  # 3\n```"),
    ("Write a Python function that returns the first n Fibonacci numbers.", "```python\ndef fibonacci(n):\n    result = []\n    a, b = 0, 1\n    for _ in range(n):\n        result.append(a)\n        a, b = b, a + b\n    return result\n```\nfibonacci(7) returns [0, 1, 1, 2, 3, 5, 8]."),
    ("How do I sort a list of numbers from largest to smallest in Python?", "```python\nnums = [3, 1, 2]\nprint(sorted(nums, reverse=True))  # [3, 2, 1]\n```"),
    ("Square every number in a list with one line of Python.", "```python\nsquares = [x * x for x in nums]\n```"),
    ("How do I count the words in a string in Python?", "Split on whitespace and count the pieces:\n```python\ntext = \"the quick brown fox\"\nprint(len(text.split()))  # 4\n```"),
    ("Write a SQL query that selects every row from a table named users.", "```sql\nSELECT * FROM users;\n```"),
]

GREETINGS_ZH = [
    ("你好", "你好！我是 MiniMind，有什么可以帮你的吗？"), ("你好呀！", "你好！我是 MiniMind，有什么可以帮你的吗？"),
    ("早上好", "早上好！祝你今天一切顺利。有什么我可以帮忙的吗？"), ("晚上好", "晚上好！有什么想聊的吗？"),
    ("谢谢你", "不客气！很高兴能帮到你。"), ("非常感谢！", "不客气！很高兴能帮到你。"),
    ("再见", "再见！期待下次和你聊天。"), ("你今天过得怎么样？", "我是语言模型，没有真实的一天，不过很乐意陪你聊天。你今天过得怎么样？"),
    ("我有点累了。", "辛苦了！可以先休息一下，喝点水，放松放松。"), ("你会说英语吗？", "会的，我可以用中文和英文回答问题，也可以帮你做简单的翻译。"),
]
GREETINGS_EN = [
    ("Hello", "Hello! I am MiniMind. How can I help you today?"), ("Hi there!", "Hello! I am MiniMind. How can I help you today?"),
    ("Good morning", "Good morning! I hope you have a great day. What can I do for you?"),
    ("Thank you", "You are welcome! I am glad I could help."), ("Thanks a lot!", "You are welcome! I am glad I could help."),
    ("Goodbye", "Goodbye! Talk to you next time."), ("How are you?", "I am a language model, so I do not have feelings, but I am ready to help. How are you?"),
    ("Can you speak Chinese?", "Yes. I can answer in Chinese or English, and I can translate simple words and sentences."),
]
IDENTITY_Q_ZH = ["你是谁？", "请介绍一下你自己。", "你叫什么名字？", "你是什么模型？", "你是谁呀", "介绍一下你自己吧。", "你能做什么？"]
IDENTITY_Q_EN = ["Who are you?", "Please introduce yourself.", "What is your name?", "What kind of model are you?", "What can you do?"]
IDENTITY_EXTRA = [
    ("zh", "你是人类吗？", "不是，我是 MiniMind，一个小型语言模型，只能通过文字和你交流。"),
    ("zh", "你有多大？", "我是一个很小的语言模型，参数量只有几百万到一亿多，比大型模型小得多。"),
    ("en", "Are you a human?", "No, I am MiniMind, a small language model. I can only talk with you through text."),
    ("en", "How big are you?", "I am a very small language model, with only a few million to a couple of hundred million parameters."),
]

SYSTEM_ZH = ["你是 MiniMind，一个小型语言模型。请简洁准确地回答。", "你是一个乐于助人的助手。", "请用简短的句子回答问题。"]
SYSTEM_EN = ["You are MiniMind, a small language model. Answer briefly and accurately.", "You are a helpful assistant.",
             "Keep your answers short."]
# fmt: on


def function_spec(name, description, **params):
    properties = {key: {"type": kind, "description": text} for key, (kind, text) in params.items()}
    parameters = {"type": "object", "properties": properties, "required": list(params)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


TOOLS = {
    "get_weather": function_spec("get_weather", "Get the current weather of a city", city=("string", "City name")),
    "calculate": function_spec("calculate", "Evaluate an arithmetic expression", expression=("string", "e.g. 12 * 7")),
    "get_current_time": function_spec(
        "get_current_time", "Get the local time in a time zone", timezone=("string", "IANA name, e.g. Asia/Tokyo")
    ),
    "convert_currency": function_spec(
        "convert_currency",
        "Convert an amount of money between currencies",
        amount=("number", "Amount to convert"),
        from_currency=("string", "ISO code, e.g. USD"),
        to_currency=("string", "ISO code, e.g. CNY"),
    ),
}
# fmt: off
CITIES = [  # (zh, en, time zone)
    ("北京", "Beijing", "Asia/Shanghai"), ("上海", "Shanghai", "Asia/Shanghai"), ("广州", "Guangzhou", "Asia/Shanghai"),
    ("成都", "Chengdu", "Asia/Shanghai"), ("东京", "Tokyo", "Asia/Tokyo"), ("伦敦", "London", "Europe/London"),
    ("巴黎", "Paris", "Europe/Paris"), ("纽约", "New York", "America/New_York"),
]
CURRENCIES = [("美元", "US dollars", "USD"), ("欧元", "euros", "EUR"), ("日元", "Japanese yen", "JPY"), ("元人民币", "Chinese yuan", "CNY")]
RATES = {("USD", "CNY"): 7.1, ("EUR", "CNY"): 7.8, ("CNY", "JPY"): 20.5, ("USD", "EUR"): 0.92, ("EUR", "USD"): 1.09}
# fmt: on


# ---------------------------------------------------------------- message helpers


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


# ---------------------------------------------------------------- single-turn generators (each returns qa items)


def identity_items():
    items = [qa("zh", q, IDENTITY_ZH) for q in IDENTITY_Q_ZH] + [qa("en", q, IDENTITY_EN) for q in IDENTITY_Q_EN]
    items += [qa(lang, q, a) for lang, q, a in IDENTITY_EXTRA]
    return items


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


def translate_zh(zh, en, style=0):
    question = ["把“{}”翻译成英文。", "“{}”用英语怎么说？"][style % 2].format(zh)
    return qa("zh", question, f"“{zh}”的英文是 {en}。")


def translate_en(zh, en, style=0):
    question = ['Translate "{}" into Chinese.', 'How do you say "{}" in Chinese?'][style % 2].format(en)
    return qa("en", question, f'"{en}" in Chinese is {zh}.')


def translation_items():
    items = []
    for i, (zh, en) in enumerate(WORDS):
        items.append(translate_zh(zh, en, i))
        if i % 5 == 0:
            items.append(translate_en(zh, en, i // 5))
    for zh, en in SENTENCES:
        items.append(qa("zh", f"把这句话翻译成英文：{zh}", en))
        items.append(qa("en", f"Translate into Chinese: {en}", zh))
    for a, b in ANTONYMS_ZH:
        items.append(qa("zh", f"“{a}”的反义词是什么？", f"“{a}”的反义词是“{b}”。"))
    for a, b in ANTONYMS_EN:
        items.append(qa("en", f'What is the opposite of "{a}"?', f'The opposite of "{a}" is "{b}".'))
    return items


def free_form_items():
    items = []
    for lang, table in [
        ("zh", FACTS_ZH + WRITING_ZH + CODE_ZH + GREETINGS_ZH),
        ("en", FACTS_EN + WRITING_EN + CODE_EN + GREETINGS_EN),
    ]:
        items += [qa(lang, q, a) for q, a in table]
    return items


def primes_up_to(n):
    return [p for p in range(2, n + 1) if all(p % d for d in range(2, p))]


def smallest_factor(n):
    return next((d for d in range(2, n) if d * d <= n and n % d == 0), None)


REASONING_HANDWRITTEN = [
    (
        "zh",
        "0.9 和 0.11 哪个大？",
        "先比整数部分，都是 0。再比十分位：0.9 的十分位是 9，0.11 的十分位是 1，9 大于 1。",
        "0.9 比 0.11 大。",
    ),
    ("zh", "一个长方形长 8 米、宽 5 米，面积是多少？", "长方形面积 = 长 × 宽 = 8 × 5 = 40。", "面积是 40 平方米。"),
    ("zh", "一本书 25 元，买 4 本需要多少钱？", "单价 25 元，买 4 本：25 × 4 = 100。", "买 4 本需要 100 元。"),
    (
        "zh",
        "鸡和兔共有 10 只，腿共有 28 条，鸡和兔各有几只？",
        "假设 10 只都是鸡，应有 20 条腿，比实际少 28 - 20 = 8 条。每把一只鸡换成兔，腿会多 2 条，所以兔有 8 ÷ 2 = 4 只，"
        "鸡有 10 - 4 = 6 只。检查：6 × 2 + 4 × 4 = 12 + 16 = 28。",
        "鸡有 6 只，兔有 4 只。",
    ),
    (
        "en",
        "Which is larger, 0.8 or 0.75?",
        "Both whole parts are 0. Compare the tenths: 8 tenths against 7 tenths, and 8 > 7.",
        "0.8 is larger than 0.75.",
    ),
    (
        "en",
        "A train travels 60 km per hour. How far does it go in 3 hours?",
        "Distance = speed × time = 60 × 3 = 180.",
        "It travels 180 km.",
    ),
    (
        "en",
        "I have 3 boxes with 12 eggs in each. How many eggs do I have?",
        "3 boxes × 12 eggs = 36 eggs.",
        "You have 36 eggs.",
    ),
]


def reasoning_items(rng):
    items = [qa(lang, q, a, r) for lang, q, r, a in REASONING_HANDWRITTEN]
    for i in range(13):  # two-digit multiplication, split into tens and ones
        a, tens, ones = rng.randint(12, 49), rng.randint(1, 3) * 10, rng.randint(1, 9)
        b, p1, p2 = tens + ones, a * tens, a * ones
        if i < 8:
            reasoning = f"把 {b} 拆成 {tens} 和 {ones}：{a} × {tens} = {p1}，{a} × {ones} = {p2}。两部分相加：{p1} + {p2} = {p1 + p2}。"
            items.append(qa("zh", f"计算 {a} × {b}，请一步一步算。", f"{a} × {b} = {a * b}。", reasoning))
        else:
            reasoning = f"Split {b} into {tens} and {ones}: {a} × {tens} = {p1} and {a} × {ones} = {p2}. Add them: {p1} + {p2} = {p1 + p2}."
            items.append(qa("en", f"What is {a} × {b}? Work it out step by step.", f"{a} × {b} = {a * b}.", reasoning))
    for i in range(11):  # give some away, buy some more
        x = rng.randint(10, 30)
        y, z = rng.randint(1, x - 1), rng.randint(1, 15)
        left, total = x - y, x - y + z
        if i < 6:
            name, item = ["小明", "小红", "小华", "小丽"][i % 4], ["苹果", "橘子", "鸡蛋", "气球", "面包"][i % 5]
            question = f"{name}有 {x} 个{item}，送给朋友 {y} 个，又买了 {z} 个。{name}现在有多少个{item}？"
            reasoning = (
                f"一开始有 {x} 个。送出 {y} 个后剩下 {x} - {y} = {left} 个。又买了 {z} 个：{left} + {z} = {total} 个。"
            )
            items.append(qa("zh", question, f"{name}现在有 {total} 个{item}。", reasoning))
        else:
            (name, pronoun), item = (
                [("Tom", "He"), ("Anna", "She"), ("Leo", "He"), ("Mia", "She")][i % 4],
                ["apples", "pencils", "stickers", "marbles"][i % 4],
            )
            question = f"{name} has {x} {item}. {pronoun} gives {y} to a friend and then buys {z} more. How many {item} does {name} have now?"
            reasoning = f"Start with {x}. After giving away {y}: {x} - {y} = {left}. After buying {z} more: {left} + {z} = {total}."
            items.append(qa("en", question, f"{name} now has {total} {item}.", reasoning))
    for i in range(7):  # day of the week after n days
        d, n = rng.randint(0, 6), rng.randint(2, 30)
        r, res = n % 7, (d + n) % 7
        if i < 4:
            step = (
                f"从星期{WEEKDAYS_ZH[d]}往后数 {r} 天是星期{WEEKDAYS_ZH[res]}。"
                if r
                else f"余数为 0，所以还是星期{WEEKDAYS_ZH[d]}。"
            )
            items.append(
                qa(
                    "zh",
                    f"今天是星期{WEEKDAYS_ZH[d]}，{n} 天后是星期几？",
                    f"{n} 天后是星期{WEEKDAYS_ZH[res]}。",
                    f"一周有 7 天，{n} ÷ 7 = {n // 7} 余 {r}。{step}",
                )
            )
        else:
            step = (
                f"Counting {r} days forward from {WEEKDAYS_EN[d]} gives {WEEKDAYS_EN[res]}."
                if r
                else f"The remainder is 0, so it is {WEEKDAYS_EN[d]} again."
            )
            items.append(
                qa(
                    "en",
                    f"If today is {WEEKDAYS_EN[d]}, what day of the week will it be in {n} days?",
                    f"In {n} days it will be {WEEKDAYS_EN[res]}.",
                    f"A week has 7 days. {n} ÷ 7 = {n // 7} remainder {r}. {step}",
                )
            )
    for i, n in enumerate(rng.sample(range(20, 120), 7)):  # primality
        d, small_primes = smallest_factor(n), primes_up_to(int(n**0.5))
        if i < 4:
            if d:
                items.append(
                    qa(
                        "zh",
                        f"{n} 是质数吗？",
                        f"{n} 不是质数，因为 {n} = {d} × {n // d}。",
                        f"检查不超过 √{n} 的数：{n} ÷ {d} = {n // d}，能整除。",
                    )
                )
            else:
                listed = "、".join(map(str, small_primes))
                items.append(
                    qa(
                        "zh",
                        f"{n} 是质数吗？",
                        f"{n} 是质数。",
                        f"不超过 √{n} 的质数有 {listed}，它们都不能整除 {n}。",
                    )
                )
        elif d:
            items.append(
                qa(
                    "en",
                    f"Is {n} a prime number?",
                    f"No. {n} is not prime, because {n} = {d} × {n // d}.",
                    f"Try divisors up to √{n}: {n} ÷ {d} = {n // d} with no remainder.",
                )
            )
        else:
            listed = ", ".join(map(str, small_primes))
            items.append(
                qa(
                    "en",
                    f"Is {n} a prime number?",
                    f"Yes, {n} is a prime number.",
                    f"The primes up to √{n} are {listed}, and none of them divides {n}.",
                )
            )
    return items


# ---------------------------------------------------------------- tool use

TOOL_SYSTEM = {
    "zh": "你是 MiniMind，一个可以调用工具的小助手。",
    "en": "You are MiniMind, a small assistant that can call tools.",
}
# fmt: off
WEATHER = [  # tool report zh, phrase zh, report en, lowest and highest plausible temperature (°C)
    ("晴", "晴", "sunny", -5, 35), ("多云", "多云", "cloudy", -5, 33), ("阴", "阴天", "overcast", -5, 30),
    ("小雨", "下小雨", "rainy", 3, 28), ("雪", "下雪", "snowy", -10, 1),
]
# fmt: on


def call(name, **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def tool_exchange(calls, results, preface=""):
    """An assistant turn that calls tools, then one tool message per result."""
    messages = [{"role": "assistant", "content": preface, "tool_calls": json.dumps(calls, ensure_ascii=False)}]
    return messages + [{"role": "tool", "content": json.dumps(r, ensure_ascii=False)} for r in results]


def weather(rng, lang, city_index):
    zh_city, en_city, _ = CITIES[city_index]
    report_zh, phrase_zh, report_en, low, high = rng.choice(WEATHER)
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


def tool_conversations(rng):
    convs = []

    def add(lang, tool_names, messages):
        tools = json.dumps([TOOLS[name] for name in tool_names], ensure_ascii=False)
        convs.append(
            {"lang": lang, "messages": [{"role": "system", "content": TOOL_SYSTEM[lang], "tools": tools}] + messages}
        )

    for i in range(10):  # one city, or two cities in parallel calls
        lang, pair = ("zh" if i < 6 else "en"), i in (2, 8)
        a, b = rng.sample(range(len(CITIES)), 2)
        call_a, result_a, answer_a = weather(rng, lang, a)
        calls, results, answer = [call_a], [result_a], answer_a
        if pair:
            call_b, result_b, answer_b = weather(rng, lang, b)
            calls, results, answer = (
                [call_a, call_b],
                [result_a, result_b],
                answer_a + ("" if lang == "zh" else " ") + answer_b,
            )
        names = [c["function"]["arguments"]["city"] for c in calls]
        if lang == "zh":
            question = f"{'和'.join(names)}现在天气怎么样？"
        else:
            question = f"What is the weather like in {' and '.join(names)} right now?"
        preface = "我来查一下。" if i == 1 else ""
        messages = [user(question)] + tool_exchange(calls, results, preface) + [bot(answer)]
        if i in (0, 7):
            messages += (
                [user("谢谢！"), bot("不客气！很高兴能帮到你。")]
                if lang == "zh"
                else [user("Thanks!"), bot("You are welcome! I am glad I could help.")]
            )
        add(lang, ["get_weather", "get_current_time"] if i % 3 == 0 else ["get_weather"], messages)

    for i in range(7):  # calculator
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
        add(lang, ["calculate"], [user(question)] + exchange + [bot(f"{a} {sign} {b} = {value}{end}")])

    for i in range(4):  # local time
        lang = "zh" if i < 2 else "en"
        zh_city, en_city, timezone = CITIES[[0, 4, 5, 7][i]]
        clock = f"{rng.randint(0, 23):02d}:{rng.randrange(0, 60, 5):02d}"
        question = f"{zh_city}现在几点？" if lang == "zh" else f"What time is it in {en_city} now?"
        answer = f"{zh_city}现在是 {clock}。" if lang == "zh" else f"It is {clock} in {en_city} now."
        exchange = tool_exchange(
            [call("get_current_time", timezone=timezone)], [{"timezone": timezone, "time": clock}]
        )
        add(lang, ["get_current_time", "get_weather"], [user(question)] + exchange + [bot(answer)])

    for i, (source, target) in enumerate(RATES):  # currency conversion with the rate the tool reports
        lang = "zh" if i < 3 else "en"
        names = {code: (zh, en) for zh, en, code in CURRENCIES}
        amount, rate = rng.choice([20, 50, 100, 200, 500]), RATES[(source, target)]
        value = round(amount * rate, 2)
        value_text = f"{value:g}"
        if lang == "zh":
            question = f"{amount} {names[source][0]}能换多少{names[target][0]}？"
            answer = f"按当前汇率 {rate}，{amount} {names[source][0]}约等于 {value_text} {names[target][0]}。"
        else:
            question = f"How many {names[target][1]} is {amount} {names[source][1]}?"
            answer = (
                f"At the current rate of {rate}, {amount} {names[source][1]} is about {value_text} {names[target][1]}."
            )
        result = {"amount": amount, "from": source, "to": target, "rate": rate, "result": value}
        exchange = tool_exchange(
            [call("convert_currency", amount=amount, from_currency=source, to_currency=target)], [result]
        )
        add(lang, ["convert_currency"], [user(question)] + exchange + [bot(answer)])

    # Tools on offer do not mean a tool is needed.
    add("zh", ["get_weather", "calculate"], [user("你好"), bot(GREETINGS_ZH[0][1])])
    add("en", ["calculate"], [user("Who are you?"), bot(IDENTITY_EN)])
    return convs


# ---------------------------------------------------------------- multi-turn


def follow_up_conversations(rng):
    """Second turns that only make sense with the first one in context."""
    convs = []
    for i in range(12):
        (czh1, capzh1, cen1, capen1), (czh2, capzh2, cen2, capen2) = rng.sample(CAPITALS, 2)
        if i < 7:
            first, follow = capital_zh(czh1, capzh1, i), [user(f"那{czh2}呢？"), bot(f"{czh2}的首都是{capzh2}。")]
        else:
            first, follow = (
                capital_en(cen1, capen1, i),
                [user(f"What about {cen2}?"), bot(f"The capital of {cen2} is {capen2}.")],
            )
        convs.append({"lang": first["lang"], "messages": first["messages"] + follow})
    for i in range(8):
        a, b, k = rng.randint(1, 50), rng.randint(1, 50), rng.randint(2, 5)
        s = a + b
        if i < 5:
            messages = add_zh(a, b, i)["messages"] + [user(f"再乘以 {k} 呢？"), bot(f"{s} × {k} = {s * k}。")]
        else:
            messages = [
                user(f"What is {a} + {b}?"),
                bot(f"{a} + {b} = {s}."),
                user(f"And if you multiply that by {k}?"),
                bot(f"{s} × {k} = {s * k}."),
            ]
        convs.append({"lang": "zh" if i < 5 else "en", "messages": messages})
    for i in range(8):
        (zh1, en1), (zh2, en2), (zh3, en3) = rng.sample(WORDS, 3)
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


def build_sft(rng):
    singles = (
        identity_items()
        + capital_items()
        + arithmetic_items(rng)
        + unit_items(rng)
        + translation_items()
        + free_form_items()
        + reasoning_items(rng)
    )
    convs = singles + identity_items() + follow_up_conversations(rng) + mixed_conversations(rng, singles, 10, 6)
    for conv in convs:  # some conversations open with a system prompt
        if rng.random() < 0.15:
            conv["messages"] = [
                {"role": "system", "content": rng.choice(SYSTEM_ZH if conv["lang"] == "zh" else SYSTEM_EN)}
            ] + conv["messages"]
    convs += tool_conversations(rng)
    rng.shuffle(convs)
    return convs


# ---------------------------------------------------------------- pretraining text

# fmt: off
PROSE_ZH = [
    "MiniMind 是一个小型语言模型。它的参数很少，可以在普通电脑上训练，适合用来学习大模型是怎样工作的。",
    "训练一个语言模型通常分为两步：先在大量文本上预训练，学会续写句子；再用对话数据做监督微调，学会回答问题。",
    "春天来了，河边的柳树长出了嫩绿的新芽。孩子们在草地上放风筝，笑声传得很远。",
    "夏天的午后，知了在树上不停地叫。奶奶在院子里摇着扇子，给我们讲过去的故事。",
    "秋天是收获的季节。田里的稻子变成了金黄色，农民们忙着收割，脸上露出了笑容。",
    "冬天的早晨，窗户上结了一层薄薄的冰花。出门时要穿上厚外套，戴好手套和围巾。",
    "读书可以让人看到更大的世界。每天读十几页，一年下来就能读完好几本书。",
    "运动对身体有好处。每天散步半小时，可以让心情变好，晚上也更容易睡着。",
    "水是生命之源。人每天需要喝足够的水，少喝含糖饮料对健康更有益。",
    "做数学题时，先读懂题目，再写出已知条件，最后一步一步计算，并检查答案是否合理。",
    "计算机只认识数字。为了让计算机处理文字，我们先用分词器把文字切成小块，再把每一块换成一个编号。",
    "学习一门外语，最重要的是多听、多说、多练习。哪怕每天只学五个新单词，坚持下来也会有很大进步。",
    "地球是太阳系中唯一已知存在生命的行星。它有一颗天然卫星，就是月球。",
    "下雨前，空气往往变得潮湿，天上的云也越来越厚。雨后，空气清新，有时还能看到彩虹。",
    "小猫喜欢在阳光下睡觉，小狗喜欢在院子里跑来跑去。它们都是人类的好朋友。",
    "图书馆里很安静，大家都在认真看书。借书时要爱护书本，按时归还。",
    "写程序时，给变量起一个清楚的名字，可以让别人更容易读懂你的代码。",
    "好的问题往往比答案更重要。遇到不懂的地方，大胆提问是学习的好习惯。",
    "火车站里人来人往。有人拖着行李箱匆匆赶路，有人在候车室里安静地等待。",
    "做饭是一门学问。同样的食材，火候和调味不同，做出来的味道也完全不同。",
    "植物的根从土壤里吸收水分，叶子在阳光下制造养分，花朵结出种子，生命就这样延续下去。",
    "一个语言模型在回答问题时，并不是查字典，而是根据学过的大量文本，一个词一个词地预测下去。",
    "蜜蜂在花丛中飞来飞去，采集花蜜，同时把花粉从一朵花带到另一朵花，帮助植物结出果实。",
    "月亮绕着地球转，地球绕着太阳转。一个月大约是月亮绕地球一圈的时间，一年是地球绕太阳一圈的时间。",
    "早睡早起身体好。睡前少看手机，让大脑慢慢安静下来，第二天会更有精神。",
    "城市的夜晚灯火通明，高楼上的窗户一格一格亮着，街上的车流像一条发光的河。",
    "爷爷的菜园里种着番茄、黄瓜和辣椒。每到傍晚，他都会提着水壶去浇水。",
    "熊猫是中国特有的动物，主要吃竹子。它们看起来憨态可掬，深受大家喜爱。",
    "长江和黄河是中国的两条大河，它们孕育了悠久的中华文明。",
    "骑自行车上学既环保又能锻炼身体，但一定要遵守交通规则，注意安全。",
    "沙漠里白天很热，夜晚却很冷。骆驼能够很多天不喝水，被称为“沙漠之舟”。",
    "海洋覆盖了地球表面的大约七成。海里生活着鲸鱼、海豚、海龟和无数的小鱼。",
    "整理房间时，可以先把东西分成要留的和不要的两类，再给每样东西找一个固定的位置。",
    "做实验时要认真记录每一步的结果。即使结果和预想的不一样，也是有价值的发现。",
    "节约用电很简单：离开房间随手关灯，不用的电器拔掉插头。",
    "下棋能锻炼耐心和思考能力。每走一步之前，先想一想对手可能怎么应对。",
    "超市里的水果五颜六色：红红的苹果、黄黄的香蕉、紫色的葡萄，看着就让人开心。",
    "写日记是记录生活的好办法。几年后再翻开，会发现自己成长了很多。",
]
PROSE_EN = [
    "MiniMind is a small language model. It has few parameters, so it can be trained on an ordinary computer, which makes it a good way to learn how large models work.",
    "Training a language model usually has two stages: pretraining on plain text teaches it to continue sentences, and supervised fine-tuning on conversations teaches it to answer questions.",
    "In spring the trees along the river turn green again, and children fly kites in the park.",
    "On summer evenings we sit outside, watch the sky turn orange and listen to the crickets.",
    "Autumn is harvest time. The fields turn gold, and the air smells of fallen leaves.",
    "In winter the mornings are cold and dark. A warm coat, a scarf and a cup of tea make them easier.",
    "Reading a few pages every day adds up. By the end of the year you may have finished a dozen books.",
    "A short walk after lunch helps you stay awake in the afternoon and sleep better at night.",
    "When you solve a math problem, write down what you know, work one step at a time and check that the answer makes sense.",
    "Computers only understand numbers. A tokenizer turns text into a list of integers so that a model can read it.",
    "Learning a new language takes patience. Listen a lot, speak often and do not be afraid of mistakes.",
    "The Earth is the only planet we know of that has life. Its one natural satellite is the Moon.",
    "Before it rains the air feels heavy and the clouds grow dark. After the rain the streets shine and the air feels fresh.",
    "Cats love to sleep in the sun, while dogs would rather run around the yard. Both are loyal friends.",
    "Good variable names make code easier to read. A name like total_price says more than a name like x.",
    "Asking a good question is often the first step toward a good answer.",
    "The train station is busy in the morning. People hurry to catch their trains, carrying coffee and bags.",
    "A language model does not look answers up in a dictionary. It predicts one token after another, based on the text it was trained on.",
    "Bees fly from flower to flower collecting nectar. Along the way they carry pollen, which helps plants make fruit and seeds.",
    "The Moon goes around the Earth, and the Earth goes around the Sun. A year is the time the Earth takes to circle the Sun once.",
    "Pandas live in the mountains of China and eat mostly bamboo. They spend a large part of the day eating.",
    "Riding a bike to school is good exercise and good for the air, as long as you wear a helmet and follow the traffic rules.",
    "Deserts are hot during the day but can be very cold at night. Camels can go for days without drinking water.",
    "Oceans cover about seventy percent of the Earth's surface and are home to whales, dolphins, turtles and countless fish.",
    "To tidy a room, first sort things into what you keep and what you give away, then give every item a fixed place.",
    "Keep careful notes during an experiment. A result you did not expect is still a result worth writing down.",
    "Saving electricity is easy: switch off the lights when you leave a room and unplug chargers you are not using.",
    "Chess teaches patience. Before every move, ask yourself what your opponent might do next.",
    "The market is full of color: red apples, yellow bananas, purple grapes and bright green peppers.",
    "Keeping a diary is a simple way to remember your life. Years later, you can read how much you have grown.",
    "A good night's sleep helps you learn. The brain sorts and stores what you practiced during the day.",
    "Rivers start as small streams in the hills, join together on the way down and finally flow into the sea.",
]
PEOPLE_ZH, ACTIVITIES_ZH = ["小明", "小红", "小华", "小丽", "王老师", "李医生"], [
    "去公园散步", "在家看书", "和朋友踢足球", "学习画画", "去河边钓鱼", "练习弹钢琴", "做蛋糕", "爬山"]
PEOPLE_EN, ACTIVITIES_EN = ["Tom", "Anna", "Leo", "Mia", "Mr. Green", "Dr. Lee"], [
    "walking in the park", "reading at home", "playing football with friends", "painting", "fishing by the river",
    "playing the piano", "baking cakes", "hiking"]
SEASONS_ZH, SEASONS_EN = ["春天", "夏天", "秋天", "冬天"], ["spring", "summer", "autumn", "winter"]
# fmt: on


def chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def build_pretrain(rng):
    lines = [IDENTITY_ZH, IDENTITY_EN] + PROSE_ZH + PROSE_EN
    lines += ["".join(f"{c}的首都是{cap}。" for c, cap, _, _ in group) for group in chunks(CAPITALS, 4)]
    lines += [" ".join(f"The capital of {c} is {cap}." for _, _, c, cap in group) for group in chunks(CAPITALS, 4)]
    lines += ["".join(f"“{zh}”的英文是 {en}。" for zh, en in group) for group in chunks(WORDS, 5)]
    lines += [" ".join(f'The Chinese word for "{en}" is {zh}.' for zh, en in group) for group in chunks(WORDS, 5)]
    lines += ["".join(f"1 {a}等于 {f} {b}。" for a, b, _, _, f in UNITS)]
    lines += [" ".join(f"One {a[:-1]} is {f} {b}." for _, _, a, b, f in UNITS)]
    lines += [
        "一周有七天：" + "、".join("星期" + d for d in WEEKDAYS_ZH) + "。",
        "The days of the week are " + ", ".join(WEEKDAYS_EN) + ".",
    ]
    for n in range(2, 10):
        lines.append(f"{n} 的乘法：" + "，".join(f"{n} × {k} = {n * k}" for k in range(1, 10)) + "。")
        lines.append(f"The {n} times table: " + ", ".join(f"{n} × {k} = {n * k}" for k in range(1, 10)) + ".")
    for _ in range(24):
        pairs = [(rng.randint(1, 99), rng.randint(1, 99)) for _ in range(4)]
        lines.append("".join(f"{a} 加 {b} 等于 {a + b}。" for a, b in pairs))
        lines.append(" ".join(f"{a} plus {b} equals {a + b}." for a, b in pairs))
    lines += [answer for _, answer in FACTS_ZH + FACTS_EN + WRITING_ZH + WRITING_EN + CODE_ZH + CODE_EN]
    for _ in range(48):
        person, activity, season = rng.choice(PEOPLE_ZH), rng.choice(ACTIVITIES_ZH), rng.randrange(4)
        _, capital, _, _ = rng.choice(CAPITALS)
        lines.append(f"{person}住在{capital}。{SEASONS_ZH[season]}的周末，{person}最喜欢{activity}。")
    for _ in range(32):
        person, activity, season = rng.choice(PEOPLE_EN), rng.choice(ACTIVITIES_EN), rng.randrange(4)
        _, _, _, capital = rng.choice(CAPITALS)
        lines.append(f"{person} lives in {capital}. On {SEASONS_EN[season]} weekends, {person} likes {activity} best.")
    return [{"text": line} for line in lines]


# ------------------------------------------- evaluation prompts: 8 from the SFT set, 4 held out (never trained on)


def eval_items():
    return [
        qa("zh", IDENTITY_Q_ZH[0], IDENTITY_ZH),
        qa("en", IDENTITY_Q_EN[0], IDENTITY_EN),
        capital_zh("德国", "柏林", 3),
        capital_en("France", "Paris", 2),
        add_zh(12, 7),
        translate_zh("猫", "cat", 1),
        unit_zh(3, "公里", "米", 1000),
        qa("en", *GREETINGS_EN[0]),
    ]


def held_out_items():
    """Questions no training conversation asks: a paraphrase of a trained fact, new numbers for a trained skill, a
    fact the data never states. A 1.6M model mostly fails them, which is the point: the trained prompts show recall."""
    return [
        capital_zh("德国", "柏林", 1),  # trained as "德国的首都是哪里？"
        add_zh(23, 45, 1),
        unit_zh(7, "公里", "米", 1000),
        capital_en("Switzerland", "Bern"),  # not in CAPITALS
    ]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(out_dir=OUT_DIR):
    rng = random.Random(SEED)
    convs = build_sft(rng)
    pretrain = build_pretrain(rng)
    single_turns = {tuple(m["content"] for m in c["messages"]) for c in convs if len(c["messages"]) == 2}
    asked = {m["content"] for c in convs for m in c["messages"] if m["role"] == "user"}
    prompts = []
    for item in eval_items():
        question, answer = (m["content"] for m in item["messages"])
        assert (question, answer) in single_turns, f"evaluation prompt not in the SFT set: {question}"
        prompts.append({"prompt": question, "reference": answer, "seen": True})
    for item in held_out_items():
        question, answer = (m["content"] for m in item["messages"])
        assert question not in asked, f"held-out prompt is in the SFT set: {question}"
        prompts.append({"prompt": question, "reference": answer, "seen": False})
    assert all(len(row["text"]) < 512 for row in pretrain)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "sft.jsonl", [{"conversations": c["messages"]} for c in convs])
    write_jsonl(out_dir / "pretrain.jsonl", pretrain)
    write_jsonl(out_dir / "prompts.jsonl", prompts)
    print(f"wrote {len(convs)} conversations, {len(pretrain)} pretraining lines, {len(prompts)} prompts to {out_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", type=Path, default=OUT_DIR)
    main(parser.parse_args().out_dir)
