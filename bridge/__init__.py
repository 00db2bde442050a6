"""bridge: the one place where JAX meets PyTorch, pandas and Parquet.

* `to_torch` / `from_torch`: zero-copy through DLPack on the same device.
* `to_frame`: samples -> DataFrame with category labels and integer dtypes.
* `stream`: endless fresh batches (torch tensors or JAX arrays), compiled once.
* `write_parquet`: n rows to a Parquet file chunk by chunk, with bounded memory.
* `read_table`: a user's CSV/TSV/Parquet file -> DataFrame, with errors naming the file.
* `write_samples`: n decoded rows of an SCM or ensemble to a CSV/Parquet file.
* `table_format`: which table format a file name means.
* `write_dataset`: n rows as a sharded Parquet folder + manifest (serial, one shard
  of a job array, or over Ray), equal to `write_samples`' rows; resumable.
* `verify_dataset`: rehashes a dataset folder's shards against its manifest.
"""

from bridge._dataset import verify_dataset
from bridge._frame import to_frame
from bridge._parquet import arrow_schema, write_parquet
from bridge._sharded import write_dataset
from bridge._stream import stream
from bridge._table import read_table, table_format, write_samples
from bridge._torch import from_torch, to_torch

__all__ = [
    "arrow_schema",
    "from_torch",
    "read_table",
    "stream",
    "table_format",
    "to_frame",
    "to_torch",
    "verify_dataset",
    "write_dataset",
    "write_parquet",
    "write_samples",
]
