"""What ``tf_keras`` (Keras 2, ``TF_USE_LEGACY_KERAS=1``) asks of a callback beyond Keras 3's.

``tf_keras``' ``CallbackList`` calls these on every callback it is given; a
Keras 3 ``Callback`` lacks them, so without this mix-in ``model.fit`` fails
with ``AttributeError: ... '_implements_train_batch_hooks'``.
"""

from __future__ import annotations


class LegacyKerasHooks:
    """The callback protocol of ``tf_keras.callbacks.CallbackList``.

    Batch hooks are declared implemented: a hand-driven ``CallbackList`` skips
    the batch calls of callbacks that say they have none, and lossboard needs
    them in custom loops. Logs are taken as NumPy values (``_supports_tf_logs``
    False), as for most of ``tf_keras``' own callbacks.
    """

    _supports_tf_logs = False
    _chief_worker_only = None

    def _implements_train_batch_hooks(self) -> bool:
        return True

    def _implements_test_batch_hooks(self) -> bool:
        return True

    def _implements_predict_batch_hooks(self) -> bool:
        return False
