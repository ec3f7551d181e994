"""Real KFP IR for the remote tests, compiled by kfp itself."""

import tempfile

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def load(window_end: str) -> str:
    return window_end


@dsl.pipeline(name="nightly")
def nightly(scheduled_time: str = "", rows: int = 10):
    load(window_end=scheduled_time)


def scheduled_pipeline_ir() -> str:
    """A pipeline that declares `scheduled_time` and passes it to a step."""
    with tempfile.NamedTemporaryFile("r", suffix=".yaml") as fh:
        compiler.Compiler().compile(nightly, fh.name)
        return fh.read()
