"""Fusion classifiers: labels predicted from several modalities' stored vectors at once.

Importing this package loads neither torch nor scikit-learn: they load when a model
is trained, loaded or scored.
"""

from mmstudio.fusion.features import (
    Features,
    Input,
    available_inputs,
    default_inputs,
    item_features,
)
from mmstudio.fusion.metrics import ClassScores, FusionReport, MethodReport, Prediction, Scores
from mmstudio.fusion.saved import SavedModel, load, predict, report, trained_schemas, versions
from mmstudio.fusion.train import Hyper, Trained, resolve_methods, train, train_features

__all__ = [
    "ClassScores", "Features", "FusionReport", "Hyper", "Input", "MethodReport", "Prediction",
    "SavedModel", "Scores", "Trained", "available_inputs", "default_inputs", "item_features",
    "load", "predict", "report", "resolve_methods", "train", "train_features",
    "trained_schemas", "versions",
]
