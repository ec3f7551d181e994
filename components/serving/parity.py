"""Parity of an ONNX export with the torch model it came from: the gate before ONNX Runtime or Triton serve it.

Both run the same encoded probe batches (passes of up to 64 rows, so padding varies), and
the class probabilities are compared. Tolerances (docs/decisions/0013-serving-runtimes.md):

    fp32  max |p_onnx - p_torch| <= 1e-4 over every probe row and class
    int8  max |dp| <= 0.1, mean |dp| <= 0.01, and the top class agrees on >= 99% of the probes
          (probes where torch's top two classes are within 0.01 of each other are ties: not counted)

Probes: 256 rows. Text: synthetic card-transaction descriptors plus edge cases (empty, one
character, non-ASCII, longer than the model reads); tabular: rows drawn around the training
mean and std recorded in the artifact, plus the mean itself and +-5 std outliers.

`calibration_inputs` draws rows the same way from other seeds and without the edge cases: what an
export may be tuned on (int8 node selection), so that the probes stay a held-out check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kubepipe.components.errors import ModelError

__all__ = ["TOLERANCES", "ParityReport", "ParityFailed", "probe_inputs", "calibration_inputs", "encoded_passes", "reference_logits",
           "check_parity", "softmax"]

TOLERANCES = {
    "fp32": {"max_abs_dp": 1e-4, "mean_abs_dp": 1e-4, "min_agreement": 0.0},
    "int8": {"max_abs_dp": 0.1, "mean_abs_dp": 0.01, "min_agreement": 0.99},
}
PROBES = 256
TIE = 0.01  # a top-class flip between two classes this close in torch's probabilities is not a disagreement
_PASS_ROWS = 64
_EDGE_TEXTS = ["", "a", "Café Noir 12 €", "ÅHLÉNS CITY STOCKHOLM", "1234 5678", "*** ###",
               "AMZN MKTP US*2K3L4 AMZN.COM/BILL WA", "uber   trip   help.uber.com",
               " ".join(["SQ *BLUE BOTTLE COFFEE OAKLAND CA 94607"] * 12)]  # longer than most models read


class ParityFailed(ModelError):
    """The export's outputs differ from torch's beyond the tolerance: never serve it."""

    def __init__(self, report: "ParityReport", detail: str = ""):
        super().__init__(f"ONNX {report.precision} parity check failed: {report.summary()}{detail}; "
                         "not serving this export (use --runtime torch, or report the model)")
        self.report = report


@dataclass(frozen=True)
class ParityReport:
    precision: str
    rows: int
    max_abs_dp: float
    mean_abs_dp: float
    agreement: float  # fraction of decided probe rows (torch's top-2 margin >= TIE) whose top class is the same
    max_abs_dlogit: float

    @property
    def passed(self) -> bool:
        tol = TOLERANCES[self.precision]
        return (self.max_abs_dp <= tol["max_abs_dp"] and self.mean_abs_dp <= tol["mean_abs_dp"]
                and self.agreement >= tol["min_agreement"])

    def summary(self) -> str:
        tol = TOLERANCES[self.precision]
        return (f"max|dp| {self.max_abs_dp:.2e} (<= {tol['max_abs_dp']:g}), mean|dp| {self.mean_abs_dp:.2e} "
                f"(<= {tol['mean_abs_dp']:g}), top-class agreement {self.agreement:.2%} "
                f"(>= {tol['min_agreement']:.0%}) on {self.rows} probes")

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "tolerance": dict(TOLERANCES[self.precision])}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def probe_inputs(loaded, n: int = PROBES) -> list:
    """`n` deterministic probe rows the model accepts (text strings or feature rows)."""
    return _rows(loaded, n, row_seed=20240611, text_seed=11, edges=True)


def calibration_inputs(loaded, n: int = PROBES) -> list:
    """`n` rows drawn like the probes from other seeds, without the edge cases: not the probes."""
    return _rows(loaded, n, row_seed=20240612, text_seed=12345, edges=False)


def _rows(loaded, n: int, *, row_seed: int, text_seed: int, edges: bool) -> list:
    rng = np.random.default_rng(row_seed)
    if loaded.task == "tabular-classification":
        pre = loaded.spec.get("preprocessing") or {}
        cols = pre.get("feature_columns") or loaded.input_spec.get("feature_columns") or []
        mean = np.asarray(pre.get("mean") or [0.0] * len(cols), dtype=np.float64)
        std = np.asarray(pre.get("std") or [1.0] * len(cols), dtype=np.float64)
        head = [mean, mean + 5 * std, mean - 5 * std] if edges else []
        rows = head + [mean + std * rng.standard_normal(len(cols)) for _ in range(max(0, n - len(head)))]
        return [list(map(float, r)) for r in rows[:n]]
    from kubepipe.components.serving.demo_model import merchant_strings

    edge_texts = _EDGE_TEXTS if edges else []
    texts, _ = merchant_strings(max(0, n - len(edge_texts)), seed=text_seed)
    return (edge_texts + texts)[:n]


def encoded_passes(loaded, inputs: list):
    """`inputs` encoded in passes of up to 64 rows, as check_parity runs them."""
    for start in range(0, len(inputs), _PASS_ROWS):
        chunk = inputs[start:start + _PASS_ROWS]
        yield loaded.encode(np.asarray(chunk, dtype=np.float64) if loaded.task == "tabular-classification" else chunk)


def reference_logits(loaded, inputs: list) -> np.ndarray:
    """torch's logits on `inputs`, in the same passes as `check_parity` (to compare many exports with one)."""
    return np.concatenate([loaded.forward(batch).numpy() for batch in encoded_passes(loaded, inputs)])


def check_parity(loaded, session, precision: str, inputs: list | None = None,
                 reference: np.ndarray | None = None) -> ParityReport:
    """Compare `session` (an onnxruntime InferenceSession of `loaded`'s export) with torch on the probes.

    `inputs`: other rows than the probes; `reference`: torch's logits on them (`reference_logits`), if known.
    """
    if precision not in TOLERANCES:
        raise ModelError(f"unknown ONNX precision {precision!r}; use one of {sorted(TOLERANCES)}")
    inputs = probe_inputs(loaded) if inputs is None else inputs
    names = [i.name for i in session.get_inputs()]
    got, want = [], []
    for batch in encoded_passes(loaded, inputs):
        missing = [k for k in names if k not in batch]
        if missing:
            raise ModelError(f"ONNX export takes inputs {names}, the model's encoder gives {sorted(batch)}")
        got.append(session.run(["logits"], {k: batch[k].numpy() for k in names})[0])
        if reference is None:
            want.append(loaded.forward(batch).numpy())
    got_l = np.concatenate(got).astype(np.float64)
    want_l = (np.concatenate(want) if reference is None else np.asarray(reference)).astype(np.float64)
    if got_l.shape != want_l.shape:
        raise ModelError(f"ONNX parity: output shape {got_l.shape} differs from torch's {want_l.shape}")
    if not np.isfinite(got_l).all():
        return ParityReport(precision, len(inputs), float("inf"), float("inf"), 0.0, float("inf"))
    p_got, p_want = softmax(got_l), softmax(want_l)
    dp = np.abs(p_got - p_want)
    top2 = np.sort(p_want, axis=1)[:, -2:] if p_want.shape[1] > 1 else np.hstack([np.zeros_like(p_want), p_want])
    decided = (top2[:, 1] - top2[:, 0]) >= TIE
    same = p_got.argmax(axis=1) == p_want.argmax(axis=1)
    agree = float(same[decided].mean()) if decided.any() else 1.0
    return ParityReport(precision, len(inputs), float(dp.max()), float(dp.mean()), agree,
                        float(np.abs(got_l - want_l).max()))
