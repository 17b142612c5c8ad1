"""Ridge regression on the 225 pixels of the CNN-TA images: is the convolution adding anything over a
regularised linear model of the same inputs? The penalty is chosen on the fold's validation IC."""

from __future__ import annotations

from sklearn.linear_model import Ridge

from cnn_pipelines.trading.models.base import Fitted, FoldArrays, ModelSpec, PixelPredictor, best, validation_ic

ALPHAS = (1.0, 10.0, 100.0, 1_000.0, 10_000.0)


def fit_ridge(arrays: FoldArrays, seed: int) -> Fitted:
    x_tr, x_va = arrays.flat(arrays.x_train), arrays.flat(arrays.x_val)
    models, rows = {}, []
    for alpha in ALPHAS:
        model = Ridge(alpha=alpha).fit(x_tr, arrays.y_train)
        models[alpha] = model
        rows.append({"alpha": alpha, "val_ic": validation_ic(arrays, model.predict(x_va))})
    chosen = best(rows)
    return Fitted(PixelPredictor(models[chosen["alpha"]]), chosen, rows)


RIDGE = ModelSpec("ridge", "ridge regression on the 225 image pixels (penalty chosen on validation IC)", fit_ridge)
