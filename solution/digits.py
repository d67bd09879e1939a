"""The 8x8 digits data set (bundled with scikit-learn, no download) as torch tensors."""
import torch
from sklearn.datasets import load_digits


def load_digits_split(test_fraction=0.25, seed=0):
    """
    Load digits, scale pixels to [0, 1] and split with a fixed seeded permutation.

    Inputs:
    - test_fraction: share of the 1797 images held out for testing
    - seed: seed of the permutation; the same seed always gives the same split

    Returns:
    - X_train: (N_train, 64) float32; y_train: (N_train,) int64 labels 0..9
    - X_test: (N_test, 64) float32; y_test: (N_test,) int64
    """
    data = load_digits()
    X = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * len(y))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def one_hot(labels, C, dtype=torch.float32):
    """
    Inputs:
    - labels: (N,) integer classes in [0, C)
    - C: number of classes

    Returns:
    - y: (N, C) one-hot, dtype float32 unless given
    """
    y = torch.zeros(len(labels), C, dtype=dtype)
    y[torch.arange(len(labels)), labels] = 1
    return y
