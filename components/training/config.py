"""Training settings, validated with messages that name the `with:` key. Pure Python (checks use it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = ["TrainConfig", "SCHEDULES", "PRECISIONS", "MONITORS", "TRAINER_KEYS", "MAX_SEED", "config_problems",
           "trainer_knobs"]

SCHEDULES = ("constant", "cosine", "linear")
PRECISIONS = ("auto", "fp32", "bf16")
MONITORS = ("val_f1_macro", "val_accuracy", "val_loss")
MAX_SEED = 2**63 - 1  # torch.manual_seed and numpy take it (plus epochs); -1 and 2**70 crashed them
# Trainer knobs a user may also pass inside `hyperparameters` (the model gets the remaining keys).
TRAINER_KEYS = ("warmup_fraction", "max_grad_norm", "label_smoothing", "early_stopping_metric",
                "checkpoint_every_steps", "checkpoint_every_s", "precision")


@dataclass
class TrainConfig:
    model: str = "text-classifier"
    label_column: str = "label"
    text_column: str | None = None
    feature_columns: list[str] | None = None
    epochs: int = 5
    batch_size: int = 64  # global: split across processes under DDP
    learning_rate: float | None = None  # None = the model's `default_learning_rate`
    lr_schedule: str = "cosine"
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    early_stopping_patience: int = 0  # 0 = train all epochs
    early_stopping_metric: str = "val_f1_macro"
    validation_fraction: float = 0.1  # used when no validation dataset is given
    hyperparameters: dict = field(default_factory=dict)
    max_grad_norm: float = 0.0  # 0 = no clipping
    label_smoothing: float = 0.0
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    checkpoint_every_steps: int = 0  # besides every epoch end; single process only
    checkpoint_every_s: float = 600.0
    distill_temperature: float = 2.0  # used only with a teacher
    distill_alpha: float = 0.5  # weight of the teacher's soft labels (1 - alpha: the hard labels)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint_fields(self) -> dict:
        """Settings that change the trajectory: a checkpoint from other settings is not resumed."""
        skip = {"checkpoint_every_steps", "checkpoint_every_s", "compile"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def trainer_knobs(hyperparameters: dict) -> tuple[dict, dict]:
    """(the trainer knobs inside `hyperparameters`, each read as its TrainConfig field's kind; the rest, the
    model's). KFP's Struct carries 2 as 2.0: the trainer and `kubepipe validate` read the knobs alike."""
    from kubepipe.components.kfp_values import as_kind

    kinds = {f.name: str(f.type) for f in fields(TrainConfig)}  # "int", "float", ... (__future__ annotations)
    rest = dict(hyperparameters or {})
    return {k: as_kind(rest.pop(k), kinds[k]) for k in list(rest) if k in TRAINER_KEYS}, rest


def _num(value, kind):
    return isinstance(value, kind) and not isinstance(value, bool)


def config_problems(values: dict) -> list[tuple[str, str]]:
    """(key, message) for every bad value in a dict of TrainConfig fields (only keys present are checked)."""
    out: list[tuple[str, str]] = []

    def bad(key, msg):
        out.append((key, msg))

    ints = {"epochs": 1, "batch_size": 1, "early_stopping_patience": 0, "checkpoint_every_steps": 0}
    for key, low in ints.items():
        if key in values and not (_num(values[key], int) and values[key] >= low):
            bad(key, f"`{key}` must be an integer >= {low}, got {values[key]!r}")
    if "seed" in values and not (_num(values["seed"], int) and 0 <= values["seed"] <= MAX_SEED):
        bad("seed", f"`seed` must be an integer from 0 to {MAX_SEED}, got {values['seed']!r}")
    if values.get("learning_rate") is not None and not (_num(values["learning_rate"], (int, float)) and 0 < values["learning_rate"] < 10):
        bad("learning_rate", f"`learning_rate` must be a number in (0, 10), got {values['learning_rate']!r}")
    for key, lo, hi in (("weight_decay", 0, 10), ("warmup_fraction", 0, 1), ("validation_fraction", 0, 0.9),
                        ("label_smoothing", 0, 1), ("max_grad_norm", 0, 1e9), ("checkpoint_every_s", 0, 1e9),
                        ("distill_alpha", 0, 1)):
        if key in values and not (_num(values[key], (int, float)) and lo <= values[key] <= hi):
            bad(key, f"`{key}` must be a number in [{lo}, {hi}], got {values[key]!r}")
    if _num(values.get("label_smoothing"), (int, float)) and values["label_smoothing"] == 1:
        bad("label_smoothing", "`label_smoothing` 1 makes every target uniform: the model would learn no label "
                               "(0.1 is usual); it must be in [0, 1)")
    if "distill_temperature" in values and not (_num(values["distill_temperature"], (int, float))
                                                and 0 < values["distill_temperature"] <= 100):
        bad("distill_temperature", f"`distill_temperature` must be a number in (0, 100], got "
                                   f"{values['distill_temperature']!r}")
    for key, choices in (("lr_schedule", SCHEDULES), ("precision", PRECISIONS), ("early_stopping_metric", MONITORS)):
        if key in values and values[key] not in choices:
            bad(key, f"`{key}` must be one of {list(choices)}, got {values[key]!r}")
    if "feature_columns" in values and values["feature_columns"] is not None:
        fc = values["feature_columns"]
        if not (isinstance(fc, list) and fc and all(isinstance(c, str) for c in fc)):
            bad("feature_columns", f"`feature_columns` must be a non-empty list of column names, got {fc!r}")
    label = values.get("label_column", "label")
    if isinstance(label, str) and values.get("text_column") == label:
        bad("text_column", f"`text_column` and `label_column` are both {label!r}: the model would read its answer "
                           "(a perfect validation score, nothing learned); set `text_column` to the input text")
    if isinstance(label, str) and isinstance(values.get("feature_columns"), list) and label in values["feature_columns"]:
        bad("feature_columns", f"`feature_columns` holds the label column {label!r}: the model would read its answer; "
                               "remove it from `feature_columns`")
    if values.get("text_column") and values.get("feature_columns"):
        bad("feature_columns", "set either `text_column` (text model) or `feature_columns` (tabular model), not both")
    if "hyperparameters" in values and not isinstance(values["hyperparameters"], dict):
        bad("hyperparameters", f"`hyperparameters` must be a mapping, got {type(values['hyperparameters']).__name__}")
    return out
