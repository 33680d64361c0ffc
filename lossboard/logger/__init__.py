"""The write path: ``LossLogger`` and the ways it is driven. Needs TensorFlow.

Data flows one way: batch values -> ``lossboard.accumulate`` -> epoch values -> event files
(written here) -> ``lossboard.reader`` -> ``lossboard.compare``.

- ``loss_logger.py``: ``LossLogger``, the facade: two calls in a custom loop, a Keras callback
  in ``fit``/``evaluate``.
- ``modes.py``: who drives it: a custom loop, Keras' ``fit``, ``evaluate``.
- ``keras_caller.py``: finding the Keras ``fit``/``evaluate`` call that drives it.
- ``keras_backend.py``: Keras on TensorFlow's backend, or an error naming the setting to fix.
- ``legacy_keras.py``: the callback protocol ``tf_keras`` asks for beyond Keras 3's.
- ``arguments.py``: checks of the public calls' arguments (each error names what was wrong).
- ``run.py``: one run: its splits' accumulators, its writer, its batch curves, its one lock.
- ``batch_curves.py``: ``update_freq=N`` batch curves: windows of batches, written in bulk.
- ``writer.py``: TensorBoard summaries in Keras' layout (per-split writers, hparams).
- ``sharing.py``: two loggers (or processes) on one run directory are warned about.
- ``progress.py``: the ``verbose`` progress lines.
- ``quiet.py``: importing TensorFlow without its start-up log noise.

Nothing is imported here: ``import lossboard.logger.quiet`` does not start TensorFlow.
"""
