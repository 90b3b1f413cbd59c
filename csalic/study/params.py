"""Loading and validating a study description (``params.yaml``).

The same JSON schema (``csalic/study/schemas/params.schema.yaml``, package data, so an
installed wheel validates too) is used by Snakemake's ``validate`` and by every
``csalic`` subcommand, so a typo in a key
or a non-positive λ is caught in one place with the key's path in the message.
YAML is read with ``safe_load``: a params file can never construct objects.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import CsalicError

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "params.schema.yaml"


@lru_cache(maxsize=1)
def schema() -> dict:
    if not SCHEMA_PATH.is_file():
        raise CsalicError(f"params schema {SCHEMA_PATH} is missing: reinstall csalic (it ships as package data)")
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _where(error) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return path or "(top level)"


def validate(params: dict, source: str = "params") -> dict:
    """Raise CsalicError naming the first offending key; return ``params`` unchanged."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            where = _where(err)
            key = f"{where}/{extra[0]}" if where != "(top level)" else extra[0]
            raise CsalicError(f"{source}: unknown key '{key}' (allowed: {', '.join(err.schema.get('properties', {}))})")
        raise CsalicError(f"{source}: '{_where(err)}': {err.message}")
    check_init_keys(params["train"], source)
    check_seeds(params, source)
    check_learned_names(params, source)
    return params


def check_learned_names(params: dict, source: str) -> None:
    """A learned codec's name is its method's name: it may not be read as a variant's, an anchor's or a point's."""
    import re

    from ..names import CODEC_NAMES, POINT_PATTERN, VARIANT_NAMES

    for name in params.get("learned") or {}:
        if (name in VARIANT_NAMES or name in CODEC_NAMES or name.startswith("csalic") or "lambda_" in name
                or re.fullmatch(POINT_PATTERN, name)):
            raise CsalicError(f"{source}: learned codec name {name!r} is taken (a variant, an anchor, or csalic's "
                              "own prefix): name it after the codec, e.g. mbt2018-mean")


def check_seeds(params: dict, source: str) -> None:
    """train.seeds holds the study's seed: its jobs are the ones a one-seed study trains (and keeps)."""
    seeds = params["train"].get("seeds")
    if seeds is not None and params["seed"] not in seeds:
        raise CsalicError(f"{source}: 'train/seeds' {seeds} must hold the study's seed {params['seed']} (its jobs are "
                          "the one-seed study's): add it, or change seed")


# the train keys that only some train.init read: a value set for another init would be silently unused
INIT_READS = {"scratch": (), "warmup": ("warmup_from", "finetune_steps", "warmup_lambda"),
              "pretrained": ("pretrained", "finetune_steps")}


def check_init_keys(train: dict, source: str) -> None:
    init = train.get("init", "scratch")
    for key in ("pretrained", "warmup_from", "finetune_steps", "warmup_lambda"):
        if train.get(key) is not None and key not in INIT_READS[init]:
            readers = [i for i, keys in INIT_READS.items() if key in keys]
            raise CsalicError(f"{source}: 'train/{key}' is set but train.init: {init} does not read it "
                              f"(only {' or '.join(readers)} does): set it to null")


def load(path: str | Path = "params.yaml") -> dict:
    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"params file {p} not found")
    try:
        with open(p, encoding="utf-8") as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise CsalicError(f"{p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise CsalicError(f"{p} must hold a mapping of study settings")
    return validate(params, str(p))


def params_hash(params: dict) -> str:
    """Short stable hash of a study description: the provenance tag on every result."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def experiment_name(params: dict) -> str:
    return params["tracking"].get("experiment") or f"csalic-{params['study']}"
