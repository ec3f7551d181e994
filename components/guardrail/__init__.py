"""The `validate-outputs` guardrail: a model's or retriever's outputs on a probe set, judged by rules.

Modules import pandas / torch inside functions so that importing this package stays cheap.
"""
