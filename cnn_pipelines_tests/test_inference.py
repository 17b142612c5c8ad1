"""Batched inference (cnn_pipelines.inference): what every pipeline predicts with."""

import numpy as np


def test_batched_inference_returns_what_model_predict_returns():
    """inference.predict_batches replaces model.predict (which traces a graph per model object): the same
    values and structure for one input, several inputs, several named outputs, a ragged last batch and no rows."""
    import keras

    from cnn_pipelines.inference import predict_batches

    keras.utils.set_random_seed(0)
    a, b = keras.Input((6,), name="a"), keras.Input((2,), name="b")
    h = keras.layers.Dense(4, activation="relu")(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], {"one": keras.layers.Dense(1, name="one")(h),
                                 "three": keras.layers.Dense(3, activation="softmax", name="three")(h)})
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(2500, 6)).astype("float32"), rng.normal(size=(2500, 2)).astype("float32")
    ours, theirs = predict_batches(model, [xa, xb], 1024), model.predict([xa, xb], batch_size=1024, verbose=0)
    assert set(ours) == {"one", "three"} and all(ours[k].shape == np.asarray(theirs[k]).shape for k in ours)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-5, atol=1e-6)
    single = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    np.testing.assert_allclose(predict_batches(single, xa, 1000), single.predict(xa, verbose=0), rtol=1e-5, atol=1e-6)
    assert predict_batches(single, xa[:0]).shape == (0, 1)
