"""Running the basin program from a test: one place for the call and its failure message."""
import subprocess


def make_run(basin, **defaults):
    """Returns run(*args, check=True, **kw): runs basin with args (text output captured; defaults and
    kw go to subprocess.run) and, with check, fails the test with the end of basin's stderr."""
    def run(*args, check=True, **kw):
        r = subprocess.run([basin, *args], capture_output=True, text=True, **{**defaults, **kw})
        if check and r.returncode != 0:
            raise AssertionError(f"basin {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return r
    return run


def tiny_word_models(run, work, words, seeds, family="bert"):
    """Tiny random encoders (hidden 16, 2 layers, 2 heads) made by `basin init-model` over a WordPiece
    tokenizer whose vocabulary is `words` (tests/reference/hf_reference.tokenizer_json), one per
    seed, in work/m<seed>. Returns (the tokenizer's vocabulary, the model folders)."""
    import json
    import os

    import hf_reference as ref
    tokenizer = ref.tokenizer_json("bert", words)
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "tokenizer.json")
    with open(path, "w") as f:
        json.dump(tokenizer, f)
    folders = []
    for seed in seeds:
        out = os.path.join(work, f"m{seed}")
        run("init-model", "--out", out, "--tokenizer", path, "--hidden", "16", "--layers", "2", "--heads", "2",
            "--intermediate", "32", "--max-positions", "24", "--seed", str(seed), "--family", family)
        folders.append(out)
    return tokenizer["model"]["vocab"], folders
