"""The event-file codec, without TensorFlow: the bytes TensorBoard reads and writes.

- ``framing.py``: records: length, masked CRC32C, data, masked CRC32C.
- ``encode.py``: scalar summaries encoded as the bytes ``tf.summary.scalar`` writes; a file
  of points appended in bulk.
- ``decode.py``: events and summaries decoded (scalars of every dtype, hparams).
- ``files.py``: local files, and remote ones through ``tf.io.gfile`` (imported only then).

Nothing here imports TensorFlow (a test checks it).
"""
