#!/usr/bin/python3
"""The map's uncertainty in simulation (docs/MAP.md, "Uncertainty"): on 200 zoos drawn from one
fixed set of datasets, the 95% bootstrap intervals of the two pair-level gaps cover the true value
(the same gap over 300 seeds per dataset) 95% +- 3% of the time; on 200 zoos without any structure,
the permutation p-values of dataset and family structure are uniform (Kolmogorov-Smirnov p > 0.01).
Each zoo goes through `basin map --similarity`.

usage: test_map_uncertainty.py BASIN WORK"""
import json
import os
import shutil
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from basin_runner import make_run  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
run = make_run(BASIN)
ZOOS = 200


def cosine(v):
    n = np.linalg.norm(v, axis=1)
    return v @ v.T / np.outer(n, n)


def map_of(root, cos, datasets, families, seed):
    """Runs basin map on the matrix; returns summary.json's uncertainty."""
    names = [f"m{i}" for i in range(len(datasets))]
    sim, groups, out = (os.path.join(root, x) for x in ("similarity.csv", "groups.csv", "map"))
    with open(sim, "w") as f:
        f.write(",".join(["model"] + names) + "\n")
        for i, name in enumerate(names):
            f.write(",".join([name] + [repr(float(x)) for x in cos[i]]) + "\n")
    with open(groups, "w") as f:
        f.write("model,dataset,family\n" + "".join(f"{n},d{d},f{g}\n" for n, d, g in zip(names, datasets, families)))
    run("map", "--similarity", sim, "--groups", groups, "--out", out, "--overwrite", "--quiet", "--seed", str(seed))
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)["uncertainty"]


def gaps(cos, datasets, families):
    i, j = np.triu_indices(len(datasets), 1)
    same = datasets[i] == datasets[j]
    family_only = ~same & (families[i] == families[j])
    other = families[i] != families[j]
    c = cos[i, j]
    return c[same].mean() - c[family_only].mean(), c[family_only].mean() - c[other].mean()


class Coverage(unittest.TestCase):
    def test_bootstrap_intervals_cover_the_true_gaps(self):
        root = os.path.join(WORK, "coverage")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        rng = np.random.default_rng(0)
        dim, family_of = 300, np.array([0, 0, 0, 1, 1, 1])
        family_dirs = rng.normal(size=(2, dim))
        centres = [0.6 * family_dirs[f] + rng.normal(size=dim) for f in family_of]
        noise = [0.8 + 0.3 * d for d in range(len(centres))]  # datasets of different tightness

        def zoo(seeds, r):
            v = np.array([centres[d] + noise[d] * r.normal(size=dim) for d in range(len(centres)) for _ in range(seeds)])
            d = np.repeat(np.arange(len(centres)), seeds)
            return cosine(v), d, family_of[d]

        truth = gaps(*zoo(300, np.random.default_rng(1)))
        covered = np.zeros(2)
        for rep in range(ZOOS):
            cos, d, f = zoo(5, np.random.default_rng(100 + rep))
            u = map_of(root, cos, d, f, rep)["nestings"][0]
            for k, name in enumerate(("fine_gap", "coarse_gap")):
                covered[k] += u[name]["low"] <= truth[k] <= u[name]["high"]
        rate = covered / ZOOS
        print(f"coverage of the 95% intervals over {ZOOS} zoos: dataset gap {rate[0]:.3f}, family gap {rate[1]:.3f}")
        for k in range(2):
            self.assertGreaterEqual(rate[k], 0.92)
            self.assertLessEqual(rate[k], 0.98)


class NullPValues(unittest.TestCase):
    def test_permutation_p_values_are_uniform_without_structure(self):
        from scipy.stats import kstest
        root = os.path.join(WORK, "null")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        dim, datasets, seeds = 200, 12, 4
        d = np.repeat(np.arange(datasets), seeds)
        f = d % 3  # 3 families of 4 datasets: 5,775 ways to relabel
        common = np.random.default_rng(2).normal(size=dim)
        p = {"fine_structure": [], "coarse_structure": []}
        for rep in range(ZOOS):
            r = np.random.default_rng(1000 + rep)
            v = common + 2.0 * r.normal(size=(len(d), dim))  # every model alike: no dataset, no family
            u = map_of(root, cosine(v), d, f, rep)["nestings"][0]
            for name in p:
                p[name].append(u[name]["p_value"])
        for name, values in p.items():
            result = kstest(values, "uniform")
            print(f"{name}: KS p = {result.pvalue:.3f} over {ZOOS} zoos (mean p-value {np.mean(values):.3f})")
            self.assertGreater(result.pvalue, 0.01, name)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
