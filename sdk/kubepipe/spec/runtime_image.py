"""How to give a remote profile its runtime image: one text, said where the image is missing (docs/decisions/0008).

`compile` and `validate` warn (the IR's built-in steps name the sentinel, which no cluster can pull); `submit`
and `schedule` refuse it before uploading anything. Both say the same three ways to set it.
"""

from __future__ import annotations

__all__ = ["runtime_image_fix"]


def runtime_image_fix(target: str) -> str:
    """The ways to set `runtime_image` for `target`: build and pin it into the profile file, the environment
    variable `kubepipe init`'s profiles read, or --set / sets= for one command."""
    from kubepipe.arguments import set_hint

    profile = f"configs/{target}.yaml" if target in ("kubeflow", "vertex") else "configs/<target>.yaml"
    pinned = "REG/kubepipe-runtime@sha256:..."
    return (f"build and push it (`kubepipe image build --registry REG`), then pin it "
            f"(`kubepipe image --registry REG --metadata .kubepipe/image-cpu.json --write-profile {profile}`), "
            f"export KUBEPIPE_IMAGE={pinned} (read by `kubepipe init`'s {profile}: "
            "runtime_image: ${env.KUBEPIPE_IMAGE:-...}), "
            f"or pass {set_hint('runtime_image', pinned, repr(pinned))}")
