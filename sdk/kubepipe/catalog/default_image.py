"""The image kfp gives a `@dsl.component` that sets no `base_image`, read from kfp itself (its public decorator
on a probe function), so it follows the pinned kfp. On kubeflow and vertex such a step runs in it: plain Python
with kfp, without kubepipe or the libraries the component imports."""

import functools  # no `from __future__ import annotations`: kfp reads _probe's `-> None` as the object

__all__ = ["kfp_default_image"]


def _probe() -> None:
    """Decorated without base_image by kfp_default_image."""


@functools.cache
def kfp_default_image() -> str:
    from kfp import dsl

    import kubepipe.catalog.resolve  # noqa: F401 - filters kfp's notice that this default moves (see there)

    return str(dsl.component(_probe).component_spec.implementation.container.image)
