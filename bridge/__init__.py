"""bridge: the one place where JAX meets PyTorch, pandas and Parquet.

* `to_torch` / `from_torch`: zero-copy through DLPack on the same device.
* `to_frame`: samples -> DataFrame with category labels and integer dtypes.
* `stream`: endless fresh batches (torch tensors or JAX arrays), compiled once.
* `write_parquet`: n rows to a Parquet file chunk by chunk, with bounded memory.
"""

from bridge._frame import to_frame
from bridge._parquet import arrow_schema, write_parquet
from bridge._stream import stream
from bridge._torch import from_torch, to_torch

__all__ = [
    "arrow_schema",
    "from_torch",
    "stream",
    "to_frame",
    "to_torch",
    "write_parquet",
]
