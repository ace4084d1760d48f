#!/usr/bin/env python3
"""A notebook-style tour of basin from Python: map a zoo, plot its similarity heat map and 2-D
embedding (with matplotlib, where installed), merge its centroid, and look at where the centroid
lies. Every step is a library call (no subprocesses).

    PYTHONPATH=build/python python3 examples/python/zoo.py BASE GROUPS.csv [OUT]
    PYTHONPATH=build/python python3 examples/python/zoo.py [OUT]

GROUPS.csv lists the zoo: `model,dataset[,family...]` (as for `basin map --groups`); BASE is the
pretrained checkpoint the task vectors start from. With OUT alone (or nothing) it makes a small
synthetic zoo of its own (two groups of three models around a random base) in OUT (default
/tmp/basin-zoo-example). Scoring the centroid with the generalized loss needs the torch half of
basin, which the package does not have yet: `basin probe --model OUT/centroid ...` does it.
"""
import csv
import json
import os
import sys

import numpy as np

import basin


def synthetic_zoo(out):
    """A random base and six models: three moved one way, three the other (two groups)."""
    rng = np.random.default_rng(0)
    shapes = {"embeddings.word_embeddings.weight": (64, 16), "encoder.layer.0.attention.self.query.weight": (16, 16)}

    def write(folder, tensors):
        import struct
        os.makedirs(folder, exist_ok=True)
        header, offset, blobs = {}, 0, []
        for name, array in tensors.items():
            data = np.ascontiguousarray(array, np.float32).tobytes()
            header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            blobs.append(data)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump({"architectures": ["RobertaModel"], "model_type": "roberta"}, f)
        return folder

    base = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    write(os.path.join(out, "base"), base)
    rows = []
    for i in range(6):
        direction = 1.0 if i < 3 else -1.0
        model = {k: v + 0.2 * direction + 0.05 * rng.standard_normal(v.shape) for k, v in base.items()}
        rows.append((write(os.path.join(out, f"model-{i}"), model), "first" if i < 3 else "second"))
    groups = os.path.join(out, "groups.csv")
    with open(groups, "w") as f:
        f.write("model,dataset\n" + "".join(f"{m},{d}\n" for m, d in rows))
    return os.path.join(out, "base"), groups


def main():
    args = sys.argv[1:]
    if len(args) >= 2:  # BASE GROUPS [OUT]
        base, groups = args[0], args[1]
        out = args[2] if len(args) > 2 else "/tmp/basin-zoo-example"
    else:  # [OUT]: a synthetic zoo there
        out = args[0] if args else "/tmp/basin-zoo-example"
        base, groups = synthetic_zoo(out)
    with open(groups) as f:
        models = [row["model"] for row in csv.DictReader(f)]

    # 1. the map: cosine similarity of the task vectors, clusters against the groups, projections
    m = basin.map(base, models, groups)
    kind = m["kinds"][0]
    print(f"{len(models)} models; groups by {kind['kind']}: {', '.join(kind['groups'])}")
    for c in kind["clusterings"]:
        print(f"  {c['method']:14s} clustering accuracy {100 * c['accuracy']:.1f}%  silhouette {c['silhouette']:.3f}")
    print(f"  cosine within groups {kind['within_mean']:.3f}, between {kind['between_mean']:.3f}")

    # 2. figures, where matplotlib is installed
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
        image = left.imshow(m["cosine"], vmin=-1, vmax=1, cmap="RdBu_r")
        left.set_xticks(range(len(models)), m["names"], rotation=90)
        left.set_yticks(range(len(models)), m["names"])
        left.set_title("cosine similarity of task vectors")
        fig.colorbar(image, ax=left)
        for g, name in enumerate(kind["groups"]):
            at = [i for i, label in enumerate(kind["label"]) if label == g]
            right.scatter(m["pca"][at, 0], m["pca"][at, 1], label=name)
        right.set_title("PCA of the task vectors")
        right.legend()
        fig.tight_layout()
        os.makedirs(out, exist_ok=True)
        fig.savefig(os.path.join(out, "zoo.png"), dpi=120)
        print(f"figure: {os.path.join(out, 'zoo.png')}")
    except ImportError:
        print("(matplotlib is not installed: no figure)")

    # 3. the centroid, as a checkpoint with provenance, and where it lies among the models
    centroid = os.path.join(out, "centroid")
    provenance = basin.merge("mean", models, centroid, overwrite=True)
    print(f"centroid of {len(provenance['models'])} models -> {centroid}")
    g = basin.gram(base, models + [centroid])
    norms = np.sqrt(np.diag(g))
    cosine_to_centroid = g[-1, :-1] / (norms[-1] * norms[:-1])
    for name, c in zip(m["names"], cosine_to_centroid):
        print(f"  cos(centroid, {name}) = {c:.3f}")
    tensor = basin.Checkpoint(centroid)
    first = tensor.names()[0]
    print(f"  its {first}: {tensor.dtype(first)} {tensor.shape(first)}, mean {float(tensor.tensor(first).mean()):.4f}")


if __name__ == "__main__":
    main()
