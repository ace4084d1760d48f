"""Type stubs of basin's extension module (python/src/module.cpp)."""
from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

_Path = Union[str, PathLike]

class Error(RuntimeError):
    """A library error, with basin's one-line message (file, place, what was expected)."""

class Checkpoint:
    """A checkpoint folder, a .safetensors file or a shard index, memory-mapped."""
    def __init__(self, path: _Path) -> None: ...
    def names(self) -> List[str]: ...
    def shape(self, name: str) -> List[int]: ...
    def dtype(self, name: str) -> str: ...
    def tensor(self, name: str) -> np.ndarray:
        """A read-only view of the file where numpy has the dtype, else (BF16, FP8) a float32 copy."""

class Store:
    """An experiment's results store (EXPERIMENT_DIR or its store.sqlite), read-only."""
    def __init__(self, path: _Path) -> None: ...
    def jobs(self) -> List[Dict[str, Any]]: ...
    def metrics(self, job_prefix: str = "") -> List[Dict[str, Any]]: ...
    def points(self, job_prefix: str = "") -> List[Dict[str, Any]]: ...
    def models(self) -> List[Dict[str, Any]]: ...
    def meta(self, key: str) -> Optional[str]: ...

def merge(method: str, models: Sequence[str], out: str, base: Optional[str] = None,
          weights: Optional[Sequence[float]] = None, **parameters: Any) -> Dict[str, Any]:
    """Merge checkpoints into `out` (basin merge --method); returns basin_merge.json."""

def merge_config(config: str, out: str, *, overwrite: bool = False, threads: int = 0) -> Dict[str, Any]:
    """Run a mergekit YAML configuration (basin merge --config); returns basin_merge.json."""

def map(base: str, models: Sequence[str], groups: Optional[str] = None, *, reference: str = "base",
        clusters: int = 0, seed: int = 0, bootstrap: int = 0, per_layer: bool = False, threads: int = 1,
        progress: Optional[Any] = None) -> Dict[str, Any]:
    """The weight-space map (basin map, nothing written): cosine / distance matrices, PCA and t-SNE
    coordinates as numpy, per groups-file column the clusterings and their scores, nestings,
    uncertainty (bootstrap=R) and per-layer blocks (per_layer=True)."""

def map_matrix(similarity: Optional[np.ndarray] = None, *, gram: Optional[np.ndarray] = None,
               norms: Optional[np.ndarray] = None, names: Optional[Sequence[str]] = None,
               groups: Union[None, _Path, Dict[str, Sequence[str]]] = None, clusters: int = 0, seed: int = 0,
               bootstrap: int = 0) -> Dict[str, Any]:
    """The map of a given cosine and/or Gram matrix (basin map --similarity); the same dict as map()."""

def interpolate(a: str, b: str, data: Union[_Path, Sequence[str]], *, alphas: Optional[Sequence[float]] = None,
                extrapolate: bool = False, l2: float = ..., max_length: int = ..., batch_size: int = ...,
                probe_train_limit: int = 0, probe_test_limit: int = 0, cache: str = "", threads: int = 0,
                jobs: int = 1, progress: Union[bool, Any] = False) -> Dict[str, Any]:
    """The generalized loss along the line between A and B: alphas, targets, loss and accuracy
    [alphas, targets] (has_torch only)."""

def hull(members: Sequence[str], data: Union[_Path, Sequence[str]], *, outside: Sequence[str] = (),
         base: Optional[str] = None, samples: int = 0, random: int = 0, seed: int = 0,
         weights: Optional[Sequence[Sequence[float]]] = None, l2: float = ..., max_length: int = ...,
         batch_size: int = ..., probe_train_limit: int = 0, probe_test_limit: int = 0, cache: str = "",
         threads: int = 0, jobs: int = 1, progress: Union[bool, Any] = False) -> Dict[str, Any]:
    """In / In' / Ex of a group: points, loss and accuracy [points, targets], PB rows (has_torch only)."""

def plane(models: Sequence[str], data: Union[_Path, Sequence[str]], *, grid: str = "21x21", margin: float = 0.2,
          random_seed: Optional[int] = None, extent: float = 1.0, l2: float = ..., max_length: int = ...,
          batch_size: int = ..., probe_train_limit: int = 0, probe_test_limit: int = 0, cache: str = "",
          threads: int = 0, jobs: int = 1, progress: Union[bool, Any] = False) -> Dict[str, Any]:
    """The loss surface on a plane: u, v, markers, loss and accuracy [grid points, targets] (has_torch only)."""

has_torch: bool

def features(model: _Path, data: _Path, *, max_length: int = 128, batch_size: int = 64, cache: str = "",
             threads: int = 0) -> np.ndarray:
    """First-token features of the model's body on a dataset file, float32 [N, H] (has_torch only)."""

def probe(model: _Path, train: _Path, test: _Path, *, l2: float = 1e-3, max_length: int = 128, cache: str = "",
          threads: int = 0) -> Dict[str, Any]:
    """The generalized loss, as basin probe: test_loss, test_accuracy, train_loss, ... (has_torch only)."""

def gram(base: str, models: Sequence[str], *, threads: int = 1, memory_limit: int = 2 << 30,
         progress: Optional[Any] = None) -> np.ndarray:
    """The Gram matrix of the task vectors m_i - base over the body, float64 [N, N]."""

def regmean(models: Sequence[str], data: Sequence[str], out: str, *, examples: int = 256, alpha: float = 0.9,
            max_length: int = 128, batch_size: int = 32, seed: int = 0, overwrite: bool = False,
            threads: int = 0) -> Dict[str, Any]:
    """RegMean (basin merge --method regmean) on each model's data; returns basin_merge.json (has_torch only)."""
