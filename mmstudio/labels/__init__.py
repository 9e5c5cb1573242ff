"""Labels: schemas, labeling sessions, the undoable journal, suggestions, export/import."""

from mmstudio.labels.schema import LabelDef, Schema, SchemaError
from mmstudio.labels.store import Change, LabelStore, Suggestion

__all__ = ["Change", "LabelDef", "LabelStore", "Schema", "SchemaError", "Suggestion"]
