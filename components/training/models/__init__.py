"""Built-in model names and user model classes (`package.module:Class`).

A kubepipe model is a `torch.nn.Module` subclass with the constructor

    __init__(self, num_labels: int, input_spec: dict, **hyperparameters)

and `forward(batch: dict[str, Tensor]) -> Tensor[batch, num_labels]` (logits).
`input_spec` carries `encoding` plus `vocab_size`/`max_length` (text) or
`num_features` (tabular). The class attribute `encoding` picks the
preprocessing: `hashed-ngrams` (batch `ids` [B, K], 0 = padding), `bytes`
(`ids` [B, L], 0 = padding, 257 = leading [CLS]), `wordpiece` (`input_ids`
and `attention_mask` [B, L], from a tokenizer.json) or `tabular` (`x` [B, F]
float32, standardised). Optional hooks: `resolve_hyperparameters(encoder_kwargs,
model_kwargs)` (training only: e.g. find a base model), `load_pretrained()` (called
on a freshly built model before training) and `param_groups(lr, weight_decay)`
(optimizer groups, e.g. layer-wise learning rates); class attribute `worker_imports`
(library modules a DDP worker's forkserver loads once, see training/distributed.py). Nothing heavy is imported here
(compile-time checks use it).
"""

from __future__ import annotations

import importlib
import inspect
import re

from kubepipe.components.checks import bound_at_run, did_you_mean
from kubepipe.components.errors import ModelError

__all__ = ["BUILTIN_MODELS", "ENCODER_KEYS", "MODEL_KEYS", "MODEL_TASKS", "resolve_model_class",
           "model_encoding", "split_hyperparameters", "encoder_problems", "model_problems", "build_model"]

_PKG = "kubepipe.components.training.models"
BUILTIN_MODELS = {
    "text-classifier": f"{_PKG}.text_classifier:TextClassifier",
    "transformer-classifier": f"{_PKG}.transformer:TransformerClassifier",
    "tabular-mlp": f"{_PKG}.tabular_mlp:TabularMLP",
    "pretrained-encoder": f"{_PKG}.pretrained_encoder:PretrainedEncoderClassifier",
}
MODEL_TASKS = {"text-classifier": "text", "transformer-classifier": "text", "tabular-mlp": "tabular",
               "pretrained-encoder": "text"}
# Hyperparameter names, kept here so checks need not import torch (a test pins them to the signatures).
ENCODER_KEYS = {"hashed-ngrams": ("buckets", "word_ngrams", "char_ngrams", "max_features"),
                "bytes": ("max_length", "lowercase"), "tabular": (), "wordpiece": ("max_length",)}
MODEL_KEYS = {"text-classifier": ("dim", "hidden", "dropout"),
              "transformer-classifier": ("d_model", "layers", "heads", "ff_mult", "dropout"),
              "tabular-mlp": ("hidden", "layers", "dropout"),
              # + the step's `base_model` / `base_model_sha256`, resolved into `config` and a `base_model` record
              "pretrained-encoder": ("dropout", "layer_lr_decay")}
_SIGNATURE = "__init__(self, num_labels: int, input_spec: dict, **hyperparameters)"


def resolve_model_class(ref: str) -> type:
    """The class for a built-in name or a `package.module:Class` reference; ModelError if unusable."""
    target = BUILTIN_MODELS.get(ref, ref)
    if ":" not in target:
        hint = did_you_mean(ref, BUILTIN_MODELS)
        raise ModelError(f"unknown model {ref!r}: use a built-in ({', '.join(BUILTIN_MODELS)}) or "
                         f"`package.module:Class`" + (f"; {hint}" if hint else ""))
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise ModelError(f"model {ref!r}: cannot import module `{module_name}`: "
                         f"{type(exc).__name__}: {exc}. Is it installed (or, in a local run, a module next to "
                         "the pipeline file or in a folder above it)?") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ModelError(f"model {ref!r}: module `{module_name}` has no attribute `{attr}`")
    if not inspect.isclass(cls):
        raise ModelError(f"model {ref!r}: `{attr}` is not a class; a kubepipe model is an nn.Module "
                         f"subclass with {_SIGNATURE}")
    try:
        signature = inspect.signature(cls)  # as it is called: without `self`
    except (TypeError, ValueError) as exc:  # a class whose constructor Python cannot describe
        raise ModelError(f"model {ref!r}: cannot read the constructor of `{attr}` ({exc}); a kubepipe model is an "
                         f"nn.Module subclass with {_SIGNATURE}") from None
    if "num_labels" not in signature.parameters or "input_spec" not in signature.parameters:
        raise ModelError(f"model {ref!r}: constructor is {attr}{signature}; a kubepipe model needs {_SIGNATURE}")
    return cls


def model_encoding(cls: type, task_kind: str) -> str:
    """The preprocessing a model class wants: its `encoding` attribute, else the task's default."""
    enc = getattr(cls, "encoding", None) or ("tabular" if task_kind == "tabular" else "hashed-ngrams")
    if enc not in ENCODER_KEYS:
        raise ModelError(f"model {cls.__name__}: unknown encoding {enc!r}; known: {sorted(ENCODER_KEYS)}")
    if (enc == "tabular") != (task_kind == "tabular"):
        want = "feature_columns" if enc == "tabular" else "text_column"
        raise ModelError(f"model {cls.__name__} takes {enc!r} inputs: set `{want}` for it")
    return enc


def split_hyperparameters(encoding: str, hyperparameters: dict) -> tuple[dict, dict]:
    """(encoder kwargs, model kwargs) from the user's hyperparameters."""
    keys = ENCODER_KEYS[encoding]
    enc = {k: v for k, v in hyperparameters.items() if k in keys}
    return enc, {k: v for k, v in hyperparameters.items() if k not in keys}


# Preprocessing settings with a lower bound (per encoding): below it an encoder crashes mid-training
# (buckets 1: an id past the table) or trains a model that reads nothing (max_features 0, bytes max_length 1).
_WHOLE = {"hashed-ngrams": {"buckets": (2, "ids 1..buckets-1; 0 pads"), "word_ngrams": (0, "0: no word n-grams"),
                            "max_features": (1, "n-grams kept per text")},
          "bytes": {"max_length": (2, "room for [CLS] and one byte")},
          "wordpiece": {"max_length": (3, "room for [CLS], a token and [SEP]")}}
_MAX_LENGTH = {"wordpiece": 512}  # the packaged and usual BERT-family bases have 512 positions


def encoder_problems(encoding: str, values: dict) -> list[tuple[str, str]]:
    """(key, message) for every bad preprocessing hyperparameter of `encoding` in `values` (keys present only;
    `${...}` values are left for run time). Whole floats are whole numbers (KFP's Struct carries 2 as 2.0)."""
    from kubepipe.components.kfp_values import as_kind

    out = []
    for key, (low, meaning) in _WHOLE.get(encoding, {}).items():
        if key not in values or bound_at_run(values[key]):
            continue
        v, high = as_kind(values[key], "int"), _MAX_LENGTH.get(encoding) if key == "max_length" else None
        if not (isinstance(v, int) and not isinstance(v, bool) and low <= v <= (high or v)):
            span = f"in [{low}, {high}]" if high else f">= {low}"
            out.append((key, f"`{key}` must be an integer {span} ({meaning}), got {values[key]!r}"))
    grams = values.get("char_ngrams")
    if encoding == "hashed-ngrams" and "char_ngrams" in values and not bound_at_run(grams):
        pair = [as_kind(g, "int") for g in grams] if isinstance(grams, (list, tuple)) else []
        if not (len(pair) == 2 and all(isinstance(g, int) and not isinstance(g, bool) for g in pair)
                and 1 <= pair[0] <= pair[1]):
            out.append(("char_ngrams", f"`char_ngrams` must be [shortest, longest] with 1 <= shortest <= longest "
                                       f"(e.g. [3, 5]), got {grams!r}"))
    if encoding == "bytes" and "lowercase" in values and not isinstance(as_kind(values["lowercase"], "bool"), bool):
        out.append(("lowercase", f"`lowercase` must be true or false, got {values['lowercase']!r}"))
    return out


# Model sizes with a lower bound (per built-in): below it a model fails to build with a bare ZeroDivisionError, or
# builds silently wrong (layers -1: no layer at all; a tabular hidden 0: a constant model).
_MODEL_WHOLE = {"text-classifier": {"dim": (1, "embedding width"), "hidden": (0, "0: no hidden layer")},
                "transformer-classifier": {"d_model": (1, "model width"), "layers": (0, "transformer blocks"),
                                           "heads": (1, "attention heads"), "ff_mult": (1, "feed-forward width / d_model")},
                "tabular-mlp": {"hidden": (1, "layer width"), "layers": (0, "0: a linear model")}}


def model_problems(architecture: str, values: dict) -> list[tuple[str, str]]:
    """(key, message) for every bad model hyperparameter of a built-in `architecture` in `values` (keys present
    only; `${...}` values are left for run time): `kubepipe validate` and the trainer say them alike."""
    from kubepipe.components.kfp_values import as_kind

    out = []
    drop = values.get("dropout")
    if "dropout" in MODEL_KEYS.get(architecture, ()) and drop is not None and not bound_at_run(drop):
        drop = as_kind(drop, "float")
        if not (isinstance(drop, (int, float)) and not isinstance(drop, bool) and 0 <= drop < 1):
            # nn.Dropout takes 1 and zeroes every activation: the model trains on nothing, at chance level
            out.append(("dropout", f"`dropout` must be a number in [0, 1) (the share of activations dropped while "
                                   f"training; 1 drops them all), got {values['dropout']!r}"))
    sizes = {}
    for key, (low, meaning) in _MODEL_WHOLE.get(architecture, {}).items():
        if key not in values or bound_at_run(values[key]):
            continue
        sizes[key] = v = as_kind(values[key], "int")
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= low):
            out.append((key, f"`{key}` must be an integer >= {low} ({meaning}), got {values[key]!r}"))
            sizes.pop(key)
    if architecture == "transformer-classifier" and ("heads" in sizes or "d_model" in sizes) and not (
            bound_at_run(values.get("heads")) or bound_at_run(values.get("d_model"))):
        heads, width = sizes.get("heads", 4), sizes.get("d_model", 128)  # the constructor's defaults
        if isinstance(heads, int) and isinstance(width, int) and width % heads:
            out.append(("heads", f"`d_model` ({width}) must be a multiple of `heads` ({heads}): each head reads "
                                 "d_model / heads dimensions"))
    return out


def _declared_kinds(cls: type, params) -> dict[str, str]:
    """The constructor's parameters as the kind each declares (`int`, `float`, `bool`, else ''): an annotation,
    an Optional of one (`hidden: int | None`), or without one the default's type. Annotations are resolved
    (typing.get_type_hints), so `from __future__ import annotations` in the user's module gives the types, not
    their text; where they cannot be resolved (a name imported under TYPE_CHECKING), their text is read."""
    import typing

    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]  # the class's own, with its module's names
    except Exception:  # a user's annotation may fail to evaluate in any way
        hints = {}
    out = {}
    for name, param in params.items():
        declared = hints.get(name, param.annotation)
        if declared is inspect.Parameter.empty:
            declared = type(param.default)
        out[name] = _kind(declared)
    return out


def _kind(declared) -> str:
    import types
    import typing

    if isinstance(declared, str):  # unresolved text: `int | None`, `Optional[int]`
        words = {w for w in re.split(r"[\s|\[\],]+", declared) if w} - {"None", "Optional", "typing.Optional"}
        return words.pop() if len(words) == 1 else ""
    if typing.get_origin(declared) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(declared) if a is not type(None)]
        return _kind(members[0]) if len(members) == 1 else ""  # `int | float` is not one kind
    return getattr(declared, "__name__", "")


def _as_declared(kind: str, value):
    """An int hyperparameter given as 2.0 or "2.0" (how KFP's Struct carries numbers, and references inside
    a mapping, from a hand-written KFP pipeline) as the int the constructor declares; else as given."""
    from kubepipe.components.kfp_values import as_kind

    return as_kind(value, kind) if kind else value


def _too_large(exc: Exception, input_spec: dict) -> str:
    """What sized a model that needs more memory than there is: the preprocessing settings (`buckets`: a hashed
    model's embedding rows) are no model hyperparameter, so the message named none of them ('built with {}')."""
    if not (isinstance(exc, MemoryError) or "allocate" in str(exc)):
        return ""
    sizes = ", ".join(f"{k} {v}" for k, v in input_spec.items() if k in ("vocab_size", "max_length", "num_features"))
    return (f"; the model is too large for this machine's memory: its input is {sizes} (vocab_size is `buckets` "
            "of a hashed-ngrams model): lower it, or the model's width, in `hyperparameters`")


def build_model(cls: type, num_labels: int, input_spec: dict, model_kwargs: dict, name: str | None = None):
    """Instantiate a model; unknown hyperparameters and constructor errors become ModelError."""
    import torch

    name = name or cls.__name__
    params = inspect.signature(cls).parameters  # the constructor's, without `self`
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        known = [p for p in params if p not in ("self", "num_labels", "input_spec")]
        for key in model_kwargs:
            if key not in known:
                hint = did_you_mean(key, known)
                raise ModelError(f"model {name!r} has no hyperparameter {key!r}; it takes {known}"
                                 + (f"; {hint}" if hint else ""))
    kinds = _declared_kinds(cls, params)
    model_kwargs = {k: _as_declared(kinds.get(k, ""), v) for k, v in model_kwargs.items()}
    try:
        model = cls(num_labels=num_labels, input_spec=dict(input_spec), **model_kwargs)
    except Exception as exc:
        # records a hook resolved (a base model's config: dozens of keys, a cache path) would bury the cause
        brief = "{" + ", ".join(f"{k!r}: {'{...}' if isinstance(v, dict) else repr(v)}"
                                for k, v in model_kwargs.items()) + "}"
        raise ModelError(f"model {name!r} could not be built with {brief}: {type(exc).__name__}: {exc}"
                         + _too_large(exc, input_spec)) from None
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"model {name!r} is not a torch.nn.Module")
    return model
