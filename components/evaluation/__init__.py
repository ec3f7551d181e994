"""Evaluation: holdout metrics, the champion/challenger gate, HTML report, the evaluate / register-model components.

Modules: `metrics` (numpy), `gate` (semantics in docs/decisions/0005), `evaluate` (scoring on a
holdout), `report` (HTML + inline SVG), `artifacts` (KFP outputs), `registration` (registry
entry), `checks` (compile time), `ops` (the @dsl.components). Nothing is imported here: the
compile-time checks must stay light.
"""

__all__: list[str] = []
