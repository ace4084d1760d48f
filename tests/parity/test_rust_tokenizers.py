#!/usr/bin/env python3
"""Tokenizer parity against the real Rust library: basin's ids must equal those of Hugging Face's
`tokenizers` (PyPI, pinned in scripts/requirements-reference.txt) on the parity corpus, with and
without special tokens, single texts and pairs, for every real tokenizer.json in ../shared/hf, the
real base's (models/real-base) and the tokenizers the JavaScript parity test builds. No string is
excluded. For the strings the JavaScript comparison excludes (known divergences of that library),
the test also reports how many basin gets right by this reference.

usage: .venv/bin/python test_rust_tokenizers.py BASIN_BINARY WORK_DIR
Exit status: 0 all equal, 1 mismatches (listed), 77 when the reference environment is absent."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import test_tokenizer_parity as js  # noqa: E402  (corpus, project tokenizers, the JS exclusions)

try:
    import tokenizers
except ImportError:
    tokenizers = None


def reference_ids(path, rows, special):
    tok = tokenizers.Tokenizer.from_file(path)
    out = []
    for row in rows:
        enc = tok.encode(row["text"], row.get("text_pair"), add_special_tokens=special)
        out.append(enc.ids)
    return out


def code_point_sweep(basin, work):
    """Every code point between "a" and "b", through BERT's normalizer and pre-tokenizer in both
    libraries: the ids show whether it was removed, made a space, split off as punctuation or kept
    in the word; with lowercasing, accent stripping and CJK handling the normalized text is
    compared. Returns the number of code points that differ."""
    rows = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and cp not in (0x0A, 0x0D)]
    inputs = os.path.join(work, "codepoints.jsonl")
    with open(inputs, "w", encoding="utf-8") as f:
        for c in rows:
            f.write(json.dumps({"text": "a" + c + "b"}) + "\n")
    failures = 0
    for lower in (False, True):
        spec = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": lower,
                               "strip_accents": lower, "lowercase": lower},
                "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": None, "decoder": None,
                "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                          "max_input_chars_per_word": 100, "vocab": {"[UNK]": 0, "a": 1, "b": 2, "##b": 3}}}
        path = os.path.join(work, f"codepoints-{int(lower)}.json")
        json.dump(spec, open(path, "w"))
        out = os.path.join(work, f"codepoints-{int(lower)}.basin.jsonl")
        subprocess.run([basin, "tokenize", "--tokenizer", path, "--input", inputs, "--output", out, "--no-special"]
                       + (["--normalized"] if lower else []), check=True)
        ours = [json.loads(line) for line in open(out, encoding="utf-8")]
        tok = tokenizers.Tokenizer.from_file(path)
        texts = ["a" + c + "b" for c in rows]
        if lower:
            ref = [tok.normalizer.normalize_str(t) for t in texts]
            got = [o["normalized"] for o in ours]
        else:
            ref = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
            got = [o["ids"] for o in ours]
        bad = [(c, r, g) for c, r, g in zip(rows, ref, got) if r != g]
        what = "normalized (lowercase, strip accents, CJK)" if lower else "ids (clean text, punctuation)"
        print(f"{'every code point':30s} {what:42s} {len(rows):7d} compared, {len(bad):4d} differ  "
              f"{'ok' if not bad else 'MISMATCH'}")
        for c, r, g in bad[:5]:
            print(f"    U+{ord(c):04X}: reference {r!r}, basin {g!r}")
        failures += len(bad)
    return failures


def main():
    basin, work = sys.argv[1], sys.argv[2]
    if tokenizers is None:
        print("SKIPPED: the Rust tokenizers library is not installed (run scripts/install-deps.sh)")
        return 77
    os.makedirs(work, exist_ok=True)
    corpus = os.path.join(work, "corpus.jsonl")
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_corpus.py"), corpus], check=True)
    rows = [json.loads(line) for line in open(corpus, encoding="utf-8")]
    targets = js.project_tokenizers(basin, work)
    real_base = os.path.join(ROOT, "models", "real-base", "tokenizer.json")
    if os.path.exists(real_base):
        targets["real-base (all-MiniLM-L6-v2)"] = real_base
    else:
        print(f"note: {real_base} not installed; not compared (skipped)")
    if os.path.isdir(js.SHARED):
        for m in js.SHARED_MODELS:
            targets[m] = os.path.join(js.SHARED, m, "tokenizer.json")
    else:
        print(f"note: {js.SHARED} not present; the real Hugging Face tokenizers were not compared (skipped)")

    print(f"reference: tokenizers {tokenizers.__version__} (Rust)")
    failures = total = 0
    rescued_total = excluded_total = 0
    for name, path in targets.items():
        js_name = name.split(" ")[0] if name.startswith("real-base") else name
        normalized = None
        if js_name in js.PRECOMPILED:
            normalized = js.normalized_texts(basin, path, work, js_name)
        for special in (True, False):
            flag = [] if special else ["--no-special"]
            out = os.path.join(work, f"{js_name}.{int(special)}.rust-basin.jsonl")
            subprocess.run([basin, "tokenize", "--tokenizer", path, "--input", corpus, "--output", out] + flag,
                           check=True)
            ours = js.read_ids(out)
            ref = reference_ids(path, rows, special)
            assert len(ours) == len(ref) == len(rows)
            bad = [(row, r, o) for row, r, o in zip(rows, ref, ours) if r != o]
            # the strings the JS comparison leaves out (real-base uses BERT's normalizer like MiniLM)
            js_key = "all-MiniLM-L6-v2" if name.startswith("real-base") else js_name
            excluded = [i for i, row in enumerate(rows)
                        if js.js_divergence(js_key, row, normalized[i] if normalized else None)]
            rescued = sum(1 for i in excluded if ref[i] == ours[i])
            excluded_total += len(excluded)
            rescued_total += rescued
            status = "ok" if not bad else "MISMATCH"
            print(f"{name:30s} special={str(special):5s} {len(rows):5d} compared, {len(bad):4d} differ  {status}"
                  f"   (JS-excluded: {rescued} of {len(excluded)} equal here)")
            for row, r, o in bad[:3]:
                print("    input:", json.dumps(row, ensure_ascii=False)[:200])
                print("    reference:", r[:40])
                print("    basin:    ", o[:40])
            failures += len(bad)
            total += len(rows)
    failures += code_point_sweep(basin, work)
    print(f"{len(targets)} tokenizers x {len(rows)} strings x 2 and every code point: {total} strings compared, "
          f"{'all equal' if failures == 0 else str(failures) + ' mismatches'}; of the {excluded_total} strings "
          f"the JavaScript comparison excludes, {rescued_total} equal the Rust library")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
