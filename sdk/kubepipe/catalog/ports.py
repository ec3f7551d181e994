"""Typed inputs and outputs of a component, read from its KFP component spec."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Port", "ports_of", "compatible", "literal_fits", "PARAM_TYPES", "CONTEXT_INPUTS"]

PARAM_TYPES = {"String": "str", "Integer": "int", "Float": "float", "Boolean": "bool",
               "List": "list", "Dict": "dict", "PipelineTaskFinalStatus": "task_status",
               "STRING": "str", "NUMBER_INTEGER": "int", "NUMBER_DOUBLE": "float", "BOOLEAN": "bool",
               "LIST": "list", "STRUCT": "dict"}
# The inputs kubepipe itself fills from the target profile and the run (plan.settings.context_value); any
# other input is the user's to set, a user component's `ctx_mode` included.
CONTEXT_INPUTS = frozenset({"ctx_target", "ctx_registry_uri", "ctx_pipeline_name", "ctx_run_id", "ctx_run_name",
                            "ctx_step", "ctx_state_dir", "ctx_profile", "ctx_labels"})
_PY: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list,
                                           "dict": dict}


@dataclass(frozen=True)
class Port:
    name: str
    kind: str  # "parameter" | "artifact"
    type: str  # str/int/float/bool/list/dict/task_status, or an artifact schema like system.Dataset
    required: bool = True
    default: Any = None
    is_list: bool = False
    description: str = field(default="", compare=False)  # from the component's docstring (Args / Returns)

    def describe(self) -> str:
        t = f"{self.type}[]" if self.is_list else self.type
        return t if self.required else f"{t} = {self.default!r}"


# a python component's `List[int]`, `typing.Dict[str, float]`, `list[str]` is KFP's LIST / STRUCT parameter
_GENERIC = re.compile(r"^(?:typing\.)?(List|Dict|list|dict)(?:\[.*\])?$")


def _port(name: str, spec: Any, is_input: bool) -> Port:
    raw = str(spec.type)
    generic = _GENERIC.match(raw)
    if raw in PARAM_TYPES:
        kind, typ = "parameter", PARAM_TYPES[raw]
    elif generic:
        kind, typ = "parameter", generic.group(1).lower()
    else:
        kind, typ = "artifact", raw.split("@", 1)[0]
    default = getattr(spec, "default", None)
    required = bool(is_input and not getattr(spec, "optional", False) and default is None)
    if typ == "int" and isinstance(default, float) and default.is_integer():
        default = int(default)  # a compiled file holds an int default as a number: `defaultValue: 2.0`
    return Port(name, kind, typ, required, default,
                bool(getattr(spec, "is_artifact_list", False)), " ".join(str(getattr(spec, "description", "") or "").split()))


def ports_of(component: Any) -> tuple[dict[str, Port], dict[str, Port]]:
    spec = component.component_spec
    inputs = {n: _port(n, s, True) for n, s in (spec.inputs or {}).items()}
    outputs = {n: _port(n, s, False) for n, s in (spec.outputs or {}).items()}
    return inputs, outputs


def compatible(produced: Port, consumer: Port) -> bool:
    if produced.kind != consumer.kind:
        return False
    if consumer.kind == "artifact":
        return consumer.type in ("system.Artifact", produced.type) or produced.type == "system.Artifact"
    # an int reference for a float input is not: KFP's compiler refuses it (InconsistentTypeException); only a
    # literal int is written as a float (the compiler does that)
    return consumer.type == produced.type


def literal_fits(value: Any, port: Port) -> bool:
    if port.kind != "parameter" or port.type == "task_status":
        return False
    want = _PY.get(port.type)
    if want is None:
        return True
    if isinstance(value, bool) and port.type != "bool":
        return False
    return isinstance(value, want)
