"""The hot path: batch values -> exact float64 sums per component. Needs TensorFlow.

- ``accumulator.py``: ``Accumulator``: one split's components, their running sums, folds;
  its state (``FoldState``) changes by one assignment.
- ``reduction.py``: the reduction contract (what one batch adds to the sums), and every
  piece of code that reduces batches by it.
- ``inputs.py``: checks and weights of one batch's values (``batch_size``, ``sample_weight``).
- ``staging.py``: a batch's values checked and staged for recording.
- ``pending.py``: values held until a fold (joined rows, entries, window cuts).
- ``windows.py``: batch-curve windows (``update_freq=N``) and the sink the run hands in.
- ``sums.py``: ``Sums``: weighted total, weight and non-finite count per component.
- ``graph_sums.py``: the same sums kept in a variable by calls inside ``tf.function``.
- ``distribute.py``: ``tf.distribute`` strategies: replicas, workers, all-reduce.
- ``tf_private.py``: the only place that uses TensorFlow's private API (measured fast paths).
- ``component_mean.py``: ``ComponentMean``, the ``keras.metrics.Mean``-style view of one sum.
- ``nonfinite.py``: what a NaN or infinity does (``raise``, ``warn``, ``skip``).

Nothing is imported here.
"""
