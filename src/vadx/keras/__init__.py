"""Keras models in vadx: read a TimeDistributed-CNN → RNN → Dense classifier (``.keras``,
legacy ``.h5``, or weights + config) with h5py alone and get a vadx model with the same outputs.

>>> from vadx.keras import import_keras                                    # doctest: +SKIP
>>> imported = import_keras("detector.keras", classes=("fight", "normal"))  # doctest: +SKIP
>>> save_model(imported.model, "runs/imported", metadata=imported.metadata) # doctest: +SKIP
"""

from vadx.keras.convert import SUPPORTED
from vadx.keras.importer import PREPROCESSING, KerasImport, Preprocessing, import_keras

__all__ = ["PREPROCESSING", "SUPPORTED", "KerasImport", "Preprocessing", "import_keras"]
