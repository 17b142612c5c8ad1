"""Gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor) on the 225 image pixels: non-linear
like the CNN, without its spatial prior. The number of trees is chosen on the fold's validation IC (staged
predictions every 25 trees), never on the test month."""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingRegressor

from cnn_pipelines.trading.models.base import Fitted, FoldArrays, ModelSpec, PixelPredictor, best, validation_ic

MAX_TREES, STEP = 200, 25


def fit_hgb(arrays: FoldArrays, seed: int) -> Fitted:
    model = HistGradientBoostingRegressor(max_iter=MAX_TREES, learning_rate=0.05, max_leaf_nodes=15,
                                          min_samples_leaf=100, l2_regularization=1.0, early_stopping=False,
                                          random_state=seed)
    model.fit(arrays.flat(arrays.x_train), arrays.y_train)
    rows = [{"trees": i + 1, "val_ic": validation_ic(arrays, scores)}
            for i, scores in enumerate(model.staged_predict(arrays.flat(arrays.x_val)))
            if (i + 1) % STEP == 0 or i + 1 == model.n_iter_]
    chosen = best(rows)
    return Fitted(PixelPredictor(model, stage=chosen["trees"]), chosen, rows)


HGB = ModelSpec("hgb", "gradient-boosted trees on the 225 image pixels (tree count chosen on validation IC)", fit_hgb)
