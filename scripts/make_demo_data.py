#!/usr/bin/python3
"""Writes a small labelled sentiment-style dataset (JSONL) from templates, seeded, so that the
quickstart runs without any download."""
import json
import random
import sys

POSITIVE = ["wonderful", "great", "delightful", "moving", "brilliant", "charming", "superb"]
NEGATIVE = ["dull", "awful", "tedious", "clumsy", "boring", "dreadful", "lifeless"]
SUBJECTS = ["the film", "this book", "the acting", "the soundtrack", "the ending", "the dinner", "our trip"]
TEMPLATES = ["{s} was {a}.", "I found {s} {a}, honestly.", "{s} felt {a} from start to finish!",
             "Everyone agreed that {s} was {a}.", "{s}? {a}."]


def main(path, n=400, seed=1):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            label = rng.choice(["positive", "negative"])
            adjective = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
            text = rng.choice(TEMPLATES).format(s=rng.choice(SUBJECTS), a=adjective)
            f.write(json.dumps({"text": text[0].upper() + text[1:], "label": label}) + "\n")
    print(f"wrote {n} examples to {path}")


if __name__ == "__main__":
    main(sys.argv[1])
