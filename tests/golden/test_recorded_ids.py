#!/usr/bin/python3
"""basin's tokenizers against token ids recorded from Hugging Face (transformers / tokenizers)
for the real tokenizer files in ../shared/hf (see its SOURCES.md). Every recorded id must be
reproduced.

usage: test_recorded_ids.py BASIN_BINARY WORK_DIR      exit 77 (skipped) without ../shared/hf"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HF = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "hf"))


def tokenizer(name):
    return os.path.join(HF, name, "tokenizer.json")


def cases():
    """Yields (suite, tokenizer.json, add_special, [(text, pair, expected_ids)])."""
    # llama.cpp's vocab tests: inputs split by a marker, one line of ids per input, no specials
    for suite, tok, stem in [("gpt2 ggml", "gpt2", "gpt2/ggml-vocab-gpt-2.gguf"),
                             ("bge ggml", "bert-base-uncased", "bge-small-en-v1.5/ggml-vocab-bert-bge.gguf"),
                             ("roberta ggml", "roberta-base", "stsb-roberta-base/ggml-vocab-roberta-bpe.gguf")]:
        inputs = open(os.path.join(HF, stem + ".inp"), encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
        outputs = open(os.path.join(HF, stem + ".out"), encoding="utf-8").read().split("\n")
        rows = [(text, None, [int(x) for x in out.split()]) for text, out in zip(inputs, outputs)]
        yield suite, tokenizer(tok), False, rows
    # swift-transformers multilingual conformance: ids WITH special tokens
    base = os.path.join(HF, "conformance", "swift-transformers-multilingual")
    inputs = {e["id"]: e["text"] for e in json.load(open(os.path.join(base, "inputs.json"), encoding="utf-8"))}
    for suite, tok, fname in [("roberta multilingual", "roberta-base", "roberta_base_multilingual.json"),
                              ("gpt2 multilingual", "gpt2", "gpt2_multilingual.json"),
                              ("bge multilingual", "bert-base-uncased", "bge_small_multilingual.json"),
                              ("t5 multilingual", "t5-small", "t5_small_multilingual.json")]:
        entries = json.load(open(os.path.join(base, "baselines", fname), encoding="utf-8"))["entries"]
        yield suite, tokenizer(tok), True, [(inputs[e["id"]], None, e["input_ids"]) for e in entries]
    # swift-transformers tokenizer tests (with specials)
    tests = json.load(open(os.path.join(HF, "conformance", "swift-transformers", "tokenizer_tests.json"), encoding="utf-8"))
    for suite, tok in [("bert-base-uncased", "bert-base-uncased"), ("distilgpt2", "gpt2"), ("t5-base", "t5-small")]:
        yield "swift " + suite, tokenizer(tok), True, [(t["input"], None, t["encoded"]["input_ids"]) for t in tests[suite]]
    # one long French paragraph per tokenizer
    for suite, tok, path, special in [("bert paragraph", "bert-base-uncased", "bert-base-uncased/bert_uncased_encoded.json", True),
                                      ("gpt2 paragraph", "gpt2", "gpt2/gpt2_encoded_tokens.json", True),
                                      ("t5 paragraph", "t5-small", "t5-base/t5_base_encoded.json", True)]:
        d = json.load(open(os.path.join(HF, path), encoding="utf-8"))
        yield suite, tokenizer(tok), special, [(d["text"], None, d["token_ids"])]
    # 10,570 SQuAD questions through bert-base-uncased, without specials
    questions = json.load(open(os.path.join(HF, "bert-base-uncased", "question_tokens.json"), encoding="utf-8"))
    ids = json.load(open(os.path.join(HF, "bert-base-uncased", "tokenized_questions.json"), encoding="utf-8"))
    yield "squad questions", tokenizer("bert-base-uncased"), False, [(q["original"], None, i) for q, i in zip(questions, ids)]


def main():
    basin, work = sys.argv[1], sys.argv[2]
    if not os.path.isdir(HF):
        print(f"SKIPPED: {HF} not present")
        return 77
    os.makedirs(work, exist_ok=True)
    total = failed = 0
    for k, (suite, tok, special, rows) in enumerate(cases()):
        inp = os.path.join(work, f"recorded-{k}.jsonl")
        out = os.path.join(work, f"recorded-{k}.out.jsonl")
        with open(inp, "w", encoding="utf-8") as f:
            for text, pair, _ in rows:
                f.write(json.dumps({"text": text} if pair is None else {"text": text, "text_pair": pair}, ensure_ascii=False) + "\n")
        subprocess.run([basin, "tokenize", "--tokenizer", tok, "--input", inp, "--output", out, "--tokens"]
                       + ([] if special else ["--no-special"]), check=True)
        got = [json.loads(line) for line in open(out, encoding="utf-8")]
        bad = [(r, g) for r, g in zip(rows, got) if g["ids"] != r[2]]
        total += len(rows)
        failed += len(bad)
        print(f"{suite:24s} {len(rows):6d} inputs  {len(bad):4d} differ  {'ok' if not bad else 'MISMATCH'}")
        for (text, _, expected), g in bad[:4]:
            print("    input:   ", json.dumps(text, ensure_ascii=False)[:160])
            print("    expected:", expected[:30])
            print("    basin:   ", g["ids"][:30], g["tokens"][:12])
    print(f"{total} recorded inputs, {failed} differ")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
