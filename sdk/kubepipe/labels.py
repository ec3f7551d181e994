"""Google Cloud resource labels and ids (Vertex pipeline jobs, schedules, models, endpoints).

GCP's rules (cloud.google.com/resource-manager/docs/labels-overview; Vertex's PipelineJob
reference repeats them): keys and values hold lowercase letters, digits, `_` and `-`, at most
63 characters; a key starts with a letter and is never empty; a value may be empty.
GCP also accepts lowercase international characters, but not every API that copies labels
(billing export, older endpoints, byte limits of 128) treats them alike, so kubepipe writes
ASCII only: accents are dropped (`é` -> `e`), anything else becomes `-`.
Resource ids (pipeline job ids) are `[a-z][-a-z0-9]*`.
Kubernetes labels follow Kubernetes' own rules: a key is an optional DNS-subdomain prefix and `/` and a name of at
most 63 of `[A-Za-z0-9._-]` starting and ending with a letter or digit; a value the same (or empty). kubepipe's own
labels on a KServe InferenceService (`kubepipe.dev/model`, which it reads back) are written by them (`k8s_label`).

A run's labels (metadata.labels, owner, the profile's) are one set of labels on every platform, so the same owner or
team is found by the same selector everywhere (`runs list --label`, cost allocation): each is written as Vertex
writes it (`gcp_label`, the stricter rule: `ana@example.com` is `owner: ana-example-com` on a Vertex job and on an
InferenceService alike), and on Kubernetes also without the `-` / `_` at its ends that Kubernetes refuses there
(`k8s_labels`).

| platform | keys | values |
|---|---|---|
| Vertex (GCP) | `[a-z][a-z0-9_-]{0,62}` | `[a-z0-9_-]{0,63}` |
| Kubernetes, a run's label | the Vertex key, less `-`/`_` at its end | the Vertex value, less `-`/`_` at its ends |
| Kubernetes, kubepipe's own | `[prefix/]name`, name `[A-Za-z0-9._-]`, alphanumeric ends | as the name (or empty) |
Sits below every layer so the backends and the components (registry, deploy, retrain) share it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Mapping

from kubepipe.errors import UserError
from kubepipe.secrets import LABELS_SAY, label_holds, label_secrets

__all__ = ["gcp_label", "gcp_labels", "carries", "run_labels", "gcp_id", "labels_header", "ir_labels", "MAX_LABEL", "MAX_LABELS",
           "OWN_LABELS", "MANAGED_BY", "k8s_label", "k8s_labels"]

MAX_LABEL = 63
MAX_LABELS = 64  # labels of one resource (a Vertex pipeline job)
# the most a job carries besides the pipeline's and the profile's: kubepipe's kubepipe-pipeline, -hash,
# -experiment, and a schedule's -template and -catchup; and Vertex's vertex-ai-pipelines-run-billing-id
OWN_LABELS = 6
MANAGED_BY = "managed-by"  # kubepipe's label on the Vertex models and endpoints it deploys: `managed-by: kubepipe`
_BAD = re.compile(r"[^a-z0-9_-]")


def gcp_label(value: Any, *, key: bool = False) -> str:
    """`value` as a valid label value (or key, with `key=True`)."""
    ascii_text = "".join(_ascii(c) for c in str(value))
    text = _BAD.sub("-", ascii_text.lower())
    if key and not text[:1].isalpha():
        text = "k-" + text
    return text[:MAX_LABEL]


_K8S_BAD = re.compile(r"[^A-Za-z0-9._-]")
_K8S_PREFIX_BAD = re.compile(r"[^a-z0-9.-]")


def k8s_label(value: Any, *, key: bool = False) -> str:
    """`value` as a valid Kubernetes label value (or key, with `key=True`): other characters are `-`, accents dropped,
    at most 63 (a key's prefix, lowercase, at most 253), starting and ending with a letter or digit."""
    text = "".join(_ascii(c) for c in str(value))
    if not key:
        return _K8S_BAD.sub("-", text)[:MAX_LABEL].strip("-_.")
    prefix, _, name = text.rpartition("/")
    name = _K8S_BAD.sub("-", name)[:MAX_LABEL].strip("-_.") or "k"
    prefix = _K8S_PREFIX_BAD.sub("-", prefix.lower())[:253].strip("-.")
    return f"{prefix}/{name}" if prefix else name


def k8s_labels(labels: Mapping[Any, Any] | None) -> dict[str, str]:
    """A run's labels as a Kubernetes object (a KServe InferenceService) carries them: each as a Vertex job does
    (`gcp_labels`: `owner: ana@example.com` is `ana-example-com` on both, where Kubernetes' own rule gave
    `ana-example.com`), less the `-` / `_` at its ends that Kubernetes refuses (keys that collide: the last wins)."""
    return {k8s_label(k, key=True): k8s_label(v) for k, v in gcp_labels(labels).items()}


def gcp_labels(labels: Mapping[Any, Any] | None) -> dict[str, str]:
    """Every key and value sanitised (keys that collide after sanitising: the last one wins)."""
    return {gcp_label(k, key=True): gcp_label(v) for k, v in dict(labels or {}).items()}


def run_labels(profile: Mapping[str, str] | None, pipeline: Mapping[str, str] | None) -> dict[str, str]:
    """A run's labels as written: the profile's under the pipeline's (metadata.labels, owner), which win over a
    profile's label that is the same label on Vertex (`Team: ML` under `team: payments` is not carried there, so
    a local run's record does not carry it either)."""
    mine = dict(pipeline or {})
    taken = {gcp_label(k, key=True) for k in mine}
    return {**{k: v for k, v in dict(profile or {}).items() if gcp_label(k, key=True) not in taken}, **mine}


def carries(labels: Mapping[Any, Any] | None, wanted: Mapping[Any, Any] | None) -> bool:
    """Whether `labels` hold each of `wanted`, both read as a Vertex job carries them (gcp_labels): `runs list
    --label`'s one rule on every target, so `Team=Payments` finds a run labelled `team: payments` and the other way
    round, locally as on Vertex (whose filter is `gcp_labels(wanted)`)."""
    have = gcp_labels(labels)
    return all(have.get(k) == v for k, v in gcp_labels(wanted).items())


_HEADER = "# labels: "


def labels_header(labels: Mapping[str, str]) -> str:
    """The compiled IR's header line that carries the pipeline's labels (a comment: KFP and Vertex load the IR
    as it is), read back by `ir_labels` when a compiled file is submitted; "" for none. JSON with ASCII escapes,
    so no character in a label ends the comment's line."""
    return f"{_HEADER}{json.dumps(dict(sorted(labels.items())))}\n" if labels else ""


def ir_labels(ir_text: str, source: str = "compiled pipeline") -> dict[str, str]:
    """The labels `labels_header` wrote into a compiled IR's leading comments; {} for an IR without them.
    UserError naming `source` (the file): a header line that is no JSON object (its labels were dropped, unsaid) or
    gives a label no text (`null`, `true`, a number: read as `None`, `True`), or
    a label holding a credential (kubepipe.secrets' label rule, as metadata.labels meets it), which a hand-edited
    header would otherwise carry to the Vertex job."""
    for number, line in enumerate(ir_text.splitlines(), 1):
        if not line.startswith("#"):
            break
        if line.startswith(_HEADER):
            try:
                found = json.loads(line[len(_HEADER):])
            except ValueError as exc:  # a hand-edited line: its labels were dropped from the job, unsaid
                raise UserError(f"{source}:{number}: its `{_HEADER.strip()}` line is not JSON ({exc}); regenerate the "
                                'file with `kubepipe compile`, or write the line as # labels: {"team": "ml"}') from None
            if not isinstance(found, dict):
                what = {list: "an array", str: "a string", bool: "true or false"}.get(type(found), "a number or null")
                raise UserError(f"{source}:{number}: its `{_HEADER.strip()}` line holds {what}, not an object of "
                                "labels; regenerate the file with "
                                '`kubepipe compile`, or write the line as # labels: {"team": "ml"}')
            odd = next(((k, v) for k, v in found.items() if not isinstance(v, str)), None)
            if odd is not None:  # `null` was the label `None`, `true` `True`: text no one wrote
                what = {type(None): "null", bool: "true or false", list: "an array", dict: "an object"}.get(
                    type(odd[1]), "a number")  # its value is not said: an object may hold anything
                raise UserError(f"{source}:{number}: its `{_HEADER.strip()}` line gives label `{odd[0]}` {what}, not "
                                "text; regenerate the file with `kubepipe compile`, or write the value in quotes: "
                                f'"{odd[0]}": "..."')
            labels = dict(found)
            _refuse_credentials(labels, source)
            return labels
    return {}


def _refuse_credentials(labels: dict[str, str], source: str) -> None:
    hits = [f"label `{key}`: {label_holds(key, kind)}" for _, key, kind in label_secrets(labels, ())]
    if hits:
        raise UserError(f"{source}: its `{_HEADER.strip()}` header line: " + "; ".join(hits)
                        + f"; drop it from that line (or from metadata.labels, and compile again): {LABELS_SAY}")


def gcp_id(text: Any, max_len: int) -> str:
    """A resource-id part: lowercase letters, digits and `-`, starting with a letter (`p-` if not)."""
    s = re.sub(r"[^a-z0-9-]+", "-", "".join(_ascii(c) for c in str(text)).lower()).strip("-") or "p"
    if not s[0].isalpha():
        s = "p-" + s
    return s[:max_len].rstrip("-")


def _ascii(char: str) -> str:
    if char.isascii():
        return char
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "-"
