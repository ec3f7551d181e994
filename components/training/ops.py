"""The `train-torch` KFP component (a thin shim over kubepipe.components.training.step)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["train_torch"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def train_torch(
    dataset: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    curve: Output[HTML],
    validation: Input[Dataset] = None,
    architecture: str = "text-classifier",
    text_column: str = "",
    label_column: str = "label",
    feature_columns: list = [],
    epochs: int = 5,
    batch_size: int = 64,
    learning_rate: float = 0.0,
    lr_schedule: str = "cosine",
    weight_decay: float = 0.0,
    seed: int = 0,
    early_stopping_patience: int = 0,
    early_stopping_metric: str = "val_f1_macro",
    validation_fraction: float = 0.1,
    hyperparameters: dict = {},
    num_gpus: int = -1,
    compile: bool = False,
    ctx_state_dir: str = "",
    ctx_run_id: str = "",
    ctx_step: str = "",
):
    """Train a PyTorch classifier (built-in `text-classifier`, `transformer-classifier`, `tabular-mlp`, or
    `package.module:Class`); resumes from its checkpoint when retried; DDP over `num_gpus` GPUs."""
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.training.step import train_torch_step

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        train_torch_step(
            dataset=dataset, model=model, metrics=metrics, curve=curve, validation=validation,
            architecture=architecture, text_column=text_column, label_column=label_column,
            feature_columns=feature_columns, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            lr_schedule=lr_schedule, weight_decay=weight_decay, seed=seed,
            early_stopping_patience=early_stopping_patience, early_stopping_metric=early_stopping_metric,
            validation_fraction=validation_fraction, hyperparameters=hyperparameters, num_gpus=num_gpus,
            compile=compile, ctx_state_dir=ctx_state_dir, ctx_run_id=ctx_run_id, ctx_step=ctx_step or "train",
        )
