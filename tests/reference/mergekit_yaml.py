"""A mergekit YAML configuration as text, for the tests and benchmarks that run the same merge in
basin and in mergekit (tests/merge/test_mergekit.py, bench/mergekit_parity.py). Values are written
as JSON, which YAML reads as the same numbers, booleans, strings and lists."""
import json


def config_text(method, base, models, per_model, shared, dtype="float32"):
    """merge_method, base_model (when given), models with their per-model parameters (a dict or None
    per model), the shared parameters, and dtype."""
    lines = [f"merge_method: {method}"]
    if base:
        lines.append(f"base_model: {base}")
    lines.append("models:")
    for m, p in zip(models, per_model):
        lines.append(f"  - model: {m}")
        if p:
            lines.append("    parameters:")
            lines += [f"      {k}: {json.dumps(v)}" for k, v in p.items()]
    if shared:
        lines.append("parameters:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in shared.items()]
    lines.append(f"dtype: {dtype}")
    return "\n".join(lines) + "\n"
