"""Probe texts for the endpoint checks: a multilingual probe set, unusual inputs, long documents.

>>> len(long_document(1000).split()), long_document(3)
(1000, 'The harbour city')
"""

from __future__ import annotations

#: One dict per meaning: language code -> the sentence in that language.
MULTILINGUAL: tuple[dict[str, str], ...] = (
    {
        "en": "Where is the nearest train station?",
        "de": "Wo ist der nächste Bahnhof?",
        "fr": "Où est la gare la plus proche ?",
        "es": "¿Dónde está la estación de tren más cercana?",
        "pt": "Onde fica a estação de trem mais próxima?",
        "zh": "最近的火车站在哪里？",
        "ru": "Где ближайший железнодорожный вокзал?",
        "ja": "一番近い駅はどこですか？",
    },
    {
        "en": "I would like to return these shoes because they are too small.",
        "de": "Ich möchte diese Schuhe zurückgeben, weil sie zu klein sind.",
        "fr": "Je voudrais rendre ces chaussures parce qu'elles sont trop petites.",
        "es": "Quisiera devolver estos zapatos porque son demasiado pequeños.",
        "pt": "Eu gostaria de devolver estes sapatos porque são pequenos demais.",
        "zh": "我想退掉这双鞋，因为它们太小了。",
        "ru": "Я хотел бы вернуть эти туфли, потому что они слишком маленькие.",
        "ja": "この靴は小さすぎるので返品したいです。",
    },
    {
        "en": "The doctor says I should drink more water every day.",
        "de": "Der Arzt sagt, ich soll jeden Tag mehr Wasser trinken.",
        "fr": "Le médecin dit que je devrais boire plus d'eau chaque jour.",
        "es": "El médico dice que debería beber más agua cada día.",
        "pt": "O médico diz que eu deveria beber mais água todos os dias.",
        "zh": "医生说我每天应该多喝水。",
        "ru": "Врач говорит, что мне нужно пить больше воды каждый день.",
        "ja": "医者は毎日もっと水を飲むべきだと言っています。",
    },
    {
        "en": "How do I reset my password?",
        "de": "Wie setze ich mein Passwort zurück?",
        "fr": "Comment réinitialiser mon mot de passe ?",
        "es": "¿Cómo restablezco mi contraseña?",
        "pt": "Como faço para redefinir minha senha?",
        "zh": "如何重置我的密码？",
        "ru": "Как сбросить мой пароль?",
        "ja": "パスワードをリセットするにはどうすればいいですか？",
    },
    {
        "en": "It is going to rain heavily tomorrow afternoon.",
        "de": "Morgen Nachmittag wird es stark regnen.",
        "fr": "Il va pleuvoir fortement demain après-midi.",
        "es": "Mañana por la tarde va a llover mucho.",
        "pt": "Amanhã à tarde vai chover muito.",
        "zh": "明天下午会下大雨。",
        "ru": "Завтра днём будет сильный дождь.",
        "ja": "明日の午後は大雨が降るでしょう。",
    },
    {
        "en": "Our team won the football match last night.",
        "de": "Unsere Mannschaft hat gestern Abend das Fußballspiel gewonnen.",
        "fr": "Notre équipe a gagné le match de football hier soir.",
        "es": "Nuestro equipo ganó el partido de fútbol anoche.",
        "pt": "Nosso time ganhou a partida de futebol ontem à noite.",
        "zh": "我们队昨晚赢了足球比赛。",
        "ru": "Наша команда вчера вечером выиграла футбольный матч.",
        "ja": "私たちのチームは昨夜サッカーの試合に勝ちました。",
    },
)

#: Inputs mixing scripts, diacritics, emoji, invisible characters and product-code noise.
MIXED_SCRIPT: tuple[str, ...] = (
    "iPhone 15 Pro 256GB – чёрный / 黑色",
    "Tokyo 東京 Токио طوكيو",
    "naïve café résumé — Ærøskøbing",
    "🚀🔥 launch day 👩‍👩‍👧 family pack",
    "नमस्ते hello مرحبا שלום",
    "zero\u200bwidth and right\u200fto\u200eleft marks",
    "Straße vs STRASSE vs strasse",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕗𝕒𝕟𝕔𝕪 𝓉𝑒𝓍𝓉",
)

#: Inputs made mostly of punctuation, markup and symbols.
PUNCTUATION: tuple[str, ...] = (
    "!!!???!!!",
    "...---...",
    "$$$ 100% off!!! *** ### @@@",
    "<p>&nbsp;&amp;&lt;b&gt;</p>",
    '{"key": [1, 2, {"x": null}]}',
    "SKU: AB-12/34_x (v2.0) [NEW]",
    "C++ / C# / F# / .NET",
    "a",
    "   padded with spaces   ",
)

#: Texts of different lengths used to fill the batch in the batch-invariance check.
FILLERS: tuple[str, ...] = (
    "ok",
    "A considerably longer sentence about the maintenance schedule of regional trains, the "
    "staff who run them and the passengers who depend on them every single morning.",
    "short text",
    "Numbers 12 34 56 and symbols # % & mixed in.",
    "Die Lieferung kommt morgen früh an.",
    "另一段用于填充批次的中文文本。",
    "Yet another medium length sentence used only to pad the batch.",
)

#: Short texts for norms, finiteness and determinism (queries and product-like titles).
BASIC: tuple[str, ...] = (
    "how much protein per day",
    "red running shoes size 42",
    "best budget laptop for students",
    "symptoms of iron deficiency",
    "wireless noise cancelling headphones",
    "boundary layer transition on a flat plate",
    "vegetarian lasagne recipe",
    "return policy for damaged items",
)

ARTICLE = (
    "The harbour city grew around a sheltered bay where fishing boats first anchored more than "
    "eight centuries ago. Merchants built stone warehouses along the quay, and the narrow lanes "
    "behind them still follow the paths that carts once took between the water and the market. "
    "Ship owners paid for the first lighthouse, and the city council later added a breakwater "
    "that protects the inner basin from winter storms. "
    "Trade shaped the local food as much as the streets. Salted cod, smoked mackerel and rye "
    "bread were the staples of dock workers, while spices arriving from the south found their "
    "way into sweet buns that bakeries still sell every morning. The covered market opens at "
    "six, and by noon most stalls have sold their catch to restaurants along the promenade. "
    "The railway arrived in the nineteenth century and changed the rhythm of the port. Goods "
    "no longer waited for the right wind; they left on freight trains that climbed the valley "
    "towards the industrial towns inland. A tram network followed, and today its restored "
    "carriages carry visitors from the station to the old fortress on the hill. "
    "The climate is mild but restless. Westerly winds bring rain on most autumn days, and fog "
    "can cover the bay for hours before the sun breaks through. Sailors learned to read the "
    "clouds over the headland, and the weather station on the pier has kept daily records of "
    "temperature, pressure and wind since the year it opened. "
    "Education followed prosperity. A naval academy trained navigators and engineers, and its "
    "library holds charts drawn by captains who surveyed distant coasts. The university that "
    "grew out of it is known for marine biology, and its research vessels spend the summer "
    "measuring currents, plankton and the temperature of the deep water. "
    "Tourism is now the largest employer. Cruise ships dock at a terminal built on reclaimed "
    "land, guides lead walking tours through the merchant quarter, and the maritime museum "
    "displays a wooden cargo ship raised from the harbour mud. Residents debate how many "
    "visitors the old town can absorb without losing its character. "
    "Every summer the city holds a festival of tall ships. Crews from many countries race "
    "across the bay, bands play on the quay, and the evening ends with fireworks above the "
    "fortress. Children learn knots and signal flags at workshops run by retired sailors. "
    "Plans for the future focus on cleaner shipping. The port authority is installing shore "
    "power so that ships can switch off their engines at berth, and engineers are testing "
    "electric ferries on the short crossing to the islands at the mouth of the bay."
)
_ARTICLE = ARTICLE.split()

OTHER_TOPIC = (
    "Quantum error correction encodes one logical qubit in many physical qubits so that noise "
    "affecting a few of them can be detected and undone without measuring the stored state. "
    "Surface codes arrange qubits on a grid and repeatedly measure parity checks between "
    "neighbours; decoders then infer the most likely pattern of errors from the syndrome."
)
_OTHER = OTHER_TOPIC.split()


def _cycle(words: list[str], n: int, start: int = 0) -> str:
    if n <= 0:
        return ""
    reps = (start + n) // len(words) + 1
    return " ".join((words * reps)[start : start + n])


def long_document(n_words: int) -> str:
    """Exactly ``n_words`` words of a coherent article (repeated from the start if longer)."""
    return _cycle(_ARTICLE, n_words)


def other_tail(n_words: int) -> str:
    """Exactly ``n_words`` words on an unrelated topic (to replace a document's tail)."""
    return _cycle(_OTHER, n_words)


def with_new_tail(n_words: int, keep: int) -> str:
    """``long_document(n_words)`` with every word after the first ``keep`` replaced."""
    return f"{long_document(keep)} {other_tail(n_words - keep)}".strip()
