"""The samples of a dataset's splits: moved to :mod:`vadx.data.splits` (evaluation and
xai-eval read them too); kept here for the callers of ``vadx.train.data``."""

from vadx.data.splits import load_samples, split_names, training_samples

__all__ = ["load_samples", "split_names", "training_samples"]
