"""basin from Python: the C++ library (no subprocesses) with numpy in and out.

    import basin
    ck = basin.Checkpoint("models/sst2-s1")
    w = ck.tensor("roberta.embeddings.word_embeddings.weight")   # numpy, a view of the file
    basin.merge("mean", ["a", "b", "c"], "centroid")             # a checkpoint folder
    G = basin.gram("base", ["a", "b", "c"])                      # numpy [3, 3], float64
    m = basin.map("base", models, "groups.csv")                  # cosine, PCA, t-SNE, clusters
    m = basin.map_matrix(cosines, groups={"dataset": labels})    # the same from a numpy matrix
    basin.probe("centroid", "train.jsonl", "test.jsonl")         # the generalized loss (has_torch)
    basin.interpolate("a", "b", ["data/sst2"])                   # loss along the line (has_torch)

Errors of the library raise basin.Error (a RuntimeError) with its one-line message.
"""
from ._basin import Checkpoint, Error, Store, gram, has_torch, map, map_matrix, merge, merge_config  # noqa: F401

__all__ = ["Checkpoint", "Error", "Store", "frame", "gram", "has_torch", "map", "map_matrix", "merge", "merge_config",
           "tqdm_progress"]
if has_torch:  # features, the generalized loss and the region studies need libtorch (not in a `pip install .` build)
    from ._basin import features, hull, interpolate, plane, probe, regmean  # noqa: F401
    __all__ += ["features", "hull", "interpolate", "plane", "probe", "regmean"]


def frame(records):
    """A list of records (Store.jobs(), .metrics(), .points(), .models()) as a pandas DataFrame.
    pandas is not a dependency of basin: it is imported here, and an ImportError says so."""
    try:
        import pandas
    except ImportError as e:
        raise ImportError("basin.frame needs pandas (pip install pandas); the records are plain lists of dicts") from e
    return pandas.DataFrame.from_records(records)


def tqdm_progress(description=""):
    """A progress callable for merge(progress=...), gram(progress=...) and map(progress=...) that draws a tqdm bar
    (tqdm must be installed: it is not a dependency of basin)."""
    from tqdm import tqdm
    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
    return update
