"""Prints every value of every Parquet file under a directory, one file's
rows per line, whether or not a Delta log still references the file: what
a byte scan of compressed pages could miss. Used by tests/e2e/gdpr.rs."""

import pathlib
import sys

import pyarrow.parquet as pq

for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.parquet")):
    print(path, pq.read_table(path).to_pylist())
