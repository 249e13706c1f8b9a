"""Tabular pipeline: date parts, fold-fitted preprocessing, a model registry and the baseline."""

from .dates import add_datepart
from .models import create_model, list_models, register_model
from .preprocess import ColumnPlan, TabularPreprocessor, plan_columns

__all__ = ["ColumnPlan", "TabularPreprocessor", "add_datepart", "create_model", "list_models",
           "plan_columns", "register_model"]
