"""`kubepipe schema` (what editors check as you type) against `validate`: the JSON Schema accepts each of
these pipelines that the loader accepts and refuses each shape the loader refuses. Oracle: the
`jsonschema` library, on the YAML as plain data."""

from __future__ import annotations

import pytest
import yaml

from kubepipe.errors import ValidationError
from kubepipe.spec import load_pipeline_text
from kubepipe.spec.schema import pipeline_schema

jsonschema = pytest.importorskip("jsonschema")

HEAD = "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: s}\n"
STEP = "  a:\n    component: ops:say\n    with: {message: hi}\n"

CASES = [  # (YAML after the head, what it shows)
    ("params:\n  epochs: {type: int, default: 3}\n  lr: {type: float, default: 1}\n  x: {default: t}\n"
     "  flag: {type: bool, default: false}\n  xs: {type: list, default: [1]}\n  d: {type: dict}\nsteps:\n" + STEP,
     "params of every type"),
    ("params:\n  é: {default: x}\nsteps:\n" + STEP, "param name not ASCII"),
    ("params:\n  _x: {default: x}\nsteps:\n" + STEP, "param name starting with _"),
    ("params:\n  ctx_target: {default: x}\nsteps:\n" + STEP, "param name ctx_"),
    ("params:\n  class: {default: x}\nsteps:\n" + STEP, "param name a keyword"),
    ("params:\n  n: {type: int, default: '3'}\nsteps:\n" + STEP, "int default as text"),
    ("params:\n  n: {type: int, default: true}\nsteps:\n" + STEP, "int default a bool"),
    ("params:\n  n: {default: 3}\nsteps:\n" + STEP, "str (by default) default a number"),
    ("params:\n  n: {type: list, default: {a: 1}}\nsteps:\n" + STEP, "list default a mapping"),
    ("steps:\n  Big:\n    component: ops:say\n", "step name upper case"),
    ("steps:\n  1x:\n    component: ops:say\n", "step name starting with a digit"),
    ("steps:\n  a-b_c:\n    component: ops:say\n", "step name with - and _"),
    ("steps:\n  exit_handler-1:\n    component: ops:say\n", "step name of a KFP group"),
    ("steps:\n  for-loop-x:\n    component: ops:say\n", "step name like a KFP group's"),
    ("defaults: {retries: 21}\nsteps:\n" + STEP, "retries above 20"),
    ("defaults: {retries: -1}\nsteps:\n" + STEP, "retries below 0"),
    ("defaults: {retries: 20, timeout: 2h}\nsteps:\n" + STEP, "retries and timeout in range"),
    ("defaults: {timeout: soon}\nsteps:\n" + STEP, "timeout not a duration"),
    ("defaults: {timeout: 0}\nsteps:\n" + STEP, "timeout 0"),
    ("defaults: {timeout: 90}\nsteps:\n" + STEP, "timeout in seconds"),
    ("defaults: {retries: {count: 2, backoff: later}}\nsteps:\n" + STEP, "backoff not a duration"),
    ("defaults: {retries: {count: 2, backoff: 10s, max_backoff: 5m}}\nsteps:\n" + STEP, "backoff durations"),
    ("defaults: {env: {'A B': x}}\nsteps:\n" + STEP, "env name with a space"),
    ("defaults: {env: {'1A': x}}\nsteps:\n" + STEP, "env name starting with a digit"),
    ("defaults: {env: {A_1: x, S: {secret: s, key: k}}}\nsteps:\n" + STEP, "env names"),
    ("defaults: {resources: {cpu: 0}}\nsteps:\n" + STEP, "cpu 0"),
    ("defaults: {resources: {cpu: -1}}\nsteps:\n" + STEP, "cpu negative"),
    ("defaults: {resources: {cpu: '0m'}}\nsteps:\n" + STEP, "cpu 0m"),
    ("defaults: {resources: {cpu: 'lots'}}\nsteps:\n" + STEP, "cpu text"),
    ("defaults: {resources: {cpu: '500m', memory: 0.5Gi}}\nsteps:\n" + STEP, "cpu and memory"),
    ("defaults: {resources: {cpu: 0.25, memory: 10Mi}}\nsteps:\n" + STEP, "cpu a number"),
    ("defaults: {resources: {memory: '10'}}\nsteps:\n" + STEP, "memory without its unit (bytes)"),
    ("defaults: {resources: {memory: 0Gi}}\nsteps:\n" + STEP, "memory 0"),
    ("defaults: {resources: {memory: 2GB}}\nsteps:\n" + STEP, "memory unit"),
    # a bool is no number: `timeout: yes` was a 1-second timeout, `cpu: true` 1 CPU. (A number written as text,
    # `retries: '3'`, loads, as `${env.NAME}` gives text; the schema, which sees the YAML unresolved, refuses it.)
    ("defaults: {timeout: yes}\nsteps:\n" + STEP, "timeout a bool"),
    ("defaults: {retries: true}\nsteps:\n" + STEP, "retries a bool"),
    ("defaults: {resources: {cpu: true}}\nsteps:\n" + STEP, "cpu a bool"),
    ("defaults: {retries: {count: 2, factor: 2}, resources: {cpu: 2}}\nsteps:\n" + STEP, "an int for a float"),
]


@pytest.mark.parametrize("body", [c[0] for c in CASES], ids=[c[1] for c in CASES])
def test_the_json_schema_accepts_what_the_loader_accepts_and_refuses_what_it_refuses(body):
    text = HEAD + body
    try:
        load_pipeline_text(text, "p.yaml")
        loader_ok = True
    except ValidationError:
        loader_ok = False
    errors = list(jsonschema.Draft202012Validator(pipeline_schema()).iter_errors(yaml.safe_load(text)))
    assert (not errors) == loader_ok, f"loader {'accepts' if loader_ok else 'refuses'}; schema: {errors[:1]}"
