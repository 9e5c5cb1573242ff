"""Trained fusion models kept in the library, one folder per training run.

    <library>/models/fusion/<schema>/v<N>/
        config.json            inputs and their dims, classes, settings, scores per method
        report.json            the whole cross-validation report (FusionReport)
        <method>.safetensors   the weights of each method refitted on all labelled items

Each `train` makes the next version, so an earlier model stays until someone removes
it. A version is written into a hidden folder and renamed into place, so a crash
never leaves half a version. Weights are safetensors (never pickle): loading a model
runs no code from the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.fusion.features import Input, item_features
from mmstudio.fusion.metrics import FusionReport

if TYPE_CHECKING:
    from mmstudio.fusion.models import FusionModel
    from mmstudio.fusion.train import Hyper, Trained

FORMAT = "mmstudio-fusion/1"
_VERSION = re.compile(r"^v(\d+)$")
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")


def schema_folder(library, schema: str) -> Path:
    """Where a schema's versions live. Schema names may hold characters a file system
    refuses (`:` on Windows) or mean something to it (`..`): such names get a safe
    spelling plus a hash, so two names never share a folder."""
    name = schema
    if not _PLAIN.match(schema) or schema.endswith((".", " ")):
        digest = hashlib.sha1(schema.encode()).hexdigest()[:8]
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", schema).strip("._ ")[:40] + "-" + digest
    return Path(library.path) / "models" / "fusion" / name


def _file_stem(method: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", method)


def versions(library, schema: str) -> list[int]:
    """The saved versions of a schema's models, oldest first."""
    folder = schema_folder(library, schema)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir()
                  if (m := _VERSION.match(p.name)) and (p / "config.json").exists())


def trained_schemas(library) -> list[str]:
    """The schemas that have saved fusion models."""
    root = Path(library.path) / "models" / "fusion"
    found = set()
    for config in root.glob("*/v*/config.json") if root.is_dir() else []:
        try:
            found.add(json.loads(config.read_text(encoding="utf-8"))["schema"])
        except (OSError, ValueError, KeyError):
            continue
    return sorted(found)


def _version_folder(library, schema: str, version: int | None) -> tuple[int, Path]:
    known = versions(library, schema)
    if not known:
        raise MmstudioError(f"no fusion models for schema {schema!r} yet: train some with "
                            f"`mmstudio fusion train --schema {schema}`")
    if version is None:
        version = known[-1]
    if version not in known:
        raise MmstudioError(f"schema {schema!r} has no fusion version {version} "
                            f"(it has {', '.join(f'v{v}' for v in known)})")
    return version, schema_folder(library, schema) / f"v{version}"


def save(library, schema: str, trained: Trained) -> FusionReport:
    """Write `trained` as the schema's next version; returns its report, versioned."""
    from safetensors.torch import save_file

    folder = schema_folder(library, schema)
    folder.mkdir(parents=True, exist_ok=True)
    version = (versions(library, schema) or [0])[-1] + 1
    staging = folder / f".v{version}-{os.getpid()}-{time.monotonic_ns()}"
    staging.mkdir()
    try:
        report = replace(trained.report, version=version)
        methods = {}
        for method, model in trained.models.items():
            stem = _file_stem(method)
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(staging / f"{stem}.safetensors"),
                      metadata={"format": FORMAT, "method": method, "schema": schema})
            scores = report.methods[method]
            methods[method] = {"file": f"{stem}.safetensors", "accuracy": scores.accuracy,
                               "macro_f1": scores.macro_f1,
                               "late_weights": scores.late_weights}
        config = {
            "format": FORMAT, "schema": schema, "version": version, "created": report.created,
            "n_items": report.n_items, "folds": report.folds, "classes": list(report.classes),
            "inputs": [{"name": i.name, "kind": i.kind, "space": i.space, "dim": d}
                       for i, d in zip(trained.inputs, trained.dims, strict=True)],
            "hyper": trained.hyper.to_dict(), "best": report.best, "methods": methods,
        }
        _write_json(staging / "config.json", config)
        _write_json(staging / "report.json", report.to_dict())
        target = folder / f"v{version}"
        if target.exists():  # another writer got there first: never overwrite a version
            raise MmstudioError(f"fusion version v{version} of {schema!r} appeared while "
                                "saving; train again")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")


def config(library, schema: str, version: int | None = None) -> dict[str, Any]:
    """A version's config.json (the latest version when None)."""
    _, folder = _version_folder(library, schema, version)
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def report(library, schema: str, version: int | None = None) -> FusionReport:
    """A version's cross-validation report (the latest version when None)."""
    _, folder = _version_folder(library, schema, version)
    return FusionReport.from_dict(json.loads((folder / "report.json").read_text(encoding="utf-8")))


@dataclass(frozen=True)
class SavedModel:
    schema: str
    version: int
    method: str
    inputs: tuple[Input, ...]
    dims: tuple[int, ...]
    classes: tuple[str, ...]
    hyper: Hyper
    model: FusionModel


def load(library, schema: str, version: int | None = None,
         method: str | None = None) -> SavedModel:
    """One saved model (the version's best method when `method` is None)."""
    from safetensors.torch import load_file

    from mmstudio.fusion.models import build
    from mmstudio.fusion.train import Hyper

    version, folder = _version_folder(library, schema, version)
    cfg = config(library, schema, version)
    method = method or cfg["best"]
    if method not in cfg["methods"]:
        raise MmstudioError(f"fusion v{version} of {schema!r} has no method {method!r} "
                            f"(it has {', '.join(cfg['methods'])})")
    inputs = tuple(Input(i["kind"], i["space"]) for i in cfg["inputs"])
    dims = tuple(int(i["dim"]) for i in cfg["inputs"])
    hyper = Hyper.from_dict(cfg["hyper"])
    model = build(method, [i.name for i in inputs], dims, len(cfg["classes"]),
                  **hyper.model_kwargs())
    model.load_state_dict(load_file(str(folder / cfg["methods"][method]["file"])))
    model.eval()
    return SavedModel(schema, version, method, inputs, dims, tuple(cfg["classes"]), hyper, model)


def predict(library, schema: str, item_ids: Sequence[int], version: int | None = None,
            method: str | None = None) -> dict[int, tuple[str, float, dict[str, float]]]:
    """item -> (most likely label, its probability, probability of every label), by a
    saved model. Items with none of the model's inputs are left out."""
    from mmstudio.fusion.train import predict_probs

    saved = load(library, schema, version, method)
    spaces = library.store.spaces
    for inp, dim in zip(saved.inputs, saved.dims, strict=True):
        if spaces.get(inp.space) != dim:
            raise MmstudioError(f"fusion v{saved.version} of {schema!r} reads {inp.name} "
                                f"({dim}-d), which this library no longer holds; train again")
    features = item_features(library, item_ids, saved.inputs)
    features = features.rows(np.flatnonzero(features.present.any(1)))
    if not len(features.item_ids):
        return {}
    probs, _ = predict_probs(saved.model, features)
    return {int(i): (saved.classes[int(p.argmax())], float(p.max()),
                     dict(zip(saved.classes, p.astype(float).tolist(), strict=True)))
            for i, p in zip(features.item_ids, probs, strict=True)}
