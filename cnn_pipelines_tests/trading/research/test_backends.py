"""Training on Keras' JAX backend (how research runs on a GPU machine without TensorFlow): the same resumable,
checkpointed loop learns a planted signal, and its checkpoints predict the same under TensorFlow, this
project's default backend, so a model trained there serves here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from cnn_pipelines.storage.checkpoints import epoch_path
from cnn_pipelines.trading.research.cnn import predict, predict_ensemble

TRAIN_ON_JAX = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    import keras
    from cnn_pipelines.trading.research.cnn import fingerprint, jit_compile, predict_ensemble, train_period
    from cnn_pipelines.trading.research.precision import gpu_details
    from cnn_pipelines.trading.settings import ResearchSettings

    root = Path(sys.argv[1]) / "model"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 15, 15, 1)).astype("float32")
    y = (x[:, 7, :, 0].mean(axis=1) + 0.1 * rng.normal(size=len(x))).astype("float32")  # a planted signal
    dates = np.repeat(np.arange(10), 50)
    s = ResearchSettings(epochs=4, batch_size=64, steps_per_execution=4, top_k=2)
    res = train_period(x[:2500], y[:2500], x[2500:], y[2500:], dates, s, root, fingerprint(y, config={}),
                       log=lambda m: None)
    np.save(root / "x_test.npy", x[2500:])
    np.save(root / "jax_pred.npy", predict_ensemble(root, res.ensemble, x[2500:]))
    print(json.dumps({"backend": keras.backend.backend(), "jit": jit_compile(), "gpus": gpu_details(),
                      "ensemble": res.ensemble, "val_ic": res.epochs["val_ic"].tolist()}))
""")


def test_training_on_the_jax_backend_learns_and_its_checkpoints_serve_on_tensorflow(tmp_path):
    env = os.environ | {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "xla-cache")}
    run = subprocess.run([sys.executable, "-c", TRAIN_ON_JAX, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax" and out["jit"] is True and out["gpus"] == []  # compiled, and no GPU claimed
    assert any((tmp_path / "xla-cache").iterdir())  # compiled steps persist for the next period's network
    assert len(out["val_ic"]) == 4 and all(epoch_path(tmp_path / "model", e).exists() for e in range(1, 5))
    assert max(out["val_ic"]) > 0.1, out["val_ic"]  # the planted signal is learnt (no skill: 0 +- 0.05)
    assert out["ensemble"] == sorted(int(e) + 1 for e in np.argsort(out["val_ic"])[-2:])  # chosen on validation IC

    import keras

    assert keras.backend.backend() == "tensorflow"
    model = tmp_path / "model"
    x_test, jax_pred = np.load(model / "x_test.npy"), np.load(model / "jax_pred.npy")
    tf_pred = predict_ensemble(model, out["ensemble"], x_test)
    np.testing.assert_allclose(tf_pred, jax_pred, rtol=1e-4, atol=1e-5)
    single = predict(keras.models.load_model(epoch_path(model, out["ensemble"][0])), x_test)
    assert np.corrcoef(single, x_test[:, 7, :, 0].mean(axis=1))[0, 1] > 0.1
