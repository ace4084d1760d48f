#!/usr/bin/env python3
"""LoRA fine-tuning (basin finetune --mode lora) against PEFT (peft 0.13.2 in .venv over Debian's
torch 1.13) on tiny RoBERTa and BERT models made by basin init-model:

- training: three AdamW steps of basin from the same start (the factor A's initialisation, read
  from a one-step run, where B = 0 leaves A unmoved; B = 0; the start's own head) equal three
  steps of torch.optim.AdamW on PEFT's LoRA model (same batches, schedule, weight decay groups,
  clipping), factor by factor and for the head, within float rounding;
- the output is a PEFT adapter folder: PeftModel.from_pretrained loads it onto the base with the
  head, and its mean test loss and accuracy equal those basin recorded after the last epoch;
  only the targets' factors and the head are in it, under PEFT's key names; it learns the task;
- basin reads it back as a zoo member (inspect, map);
- same seed: bitwise equal adapters; a run killed after a saved state resumes to the
  uninterrupted run's bytes;
- bad settings (a target that names no layer, rank 0, a rank above a weight's side): one line,
  nothing written.

usage: .venv/bin/python test_lora.py BASIN WORK     (exit 77 without peft)"""
import json
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

try:
    import numpy as np
    import tokenizers
    import torch
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification
except ImportError as e:
    print(f"skipped: peft or transformers is not installed here ({e}); scripts/install-deps.sh installs them into .venv")
    sys.exit(77)

import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402
from keyword_data import write_keyword_split  # noqa: E402

BASIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.argv = sys.argv[:1]
run = make_run(BASIN)

POSITIVE, NEGATIVE = ["good", "great", "fine"], ["bad", "awful", "poor"]
FILLER = "the a movie plot was quite very and it is this that so film story acting".split()
LABELS = ["neg", "pos"]
RANK, ALPHA = 4, 8


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def adapter_tensors(folder):
    return ref.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))[0]


class Lora(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        tokenizer = os.path.join(WORK, "tokenizer.json")
        with open(tokenizer, "w") as f:
            json.dump(ref.tokenizer_json("bert", POSITIVE + NEGATIVE + FILLER), f)
        cls.bases = {}
        for family in ("roberta", "bert"):
            cls.bases[family] = os.path.join(WORK, "base-" + family)
            # with a classification head of the data's labels: the fine-tune keeps it (a known start)
            run("init-model", "--out", cls.bases[family], "--family", family, "--tokenizer", tokenizer, "--hidden",
                "32", "--layers", "2", "--heads", "4", "--intermediate", "64", "--max-positions", "40", "--seed", "5",
                "--head", "classification", "--labels", ",".join(LABELS))
        cls.train, cls.test = os.path.join(WORK, "train.jsonl"), os.path.join(WORK, "test.jsonl")
        write_keyword_split(cls.train, 200, 1, {"pos": POSITIVE, "neg": NEGATIVE}, FILLER, labels=LABELS,
                            length=(3, 9))
        write_keyword_split(cls.test, 80, 2, {"pos": POSITIVE, "neg": NEGATIVE}, FILLER, labels=LABELS,
                            length=(3, 9))

    def finetune(self, out, family="roberta", *extra, rank=RANK, alpha=ALPHA, check=True):
        return run("finetune", "--model", self.bases[family], "--train", self.train, "--out", os.path.join(WORK, out),
                   "--mode", "lora", "--lora-rank", str(rank), "--lora-alpha", str(alpha), "--threads", "1",
                   "--dropout", "0", "--quiet", *extra, check=check)

    def peft_model(self, family, targets):
        model = AutoModelForSequenceClassification.from_pretrained(self.bases[family])
        return get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
                                                target_modules=targets))

    def batch(self, family, examples):
        """Right-padded input ids, attention mask and label ids of examples, tokenized by the Rust
        library from the base's tokenizer.json (as basin pads a batch: to its longest example)."""
        tok = tokenizers.Tokenizer.from_file(os.path.join(self.bases[family], "tokenizer.json"))
        ids = [tok.encode(e["text"]).ids for e in examples]
        width = max(len(i) for i in ids)
        input_ids = torch.tensor([i + [0] * (width - len(i)) for i in ids])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
        labels = torch.tensor([LABELS.index(e["label"]) for e in examples])
        return input_ids, mask, labels

    def test_three_steps_equal_peft_with_torch_adamw(self):
        # output.dense: the attention output's and the layer output's (PEFT would also put factors on
        # RoBERTa's classifier.dense, a head basin trains in full, for "dense")
        targets = ["query", "value", "output.dense"]
        batch_size, steps, lr = 5, 3, 5e-3
        common = ["--lora-targets", ",".join(targets), "--batch-size", str(batch_size), "--lr", str(lr),
                  "--warmup-ratio", "0", "--seed", "7"]
        # one step with B = 0 moves no A (its gradient s B^T G is zero, and so is AdamW's step without decay)
        self.finetune("lora-a0", "roberta", *common, "--max-steps", "1", "--weight-decay", "0")
        a0 = adapter_tensors(os.path.join(WORK, "lora-a0"))
        self.finetune("lora-3", "roberta", *common, "--max-steps", str(steps))
        with open(os.path.join(WORK, "lora-3", "basin_run.json")) as f:
            record = json.load(f)
        order = record["data_order_epoch1_head"]
        self.assertFalse(record["new_head"])
        self.assertEqual(record["labels"], LABELS)

        model = self.peft_model("roberta", targets)
        model.eval()  # no dropout (basin's --dropout 0); gradients flow the same
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".lora_A." in name:
                    key = name.replace(".lora_A.default.weight", ".lora_A.weight")
                    p.copy_(torch.from_numpy(a0[key]))
        trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        decay = [p for n, p in trained if not n.endswith("bias") and "LayerNorm" not in n]
        no_decay = [p for n, p in trained if n.endswith("bias") or "LayerNorm" in n]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-8)
        examples = rows(self.train)
        for step in range(steps):
            input_ids, mask, labels = self.batch("roberta", [examples[i] for i in order[step * batch_size:
                                                                                         (step + 1) * batch_size]])
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(input_ids=input_ids, attention_mask=mask).logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trained], 1.0)
            for g in optimizer.param_groups:
                g["lr"] = lr * (steps - step) / steps  # linear decay, no warm-up
            optimizer.step()

        got = adapter_tensors(os.path.join(WORK, "lora-3"))
        want = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                key = name.replace(".default.weight", ".weight").replace("modules_to_save.default.", "")
                want[key] = p.detach().numpy()
        self.assertEqual(sorted(got), sorted(want))
        for key, value in want.items():
            # AdamW's first steps are about lr * sign(g) per entry: compared at a small share of lr
            np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=lr * 1e-3, err_msg=key)
        self.assertTrue(any(np.any(got[k]) for k in got if ".lora_B." in k))

    def test_peft_loads_the_adapter_with_basins_test_loss(self):
        # (a random body's first token says little about the keyword: the factors must learn to move it there)
        rank, alpha = 8, 16
        for family, targets, lr in (("roberta", ["query", "key", "value", "output.dense"], "5e-3"),
                                    ("bert", ["query", "key", "value", "dense"], "5e-3")):
            out = os.path.join(WORK, "lora-" + family)
            self.finetune("lora-" + family, family, "--lora-targets", ",".join(targets), "--epochs", "8", "--lr", lr,
                          "--batch-size", "16", "--eval", self.test, "--seed", "1", rank=rank, alpha=alpha)
            with open(os.path.join(out, "basin_run.json")) as f:
                record = json.load(f)
            last = record["epochs"][-1]
            print(f"{family}: LoRA r={rank} on {targets}: test accuracy {last['eval_accuracy']:.3f}, "
                  f"{record['parameters']['trained']} of {record['parameters']['total']} parameters trained")
            # (training the head alone stays at chance, 0.51, on these bodies; seeds 1-3 give 0.86-0.99)
            self.assertGreaterEqual(last["eval_accuracy"], 0.8, family)
            with open(os.path.join(out, "adapter_config.json")) as f:
                config = json.load(f)
            self.assertEqual((config["peft_type"], config["r"], config["lora_alpha"], config["target_modules"]),
                             ("LORA", rank, alpha, targets))
            # the factors of every targeted layer and the head, nothing else
            tensors = adapter_tensors(out)
            body = "roberta" if family == "roberta" else "bert"
            factors = [k for k in tensors if ".lora_" in k]
            modules = {k.rsplit(".lora_", 1)[0] for k in factors}
            self.assertEqual(len(factors), 2 * len(modules))
            self.assertTrue(all(m.startswith(f"base_model.model.{body}.") and any(m.endswith("." + t) for t in targets)
                                for m in modules), modules)
            # per layer q, k, v and two output.dense (RoBERTa); q, k, v, three dense and BERT's pooler
            self.assertEqual(len(modules), 2 * 5 if family == "roberta" else 2 * 6 + 1)
            self.assertTrue(all(k.startswith("base_model.model.classifier.") for k in tensors if ".lora_" not in k))

            model = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(self.bases[family]), out)
            model.eval()
            test = rows(self.test)
            input_ids, mask, labels = self.batch(family, test)
            with torch.no_grad():
                logits = model(input_ids=input_ids, attention_mask=mask).logits.double()
            loss = torch.nn.functional.cross_entropy(logits, labels).item()
            accuracy = (logits.argmax(1) == labels).double().mean().item()
            self.assertAlmostEqual(loss, last["eval_loss"], delta=1e-5 * max(1.0, abs(loss)), msg=family)
            self.assertAlmostEqual(accuracy, last["eval_accuracy"], places=9, msg=family)

            # basin evaluates it (its base from base_model_name_or_path) as it scored it while training
            got = json.loads(run("eval", "--model", out, "--data", self.test, "--json").stdout)
            self.assertAlmostEqual(got["accuracy"], last["eval_accuracy"], places=9)
            self.assertAlmostEqual(got["mean_loss"], last["eval_loss"], places=6)

            # a zoo member for basin: inspect and map read it against the base
            info = json.loads(run("inspect", out, "--json").stdout)
            self.assertEqual(info["adapter"]["r"], rank)
            other = os.path.join(WORK, "lora-" + family + "-2")
            self.finetune(other, family, "--lora-targets", ",".join(targets), "--epochs", "1", "--lr", lr,
                          "--batch-size", "16", "--seed", "2", rank=rank, alpha=alpha)
            listing = os.path.join(WORK, f"zoo-{family}.txt")
            with open(listing, "w") as f:
                f.write(out + "\n" + other + "\n")
            run("map", "--base", self.bases[family], "--models", listing, "--out", os.path.join(WORK, "map-" + family),
                "--bootstrap", "0", "--quiet", "--overwrite")
            gram = ref.read_safetensors(os.path.join(WORK, "map-" + family, "gram.safetensors"))[0]["gram"]
            deltas = []  # the materialised task vectors (the map leaves BERT's pooler out, as for every model)
            for folder in (out, other):
                t = adapter_tensors(folder)
                deltas.append(np.concatenate([(alpha / rank) * (t[m + ".lora_B.weight"].astype(np.float64) @
                                                                t[m + ".lora_A.weight"].astype(np.float64)).ravel()
                                              for m in sorted(modules) if ".pooler." not in m]))
            np.testing.assert_allclose(gram, np.stack(deltas) @ np.stack(deltas).T, rtol=1e-6)

    def test_basin_evaluates_and_probes_an_adapter_peft_made(self):
        """An adapter PEFT made (random non-zero factors on query, value and the FFN's output, a
        trained-looking head) with no tokenizer and a Hub-style base name: basin eval with
        --adapter-base gives PEFT's logits, and basin probe reads its body."""
        torch.manual_seed(3)
        model = self.peft_model("roberta", ["query", "value", "output.dense"])
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".lora_" in name or "modules_to_save" in name:
                    p.normal_(0, 0.3)
        folder = os.path.join(WORK, "peft-made")
        model.create_or_update_model_card = lambda *a, **k: None  # README.md needs Jinja2, not the adapter
        model.save_pretrained(folder)
        with open(os.path.join(folder, "adapter_config.json")) as f:
            config = json.load(f)
        config["base_model_name_or_path"] = "some-org/some-base"  # a Hub name: not a folder here
        with open(os.path.join(folder, "adapter_config.json"), "w") as f:
            json.dump(config, f)
        test = rows(self.test)
        input_ids, mask, _ = self.batch("roberta", test)
        model.eval()
        with torch.no_grad():
            want = model(input_ids=input_ids, attention_mask=mask).logits.numpy()
        predictions = os.path.join(WORK, "peft-made.jsonl")
        r = run("eval", "--model", folder, "--data", self.test, "--predictions", predictions, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("give the base it was trained on (--adapter-base DIR); its base_model_name_or_path "
                      "'some-org/some-base' is not a model folder here", r.stderr)
        run("eval", "--model", folder, "--adapter-base", self.bases["roberta"], "--data", self.test, "--predictions",
            predictions)
        with open(predictions) as f:
            got = [json.loads(line) for line in f]
        self.assertEqual(len(got), len(test))
        for i, row in enumerate(got):
            np.testing.assert_allclose(row["logits"], want[i], rtol=1e-4, atol=1e-4, err_msg=str(i))
        # the body PEFT's merge_and_unload gives is the one basin probes
        probe = json.loads(run("probe", "--model", folder, "--adapter-base", self.bases["roberta"], "--train",
                               self.train, "--test", self.test, "--no-cache", "--json").stdout)
        dense = os.path.join(WORK, "peft-made-dense")
        model.merge_and_unload().save_pretrained(dense, safe_serialization=True)
        shutil.copy(os.path.join(self.bases["roberta"], "tokenizer.json"), dense)
        same = json.loads(run("probe", "--model", dense, "--train", self.train, "--test", self.test, "--no-cache",
                              "--json").stdout)
        self.assertAlmostEqual(probe["test_loss"], same["test_loss"], places=5)

    def test_same_seed_bitwise_and_resume_after_kill(self):
        args = ["--epochs", "2", "--batch-size", "16", "--seed", "3", "--save-every", "4", "--lr", "5e-3"]
        self.finetune("straight", "roberta", *args)
        self.finetune("again", "roberta", *args)
        def blob(folder):
            with open(os.path.join(WORK, folder, "adapter_model.safetensors"), "rb") as f:
                return f.read()
        self.assertEqual(blob("straight"), blob("again"))
        r = self.finetune("resumed", "roberta", *args, "--stop-after-step", "10", check=False)
        self.assertEqual(r.returncode, 137)
        self.assertFalse(os.path.exists(os.path.join(WORK, "resumed")))
        self.finetune("resumed", "roberta", *args)
        self.assertEqual(blob("straight"), blob("resumed"), "the resumed adapter differs")
        self.assertFalse(os.path.exists(os.path.join(WORK, "resumed.partial")))

    def test_bad_settings(self):
        for extra, words in ((["--lora-targets", "query,qkv_proj"], "'qkv_proj' names none of the body's linear"),
                             (["--lora-rank", "0"], "--lora-rank must be at least 1"),
                             (["--lora-rank", "40"], "exceeds")):
            out = "bad-" + extra[1].replace(",", "-")
            r = run("finetune", "--model", self.bases["roberta"], "--train", self.train, "--out",
                    os.path.join(WORK, out), "--mode", "lora", "--quiet", *extra, check=False)
            self.assertNotEqual(r.returncode, 0, extra)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(words, lines[0])
            self.assertFalse(os.path.exists(os.path.join(WORK, out)))
        # an adapter is not a start: one line saying what to start from
        adapter = os.path.join(WORK, "adapter-start")
        self.finetune("adapter-start", "roberta", "--max-steps", "1")
        r = run("finetune", "--model", adapter, "--train", self.train, "--out", os.path.join(WORK, "from-adapter"),
                "--quiet", check=False)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("a LoRA adapter folder; fine-tune from its base", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(WORK, "from-adapter")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
