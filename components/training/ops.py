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
    teacher: Input[Model] = None,
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
    distill_temperature: float = 2.0,
    distill_alpha: float = 0.5,
    base_model: str = "",
    base_model_sha256: str = "",
    ctx_state_dir: str = "",
    ctx_run_id: str = "",
    ctx_step: str = "",
):
    """Train a PyTorch classifier (built-in `text-classifier`, `transformer-classifier`, `tabular-mlp`,
    `pretrained-encoder`, or `package.module:Class`); resumes from its checkpoint when retried; DDP over
    `num_gpus` GPUs; with a `teacher` model, distils its soft labels.

    Args:
        dataset: Training data (Parquet Dataset).
        validation: Optional validation data; without it `validation_fraction` of `dataset` is held out.
        teacher: Optional Model whose soft labels the student learns too (distillation).
        architecture: The model: a built-in name or your `package.module:Class` (an nn.Module).
        text_column: The text column (text models).
        label_column: The column with the class labels.
        feature_columns: Numeric feature columns (tabular-mlp); empty: every numeric column but the label.
        epochs: Passes over the training data.
        batch_size: Global batch size (split across GPUs under DDP).
        learning_rate: Peak learning rate; 0: the architecture's default.
        lr_schedule: Learning-rate schedule after warm-up.
        weight_decay: AdamW weight decay.
        seed: Seed of initialisation, shuffling and the validation split.
        early_stopping_patience: Stop after this many epochs without improvement; 0: train every epoch.
        early_stopping_metric: The validation metric early stopping and the best checkpoint follow.
        validation_fraction: Share of `dataset` held out when no `validation` is given.
        hyperparameters: Architecture settings (model size, n-grams, ...) and rare trainer knobs
            (warmup_fraction, max_grad_norm, label_smoothing, precision, checkpoint_every_steps,
            checkpoint_every_s).
        num_gpus: GPUs to use: -1 every visible GPU, 0 CPU, n at most n.
        compile: Use torch.compile (CUDA only: on CPU it is ignored, with a warning in the step's log).
        distill_temperature: Softmax temperature of the teacher's and the student's logits (with a teacher).
        distill_alpha: Weight of the teacher's soft labels; 1 - alpha weighs the hard labels (with a teacher).
        base_model: pretrained-encoder's base: `package:all-minilm-l6-v2` (default) or a directory with
            config.json, tokenizer.json and model.safetensors (relative: next to the pipeline file).
        base_model_sha256: Expected sha256 of the base model.safetensors (a directory; the package's is pinned).

    Returns:
        model: Model folder: model.safetensors and kubepipe-model.json (labels, preprocessing, input spec).
        metrics: train_loss, val_loss, val_accuracy, val_f1_macro (with validation rows) of kept_epoch, the
            epoch whose weights the model holds (best_epoch with early stopping, else the last), samples_per_s,
            tokens_per_s (text models; a tabular model's rows have no tokens), epochs_run, best_epoch,
            train_seconds.
        curve: HTML training curve (loss and validation metrics per epoch).
    """
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.training.step import train_torch_step

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        train_torch_step(
            dataset=dataset, model=model, metrics=metrics, curve=curve, validation=validation,
            architecture=architecture, text_column=text_column, label_column=label_column,
            feature_columns=typed(feature_columns), epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            lr_schedule=lr_schedule, weight_decay=weight_decay, seed=seed,
            early_stopping_patience=early_stopping_patience, early_stopping_metric=early_stopping_metric,
            validation_fraction=validation_fraction, hyperparameters=typed(hyperparameters), num_gpus=num_gpus,
            compile=compile, teacher=teacher, distill_temperature=distill_temperature, distill_alpha=distill_alpha,
            base_model=base_model, base_model_sha256=base_model_sha256,
            ctx_state_dir=ctx_state_dir, ctx_run_id=ctx_run_id, ctx_step=ctx_step or "train",
        )
