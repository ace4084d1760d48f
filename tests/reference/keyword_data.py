"""Small labelled datasets that tests generate: each example is a few filler words with one keyword
of its label inserted, so that a tiny model can learn the task. One generator for every test
(the draws are made in the same order, so a given seed always gives the same file)."""
import json
import random


def write_keyword_split(path, n, seed, words, filler, labels=None, length=(2, 6)):
    """Writes n JSONL examples {"text", "label"}: a label drawn from labels (default: the keys of
    words, in order), length[0] to length[1] filler words, and one of words[label] at a random
    place."""
    rng = random.Random(seed)
    labels = list(words) if labels is None else list(labels)
    with open(path, "w") as f:
        for _ in range(n):
            label = rng.choice(labels)
            text = [rng.choice(filler) for _ in range(rng.randint(*length))]
            text.insert(rng.randint(0, len(text)), rng.choice(words[label]))
            f.write(json.dumps({"text": " ".join(text), "label": label}) + "\n")
