"""The pipeline's labels checked for Vertex, where a job carries them as GCP labels (kubepipe.labels)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from kubepipe.errors import Issue
from kubepipe.labels import MANAGED_BY, MAX_LABEL, MAX_LABELS, OWN_LABELS, gcp_label, gcp_labels, run_labels

__all__ = ["label_issues", "label_notes", "pipeline_labels"]

RULE = (f"Vertex labels are lowercase letters, digits, `_` and `-` (kubepipe writes ASCII), at most {MAX_LABEL} "
        "characters, a key starting with a letter")


def pipeline_labels(metadata: Any, profile: Any) -> dict[str, str]:
    """The labels a run of this pipeline carries over the profile's: `metadata.labels` and `metadata.owner` (as
    `owner`), with each label given with `--set labels.<key>=...` in place of the pipeline's that is the same label
    on Vertex (the command line wins, as --set does over the profile file; `--set labels.team=payments` was dropped
    under `team: ml`, unsaid). Sources, lowest first: the profile file's labels, the pipeline's, --set's."""
    return run_labels(metadata.run_labels(), profile.set_labels)


def label_issues(metadata: Any, profile_labels: Mapping[str, str], target: str, issue: Callable[..., Issue],
                 profile_issue: Callable[..., Issue] | None = None, deploys: bool = False,
                 over: Mapping[str, str] | None = None) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings): on vertex, each of `metadata.labels`, `metadata.owner` and the profile's labels (located by
    `profile_issue`) a job would carry other than written (a warning at its key, naming the label it gets), and more
    labels than a job may have (an error at metadata.labels; at the profile's labels when those alone are).
    `deploys`: a deploy step's model and endpoint carry the labels too, with kubepipe's `managed-by: kubepipe`
    over a label `managed-by` given here (a warning at it). `over`: the labels --set gave (`Profile.set_labels`),
    which win over the pipeline's."""
    if target != "vertex":
        return [], []
    over = dict(over or {})
    replaced = set(gcp_labels(over))  # the pipeline's labels --set replaces are not sent
    given: list[tuple[tuple[str, ...], str, Any]] = [(("metadata", "labels", key), key, value)
                                                     for key, value in metadata.labels.items()
                                                     if gcp_label(key, key=True) not in replaced]
    if metadata.owner and "owner" not in replaced:  # the label `owner` (ana@example.com is `ana-example-com`)
        given.append((("metadata", "owner"), "owner", metadata.owner))
    warnings = [w for path, key, value in given if (w := rewritten(path, key, value, issue))]
    mine = run_labels(metadata.run_labels(), over)  # and metadata.owner as `owner`; --set's over them
    won = set(gcp_labels(mine))  # a profile's label the pipeline's replaces is not sent
    theirs_given = [(("labels", key), key, value) for key, value in profile_labels.items()
                    if gcp_label(key, key=True) not in won or key in over]
    warnings += [w for path, key, value in theirs_given if (w := rewritten(path, key, value, profile_issue or issue))]
    if deploys:
        warnings += [_managed_by(path, value, at) for path, key, value, at in
                     [(*g, issue) for g in given] + [(*g, profile_issue or issue) for g in theirs_given]
                     if gcp_label(key, key=True) == MANAGED_BY and gcp_label(value) != "kubepipe"]
    merged = gcp_labels(run_labels(profile_labels, mine))
    room = MAX_LABELS - OWN_LABELS
    if len(merged) <= room:
        return [], warnings
    theirs = len(set(merged) - set(gcp_labels(metadata.run_labels())))  # the profile's, --set's among them
    ours = f"{len(merged)} labels" + (f" (with the profile's {theirs})" if theirs else "")
    where: tuple = ("metadata", "labels")  # or the profile's ("labels",)
    at = issue
    if theirs > room:  # the profile's alone: that is where to drop them, not the pipeline (which may have none)
        with_mine = f" ({len(merged)} with the pipeline's)" if len(merged) > theirs else ""
        ours, where, at = f"the profile's {theirs} labels{with_mine}", ("labels",), profile_issue or issue
    return [at(where, f"{ours}: a Vertex job takes at most {MAX_LABELS}, and kubepipe and Vertex use {OWN_LABELS} "
               "of them", hint=f"keep at most {room}: drop {len(merged) - room}")], warnings


def _managed_by(path: tuple, value: str, issue: Callable[..., Issue]) -> Issue:
    return issue(path, f"the deploy step's Vertex model and endpoint carry `{MANAGED_BY}: kubepipe`, not "
                 f"`{MANAGED_BY}: {gcp_label(value)}`: {MANAGED_BY} is kubepipe's own label there (the pipeline job "
                 "keeps this one)", hint=f"name your label otherwise to keep it on them too, e.g. `provisioned-by: "
                 f"{gcp_label(value)}`", severity="warning")


def rewritten(path: tuple, key: str, value: str, issue: Callable[..., Issue]) -> Issue | None:
    """The warning at `path` when a Vertex job carries the label `key: value` other than written, naming the label
    it gets; None when it carries it as written."""
    vkey, vvalue = gcp_label(key, key=True), gcp_label(value)
    if (vkey, vvalue) == (key, value):
        return None
    return issue(path, f"a Vertex job carries this label as `{vkey}: {vvalue}`",
                 hint=f"{RULE}; write `{vkey}: {vvalue}` here so every target keeps the same label", severity="warning")


def label_notes(metadata: Any, profile_labels: Mapping[str, str], target: str) -> list[str]:
    """What becomes of the labels on `target`, where it is not what they say: Kubeflow runs have none."""
    if target != "kubeflow" or not (metadata.run_labels() or profile_labels):
        return []
    return ["kubeflow target: Kubeflow Pipelines runs have no labels; metadata.labels, owner and the profile's "
            "labels label local runs, Vertex jobs and a deploy step's KServe InferenceService only"]
