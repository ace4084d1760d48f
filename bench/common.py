"""Shared by the benchmark scripts: paths, the benchmark model's size, and thread settings that
match basin's (see docs/PERFORMANCE.md). Import it before torch: it sets OMP_WAIT_POLICY for
reference child processes, which libgomp reads only when it loads."""
import os
import sys

if "--child" in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as basin does

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

# the benchmark model: RoBERTa architecture, 6 layers, hidden 512, 8 heads, FFN 2048
H, L, N, I = 512, 6, 8, 2048


def set_threads(threads):
    """torch's intra-op threads and OpenBLAS's own pool, like basin's --threads."""
    torch.set_num_threads(threads)
    import ctypes
    try:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(threads)
    except OSError:
        pass
