"""The reference for basin's hull distances (space/locate.h), computed from task vectors with
scipy and numpy: the convex hull by scipy's NNLS with the sum-to-one condition as a heavily weighted
row, the affine hull from the equality-constrained normal equations (least squares)."""
import numpy as np


def hull_distances(tq, t):
    """(convex distance, barycentric weights, affine distance) of vector tq to the rows of t."""
    from scipy.optimize import nnls
    k = len(t)
    m = 1e3 * np.linalg.norm(t, 2)
    w, _ = nnls(np.vstack([t.T, m * np.ones(k)]), np.concatenate([tq, [m]]))
    w = w / w.sum()
    convex = np.linalg.norm(tq - w @ t)
    kkt = np.block([[t @ t.T, np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
    a = np.linalg.lstsq(kkt, np.concatenate([t @ tq, [1.0]]), rcond=None)[0][:-1]
    return convex, w, np.linalg.norm(tq - a @ t)
