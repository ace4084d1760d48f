#!/usr/bin/python3
"""Writes the tokenizer parity corpus: a deterministic mix of >= 2,000 strings covering ASCII
prose, contractions, accents (composed and decomposed), CJK, emoji sequences, odd whitespace,
control and rare characters, special-token look-alikes and very long inputs. Every fourth
string carries a text_pair."""
import json
import random
import sys
import unicodedata

WORDS = ("the a of and to in is it you that he was for on are with as I his they be at one have this "
         "from or had by hot word but what some we can out other were all there when up use your how "
         "said an each she which do their time if will way about many then them write would like so "
         "these her long make thing see him two has look more day could go come did number sound no "
         "most people my over know water than call first who may down side been now find any new work "
         "part take get place made live where after back little only round man year came show every "
         "good me give our under name very through just form sentence great think say help low line "
         "differ turn cause much mean before move right boy old too same tell does set three want air "
         "well also play small end put home read hand port large spell add even land here must big "
         "high such follow act why ask men change went light kind off need house picture try us again "
         "animal point mother world near build self earth father head stand own page should country "
         "unbelievable tokenization internationalization antidisestablishmentarianism GPU C++ naïve").split()
CONTRACTIONS = ["don't", "I'll", "we've", "they're", "she'd", "it's", "I'm", "can't", "Y'ALL", "o'clock",
                "rock'n'roll", "'s", "'t", "ma'am"]
ACCENTED = ["café", "résumé", "naïve", "façade", "crème brûlée", "Hügel über Brücke", "Mañana", "José",
            "São Paulo", "Kraków", "Ærøskøbing", "İstanbul", "ΣΊΣΥΦΟΣ", "Straße", "Tiếng Việt",
            "Đà Nẵng", "ﬁnancial ﬂow", "Ångström", "Œuvre", "coöperate", "Zürich"]
SCRIPTS = ["你好，世界", "日本語のテキスト", "カタカナ", "한국어 문장입니다", "中文字符和English混合", "Привет, мир",
           "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "ሰላም", "𠀀𠀁 rare CJK",
           "１２３ ＡＢＣ fullwidth", "①②③ ⅷ ½ ¾", "x² + y³ = z⁴"]
EMOJI = ["🤗", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "1️⃣", "❤️", "🧑🏿‍🚀", "☕", "🐍 python", "✨✨",
         "🙂‍↔️"]
SPACES = ["\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\u200b", "\u200d", "\ufeff", "  ", "   ", "\u2028",
          "\u0085", "\x0b", "\x0c"]
ODD = ["\x00", "\x07", "\x1b[31m", "\ufffd", "\ue000", "\u0301", "e\u0301", "a\u0308\u0304", "\u00ad", "\u2060",
       "\U000e0041", "\u202e", "\ud7ff", "\U0010fffd", "…", "—", "–", "“quotes”", "‘single’", "«guillemets»",
       "$100.00", "3.14159", "1,000,000", "v2.0.1", "user@example.com", "https://example.org/a?b=c&d=e",
       "#hashtag", "@mention", "C:\\path\\file.txt", "<div class=\"x\">", "snake_case_name", "x==y&&z!=w"]
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>", "<mask>", "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]",
            "<|endoftext|>", "<extra_id_0>", "<mask >", "[cls]"]


def sentence(rng, n_min=3, n_max=18):
    words = []
    for _ in range(rng.randint(n_min, n_max)):
        r = rng.random()
        if r < 0.08:
            words.append(rng.choice(CONTRACTIONS))
        elif r < 0.12:
            words.append(str(rng.randint(0, 10 ** rng.randint(1, 7))))
        else:
            w = rng.choice(WORDS)
            words.append(w.capitalize() if rng.random() < 0.15 else w.upper() if rng.random() < 0.03 else w)
    s = " ".join(words)
    return s + rng.choice([".", "!", "?", "", "...", " :)", ";", ","])


def mixed(rng, pools):
    parts = []
    for _ in range(rng.randint(2, 8)):
        pool = rng.choice(pools)
        parts.append(rng.choice(pool) if isinstance(pool, list) else pool(rng))
    sep = rng.choice([" ", "", " ", "\t", "  ", "\n"])
    return sep.join(parts)


def random_codepoints(rng, n):
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff),
              (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f), (0x20a0, 0x20cf),
              (0x2190, 0x22ff), (0x3000, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0xf900, 0xfaff),
              (0xfe00, 0xfe0f), (0xff00, 0xffef), (0x1f300, 0x1f6ff), (0x1f900, 0x1f9ff), (0x20000, 0x2a6df)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def main(path, count=2600, seed=20231):
    rng = random.Random(seed)
    texts = []
    makers = [
        (0.22, lambda: sentence(rng)),
        (0.10, lambda: mixed(rng, [ACCENTED, sentence])),
        (0.05, lambda: unicodedata.normalize("NFD", mixed(rng, [ACCENTED, sentence]))),
        (0.09, lambda: mixed(rng, [SCRIPTS, sentence])),
        (0.09, lambda: mixed(rng, [EMOJI, sentence, ACCENTED])),
        (0.10, lambda: rng.choice(SPACES).join([sentence(rng, 1, 4) for _ in range(rng.randint(1, 4))])
                       + rng.choice(SPACES) * rng.randint(0, 3)),
        (0.08, lambda: mixed(rng, [ODD, sentence])),
        (0.07, lambda: mixed(rng, [SPECIALS, sentence, [" ", "  "]])),
        (0.12, lambda: random_codepoints(rng, rng.randint(1, 60))),
        (0.04, lambda: rng.choice(SPACES) * rng.randint(1, 5) + sentence(rng, 1, 3)),
    ]
    weights = [w for w, _ in makers]
    while len(texts) < count:
        maker = rng.choices(makers, weights)[0][1]
        texts.append(maker())
    # very long inputs: long prose, long words without spaces, long digit and emoji runs
    for _ in range(40):
        texts.append(" ".join(sentence(rng) for _ in range(rng.randint(50, 300))))
    for n in (150, 500, 2000, 10000):
        texts.append("a" * n)
        texts.append("".join(rng.choice("abcdefghij") for _ in range(n)))
        texts.append("9" * n)
        texts.append("🤗" * (n // 10))
    texts += ["", " ", "  ", "\n", "\t\t"]
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            row = {"text": t}
            if i % 4 == 3:
                row["text_pair"] = sentence(rng, 1, 10)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(texts)


if __name__ == "__main__":
    print(main(sys.argv[1]), "strings written to", sys.argv[1])
