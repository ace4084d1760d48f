#!/usr/bin/python3
"""Independent reference for basin's golden tests, written against Debian's python3-torch and
numpy, following the Hugging Face modeling code for BERT and RoBERTa (modeling_bert.py,
modeling_roberta.py): embeddings, post-LN encoder layers, BERT pooler + classifier, RoBERTa
classification head. It has its own safetensors reader and writer (numpy), so that files are
exchanged with basin in both directions without shared code."""
import json
import math
import os
import struct

import numpy as np
import torch

# ---------------------------------------------------------------- safetensors (numpy) -------
NP_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def f32_to_bf16_bits(a):
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: dict name -> float32 numpy array (order kept)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        if dtype == "BF16":
            raw = f32_to_bf16_bits(array).tobytes()
        else:
            raw = np.ascontiguousarray(array, dtype=NP_DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns (dict name -> float32 numpy array, metadata, header). Validates the layout."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert 8 + n <= len(data), "header longer than file"
    assert n % 8 == 0, "header not padded to 8 bytes"
    header = json.loads(data[8:8 + n])
    buffer = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    out, end_max = {}, 0
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = buffer[b:e]
        end_max = max(end_max, e)
        if info["dtype"] == "BF16":
            array = bf16_bits_to_f32(np.frombuffer(raw, dtype=np.uint16))
        else:
            array = np.frombuffer(raw, dtype=NP_DTYPES[info["dtype"]]).astype(np.float32)
        out[name] = array.reshape(info["shape"])
    assert end_max == len(buffer), "data buffer has trailing bytes"
    return out, metadata, header


# ---------------------------------------------------------------- tiny models ----------------
def byte_level_vocab():
    chars, n = [], 0
    for b in range(256):
        printable = 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255
        chars.append(chr(b) if printable else chr(256 + n))
        if not printable:
            n += 1
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in chars:
        vocab[c] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return vocab


def tokenizer_json(family, words):
    special = lambda i, t: {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True}
    if family == "bert":
        vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words)))}
        return {"version": "1.0", "truncation": None, "padding": None,
                "added_tokens": [special(vocab[t], t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]],
                "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                               "strip_accents": None, "lowercase": True},
                "pre_tokenizer": {"type": "BertPreTokenizer"},
                "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
                "decoder": None,
                "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                          "max_input_chars_per_word": 100, "vocab": vocab}}
    vocab = byte_level_vocab()
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [special(vocab[t], t) for t in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                               "trim_offsets": True, "add_prefix_space": False},
            "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "vocab": vocab, "merges": []}}


def make_model(out_dir, family, dtype="F32", seed=0, labels=("neg", "pos", "neutral"), words=(),
               hidden=32, layers=2, heads=4, intermediate=64, max_positions=66, act="gelu"):
    os.makedirs(out_dir, exist_ok=True)
    tok = tokenizer_json(family, words)
    vocab = len(tok["model"]["vocab"])
    prefix = family
    rng = np.random.default_rng(seed)
    W = {}

    def normal(*shape, std=0.2):
        return rng.normal(0, std, size=shape).astype(np.float32)

    W[f"{prefix}.embeddings.word_embeddings.weight"] = normal(vocab, hidden)
    W[f"{prefix}.embeddings.position_embeddings.weight"] = normal(max_positions, hidden)
    W[f"{prefix}.embeddings.token_type_embeddings.weight"] = normal(2 if family == "bert" else 1, hidden)
    W[f"{prefix}.embeddings.LayerNorm.weight"] = 1 + normal(hidden, std=0.1)
    W[f"{prefix}.embeddings.LayerNorm.bias"] = normal(hidden, std=0.1)
    for l in range(layers):
        p = f"{prefix}.encoder.layer.{l}."
        for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            W[p + name + ".weight"] = normal(hidden, hidden)
            W[p + name + ".bias"] = normal(hidden, std=0.1)
        W[p + "attention.output.LayerNorm.weight"] = 1 + normal(hidden, std=0.1)
        W[p + "attention.output.LayerNorm.bias"] = normal(hidden, std=0.1)
        W[p + "intermediate.dense.weight"] = normal(intermediate, hidden)
        W[p + "intermediate.dense.bias"] = normal(intermediate, std=0.1)
        W[p + "output.dense.weight"] = normal(hidden, intermediate)
        W[p + "output.dense.bias"] = normal(hidden, std=0.1)
        W[p + "output.LayerNorm.weight"] = 1 + normal(hidden, std=0.1)
        W[p + "output.LayerNorm.bias"] = normal(hidden, std=0.1)
    if family == "bert":
        W["bert.pooler.dense.weight"] = normal(hidden, hidden)
        W["bert.pooler.dense.bias"] = normal(hidden, std=0.1)
        W["classifier.weight"] = normal(len(labels), hidden)
        W["classifier.bias"] = normal(len(labels), std=0.1)
    else:
        W["classifier.dense.weight"] = normal(hidden, hidden)
        W["classifier.dense.bias"] = normal(hidden, std=0.1)
        W["classifier.out_proj.weight"] = normal(len(labels), hidden)
        W["classifier.out_proj.bias"] = normal(len(labels), std=0.1)
    config = {
        "architectures": ["BertForSequenceClassification" if family == "bert" else "RobertaForSequenceClassification"],
        "model_type": family, "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "intermediate_size": intermediate, "hidden_act": act,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": max_positions,
        "type_vocab_size": 2 if family == "bert" else 1, "layer_norm_eps": 1e-12 if family == "bert" else 1e-5,
        "pad_token_id": 0 if family == "bert" else 1,
        "id2label": {str(i): l for i, l in enumerate(labels)}, "label2id": {l: i for i, l in enumerate(labels)},
    }
    json.dump(config, open(os.path.join(out_dir, "config.json"), "w"), indent=2)
    json.dump(tok, open(os.path.join(out_dir, "tokenizer.json"), "w"), ensure_ascii=False)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), W, dtype, {"format": "pt", "made_by": "reference"})
    return W


# ---------------------------------------------------------------- forward pass ---------------
def encode(model_dir, input_ids, sep_id=None, capture=None):
    """Last hidden states [B, T, H] for a list of id lists, run as ONE right-padded batch
    (unlike basin's sorted batches), with the weights and config. BERT token types: 0 up to and
    including the first separator, 1 after it. capture (a dict): every body linear layer's input
    rows at the real tokens, [tokens, in], under the layer's name (RegMean's reference)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W, _, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    W = {k: torch.from_numpy(np.array(v)) for k, v in W.items()}
    family = cfg["model_type"]
    pad = cfg["pad_token_id"]
    eps = cfg["layer_norm_eps"]
    H, N = cfg["hidden_size"], cfg["num_attention_heads"]
    D = H // N
    B, T = len(input_ids), max(len(x) for x in input_ids)
    ids = torch.full((B, T), pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    types = torch.zeros((B, T), dtype=torch.long)
    for b, seq in enumerate(input_ids):
        ids[b, :len(seq)] = torch.tensor(seq)
        mask[b, :len(seq)] = 1
        if family == "bert" and sep_id is not None and sep_id in seq:
            first_sep = seq.index(sep_id)
            types[b, first_sep + 1:len(seq)] = 1
    p = family + "."
    if family == "roberta":  # create_position_ids_from_input_ids
        m = ids.ne(pad).int()
        positions = (torch.cumsum(m, dim=1).type_as(m) * m).long() + pad
    else:
        positions = torch.arange(T).unsqueeze(0).expand(B, T)
    ln = lambda x, name: torch.nn.functional.layer_norm(x, (H,), W[name + ".weight"], W[name + ".bias"], eps)
    def lin(x, name):
        if capture is not None:
            capture[name] = x[mask.bool()] if x.dim() == 3 else x
        return x @ W[name + ".weight"].T + W[name + ".bias"]
    act = {"gelu": torch.nn.functional.gelu, "relu": torch.relu,
           "gelu_new": lambda x: torch.nn.functional.gelu(x, approximate="tanh")}[cfg["hidden_act"]]
    x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][positions] \
        + W[p + "embeddings.token_type_embeddings.weight"][types]
    x = ln(x, p + "embeddings.LayerNorm")
    extended = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        q_ = p + f"encoder.layer.{l}."
        split = lambda t: t.view(B, T, N, D).transpose(1, 2)
        q = split(lin(x, q_ + "attention.self.query"))
        k = split(lin(x, q_ + "attention.self.key"))
        v = split(lin(x, q_ + "attention.self.value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(D) + extended
        context = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        attn = ln(lin(context, q_ + "attention.output.dense") + x, q_ + "attention.output.LayerNorm")
        inter = act(lin(attn, q_ + "intermediate.dense"))
        x = ln(lin(inter, q_ + "output.dense") + attn, q_ + "output.LayerNorm")
    return x, W, cfg


def features(model_dir, input_ids, sep_id=None):
    """The probe's features: the first-token vector after the encoder."""
    x, _, _ = encode(model_dir, input_ids, sep_id)
    return x[:, 0]


def classify(model_dir, input_ids, sep_id=None):
    """Sequence-classification logits (BERT pooler + classifier, or RoBERTa's head)."""
    x, W, cfg = encode(model_dir, input_ids, sep_id)
    lin = lambda t, name: t @ W[name + ".weight"].T + W[name + ".bias"]
    if cfg["model_type"] == "bert":
        pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
        return lin(pooled, "classifier")
    h = torch.tanh(lin(x[:, 0], "classifier.dense"))
    return lin(h, "classifier.out_proj")

