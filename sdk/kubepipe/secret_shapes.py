"""What a credential looks like: names that say a value is one, and values shaped like one.

A key names a credential (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, `*ACCESS_KEY*`, `*API_KEY*`, `*PRIVATE_KEY*`,
`*CREDENTIALS*`, ...) unless it says where one is (`*_env`, `*_file`, ...); a value is one by its shape (AWS access
key id, PEM private key, JWT, Google API key, service-account JSON, bearer/OAuth/GitHub tokens, a URL with a password
or a credential in its query (a presigned S3 / GCS URL's signature, an Azure SAS, `access_token`, `token`, `api_key`,
an Azure Functions `code`, an API `key`), a Slack, Discord, Teams, Google Chat or Mattermost webhook URL). kubepipe.secrets finds them in profiles and
pipelines, kubepipe.redaction hides them in text; both sit on this module, below every layer.
"""

from __future__ import annotations

import re

from kubepipe.text_credentials import REDACTED, SENTENCE_END, WEBHOOK_PATH_IN_TEXT, secret_header, webhook_path

__all__ = ["REDACTED", "SENTENCE_END", "WEBHOOK_KIND", "IMAGE_CREDENTIALS_KIND", "IMAGE_PULL_HINT",
           "PLACEHOLDER", "TOKEN_MARKS", "PEM_BEGIN", "PEM_END", "TOKENS", "URL_IN_TEXT",
           "QUERY_ITEM_IN_TEXT", "QUERY_SEP", "URL_PASSWORD", "WHOLE_REF", "is_secret_name",
           "keyed_secret", "names_credential_itself", "normal_key", "query_credential", "query_items", "query_item_hidden",
           "nested_item_spans",
           "query_item_secret", "query_credential_refs", "secret_value_kind", "may_hold_credential"]

WEBHOOK_KIND = "a webhook URL, whose path is its credential"  # secret_value_kind's word for one
IMAGE_CREDENTIALS_KIND = "an image reference with registry credentials"  # and its word for `user:pw@reg/img`
# What to do with one: pull credentials are no step's secret, the runtime pulls the image with its own.
IMAGE_PULL_HINT = ("give the image without them (`registry.example.com/team/img:tag`); pull credentials are no "
                   "environment variable's: Kubeflow pulls with an imagePullSecret on the pipeline's service account, "
                   "Vertex AI and GKE with workload identity (the service account's read access to Artifact "
                   "Registry), your Docker with `docker login` (a local run pulls nothing)")

# Parts of a key (snake_case after splitting camelCase) that name the secret itself; `subscription_key` and
# `function(s)_key` are the headers an Azure API Management and an Azure Functions endpoint take their key in.
# `password` inside a word names one too (PGPASSWORD, Postgres's; `dbpassword`).
# `pass` and `pwd` name a password as a key's last part only (`DB_PASS`, `SMTP_PASS`, `MYSQL_PWD`, whose value was
# shown), not as a first (`pass_rate`, `pass_through`); `pass` alone is a test's result (`PASS: test_x`), no key.
_SECRET_PART = re.compile(
    r"(^|_)(\w*token|bearer|\w*passw(or)?d\w*|passphrase|secrets?|\w*secret|cookies?|auth_header|authorization|"
    r"credentials?|api_?key|access_?key|private_?key|secret_?key|account_?key|subscription_?key|functions?_?key)"
    r"($|_)|_pass$|(^|_)pwd$"
)
# Keys that only say where the secret is (allowed; `--password-stdin`), tokenizer vocabulary (`pad_token: "[PAD]"`)
# and an algorithm's pass (`first_pass`, `two_pass`).
_REFERENCE_KEY = re.compile(r"(_env|_file|_path|_name|_ref|_uri|_stdin)$|^(kubeconfig|kube_context|service_account)$|"
                            r"(^|_)(pad|unk|eos|bos|cls|sep|mask|special)_tokens?(_id)?$|"
                            r"(^|_)(first|second|third|last|next|each|one|two|single|double|multi|\d+\w*)_pass$")
# Credential shapes, each matched whole: `secret_value_kind` finds them in a value, `redact_text` replaces
# all of each inside free text.
# A PEM private key's first and last lines: all between them is the key (`TOKENS`' first; `StreamRedactor`).
PEM_BEGIN = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
PEM_END = r"-----END [A-Z0-9 ]*-----"
TOKENS = [
    (re.compile(PEM_BEGIN + r".*?(" + PEM_END + r"|$)", re.S), "a PEM private key"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I), "a bearer token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"), "a JWT"),
    # with its secret access key when written after it (`AKIA...:wJalr...`, `AKIA... secret wJalr...`): 40 characters
    # of base64 that no key names, hidden with the id
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b(?:[\s:,;=/|'\"]{1,5}(?:[\w-]*secret[\w-]*[\s:=,'\"]{1,5})?"
                r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=]))?"), "an AWS access key id"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), "a Google API key"),
    (re.compile(r"\b(ghp|gho|ghs|ghu|ghr|github_pat)_[A-Za-z0-9_]{10,}"), "an access token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "a Hugging Face token"),
    # OpenAI / Anthropic keys; a run of 20 letters and digits tells one from a name (sk-learn-...-v2)
    (re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]*[A-Za-z0-9]{20}"
                r"[A-Za-z0-9_-]*"), "an API key"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), "a GitLab token"),
    (re.compile(r"\b[sr]k_(live|test)_[A-Za-z0-9]{16,}"), "a Stripe key"),
    (re.compile(r"\bya29\.[A-Za-z0-9_.-]{20,}"), "an OAuth access token"),
]
# What every shape of TOKENS holds, in any case: a text with none of these holds none of them (redact_text's
# pre-test; tests/unit/test_redaction_fast_path.py draws texts from each shape to check it). A new shape adds its own.
TOKEN_MARKS = (r"-----BEGIN|bearer|basic|eyJ|AKIA|ASIA|AIza|gh[pousr]_|github_pat_|xox[abposr]-|hf_|sk-|glpat-|"  # nosec B105 - a pattern of token prefixes, not a credential
               r"[sr]k_live_|[sr]k_test_|ya29\.")
# A URL's scheme where a URL begins in text (`URL_IN_TEXT`, `URL_PASSWORD`): a letter at the start of a word, then
# at most 63 letters, digits, `+`, `.`, `-` and `_` (SQLAlchemy's dialect+driver: `oracle+cx_oracle://u:pw@h`, whose
# password was shown) and `://`; the longest scheme in use is far shorter. Unbounded, a long
# run of hyphenated words with no `://` after it (`a-a-a-...`, a base64 or an id a step printed) was read to its end
# from each of its words: quadratic, 100 000 characters took minutes; bounded, each word costs at most 64 steps.
_SCHEME = r"\b[A-Za-z][A-Za-z0-9_+.-]{0,63}://"
# A URL's password as written, the one rule for it (`secret_value_kind`, `redact_url`): with or without a user
# (`redis://:pw@cache`), up to the `@` before the host, a `/`, `?` or `#` in it too (`postgres://u:pa?ss@h/db`,
# `u:p/ss@h`, which urlsplit ends the authority at, showing the password's end as a path or a query). Digits then
# `?` or `#` are a port (`https://h:8443?email=ana@example.com`: no password), and so is nothing then `?`; digits then
# `/` are a port unless an `@` comes before the next `/`, `?`, `#` or space (`postgres://u:1234/5678@h` holds the
# password `1234/5678`; `https://h:8443/users/ana@example.com` a port and a path); a password shown as REDACTED is
# none (`postgres://app:<redacted>@db`); the scheme in any case (RFC 3986).
# The password runs up to the next URL's `scheme://user:` at most: read to the end of a run with no `@` from each
# URL in it, 10 000 `x://h:p/` in one line (a minified JSON of templated URLs) took seconds, quadratic.
_URL_HEAD = _SCHEME + r"[^/\s:@?#]*:"
URL_PASSWORD = re.compile(r"(?P<head>" + _URL_HEAD + r")(?!" + re.escape(REDACTED) + r"@)"
                          r"(?!\d*(?:[?#]|/(?![^/\s?#@]*@)))(?P<password>(?:(?!" + _URL_HEAD + r")[^\s@])+)(?=@)")
# Values that are secrets whatever their key: the token shapes, a service-account key file, a URL's password.
_SECRET_VALUE = [
    TOKENS[0],  # a service-account key holds a PEM key: named as the PEM key, as before
    (re.compile(r'"private_key"\s*:|"type"\s*:\s*"service_account"'), "a service-account key (JSON)"),
    *TOKENS[1:],
    (URL_PASSWORD, "a URL with a password"),
    # `user:password@registry/repo:tag` (a runtime_image given with its pull credentials): no scheme, so no URL's
    # password; a digest's `@` comes after the repository's `/` (`reg/img@sha256:...`) and is none.
    (re.compile(r"^\s*[^/@\s:]+:[^/@\s]+@[^/@\s]+/\S*$"), IMAGE_CREDENTIALS_KIND),
]
# A placeholder where a value goes, in a hint or a usage line (`{secret: <kubernetes-secret-name>}`,
# `password: <your password>`, `--token <TOKEN>`), REDACTED among them: says what goes there, is none.
PLACEHOLDER = r"<[A-Za-z][\w .-]{0,60}>"
# Text under a credential-named key that cannot be the credential: flags, numbers, paths, plain URLs, placeholders.
_HARMLESS = re.compile(r"^(|true|false|yes|no|on|off|none|null|[-+]?\d+(\.\d+)?|"
                       r"(/|\./|\.\./|~/)\S*|[a-z][a-z0-9+.-]*://[^@\s]*|" + PLACEHOLDER + ")$", re.I)
WHOLE_REF = re.compile(r"^\$\{[^}]*\}$")  # a whole `${...}`: wiring, not a literal
# Query parameters that carry a credential whatever the host: a presigned S3 or GCS URL's signature, credential and
# session token (`Signature`: a V2-signed S3 / GCS or a CloudFront URL's), a signature (`sig`: an Azure SAS's, and
# any signed URL's, with or without the SAS's `sv` / `se` beside it), an OAuth access token, a token or an API key.
# Besides: the keys a host's API takes its key in (`_HOST_KEYS`), `key` on any host when its value has a generated
# key's shape (`_GENERATED_KEY`), and any key that names a credential (`query_items`).
_QUERY_CREDENTIALS = frozenset({"x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
                                "x-goog-credential", "signature", "sig", "access_token", "token", "api_key", "api-key",
                                "apikey"})
# Where a URL is shown (`query_items(shown=True)`), `key` is hidden whatever its value: an API key of any shape
# (`?key=mysecretkey`) was shown. A YAML value holding `?key=reports/2024.csv` is still no literal credential.
_SHOWN_HIDDEN = frozenset({"key"})
# (host suffix, query keys carrying its API key): a Google API key, an Azure Functions function / host key.
_HOST_KEYS = (("googleapis.com", frozenset({"key"})), ("azurewebsites.net", frozenset({"code", "key"})))
# `?key=` on another host (an API key), by a generated key's shape: 16+ letters, digits, `-` and `_`, capitals,
# small letters and digits among them (a 16-character key, `aB3xK9mQ2pL7vN4r`, is as common as a longer one), but
# not words of 3+ letters in camelCase and numbers (`QuarterlyReport2024`, `MonthlyRevenueV2`: a name; one with a
# shorter word, `My_Report_2024_v2`, reads as a key); or 32+ hex digits, in groups joined by `-`
# too (a UUID, `0f8fad5b-d9cb-469f-a165-70867728950e`; `12345678-<32 hex digits>`). A name or a path
# (`?key=reports/2024.csv`, `?key=daily_summary`) is none, and so is a shorter value (`?key=abc123`).
_GENERATED_KEY = re.compile(r"^((?=.*[A-Z])(?=.*[a-z])(?=.*\d)(?!(?:[A-Z]?+[a-z]{3,}+|[A-Za-z]?+\d++|[_-])++$)"
                            r"[A-Za-z0-9_-]{16,}"
                            r"|(?=(?:-?[0-9A-Fa-f]){32})[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)*)$")
# A query item in text with no scheme to its URL (an HTTP client's `PUT /b/k?X-Amz-Signature=...`, a server's
# `GET /api/x?code=...&x=1`): after `?`, `&` or `;`, its value up to the sentence's punctuation after it
# (`&token=T1: 404`); `query_items`' rule tells whether it holds a credential, the host unknown.
QUERY_ITEM_IN_TEXT = re.compile(r"(?<=[?&;])(?P<key>[^\s=&;?#'\"<>]+)="
                                r"(?P<value>[^&;\s'\"#<>]*[^&;\s'\"#<>" + re.escape(SENTENCE_END) + r"])")


# A key that counts or bounds tokens (a model's `max_tokens`, `token_budget`, `token_count`) names no credential.
_TOKEN_COUNT_KEY = re.compile(r"(^|_)(max|min|num|n|total|prompt|completion|input|output|new)_tokens?$|"
                              r"(^|_)tokens?_(budget|count|limit|len|length|usage|per_\w+)$")


def is_secret_name(name: str) -> bool:
    """Does this key / variable name say it holds a credential (and not where one is, nor a count of tokens)?
    The one rule for a key: redact_text, labels, profiles, params and the environment all ask it."""
    key = normal_key(str(name))
    return (bool(_SECRET_PART.search(key)) and not _REFERENCE_KEY.search(key)
            and not _TOKEN_COUNT_KEY.search(key))


def normal_key(name: str) -> str:
    """A key as snake_case, lowercase (`apiKey`, `API-KEY` and `api.key` are `api_key`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_").replace(".", "_")


def secret_value_kind(value: object) -> str | None:
    """What credential the text looks like ("a JWT", ...), or None."""
    if not isinstance(value, str):
        return None
    for pattern, kind in _SECRET_VALUE:
        if pattern.search(value):
            return kind
    if "hooks" in value or "webhook" in value or "/services/" in value or "/spaces/" in value:  # cheap pre-test
        if _webhook_in(value):
            return WEBHOOK_KIND
    if "?" in value and ("=" in value or "%" in value):  # cheap pre-test (`?token%3Dabc`)
        for m in URL_IN_TEXT.finditer(value):
            key = query_credential(m.group(0))
            if key:
                return f"a URL whose query carries `{key}=`"
    return None


QUERY_SEP = re.compile(r"[&;]")  # what ends a query item: `&`, and `;` (HTML 4, Java servlets, Rails, Django)


def query_credential(url: str) -> str | None:
    """The name, as written, of the first query parameter of `url` that carries a credential (`query_items`' rule),
    or None."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return None
    for key, eq, _value, secret, nested in query_items(parts.query, host) if parts.query else []:
        if secret or (nested and eq):
            return key
        if nested:  # `?token%3Dabc`: the text before the value names it, never the value (`token`)
            return unquote(key[:nested[0][0]], errors="replace").rstrip("=") or "?"
    return None


def query_items(query: str, host: str, *, shown: bool = False) -> list[tuple[str, str, str, bool, list[tuple[int, int]]]]:
    """(key, `=` or "", value, holds a credential, nested) for each item of a URL's query, as written, `&` or `;`
    between them (`QUERY_SEP`: `?a=1;token=T` as HTML 4 and servers read it). The one
    rule for a query value: a credential when its key is one of the listed (`_listed_key`), or is named like a YAML
    credential and the value could be one (`keyed_secret`: `password`, `client_secret`, no flag, number or path),
    or when the value is shaped like one (`secret_value_kind`); an empty value or a whole `${...}` is none. Other
    values (`generation=123`, `sslmode=require`, `X-Amz-Expires=60`) are no credential. `shown`: as a message shows
    the URL, `key` too whatever its value (`query_item_hidden`). `nested`: in an item holding none, the spans of
    `key + eq + value` that the rule hides in the query its value carries, percent-encoded (`nested_item_spans`:
    `?next=https%3A%2F%2Fh%2Fcb%3Fcode%3D...`, `?token%3Dabc`)."""
    judge = query_item_hidden if shown else query_item_secret
    out = []
    for key, eq, value in (item.partition("=") for item in QUERY_SEP.split(query)):
        secret = judge(key, value, host)
        at = len(key) + len(eq) if eq else 0  # an item without `=` (`token%3Dabc`) is read whole
        nested = [] if secret else [(at + a, at + b) for a, b in nested_item_spans((key + eq + value)[at:], judge)]
        out.append((key, eq, value, secret, nested))
    return out


# The marks of a query carried inside a query item, each as written or percent-encoded once to three times
# (`%3D`, `%253D`): a separator between items (`&`, `;`, and the `?` of a URL inside) or an item's `=`.
_QUERY_MARKS = re.compile(r"(?P<sep>[?&;]|%(?:25){0,2}(?:26|3[Ff]|3[Bb]))|(?P<eq>=|%(?:25){0,2}3[Dd])")
_JUDGED = 512  # characters of a nested value judged (a long run of `a=a=...` is linear); all of it is hidden


def nested_item_spans(text: str, judge) -> list[tuple[int, int]]:
    """(start, end) of each value in `text` (a query value as written, or an item with no `=`) that `judge(key,
    value, None)` calls a credential, reading `text` as a query: a key is the text after a mark (or the start) that an
    `=` follows, its value runs to the next separator, written or percent-encoded (`_QUERY_MARKS`): `token%3Dabc`, an
    encoded URL's `%3Fx%3D1%26sig%3Dabc`, a double-encoded one's `%2526sig%253D`. The host is unknown (None). The
    sentence's punctuation after the last value stays out of it. One pass; a key inside a hidden value is not read."""
    from urllib.parse import unquote

    if "=" not in text and "%" not in text:
        return []
    marks = [(m.start(), m.end(), m.lastgroup) for m in _QUERY_MARKS.finditer(text)]
    end_of_text = len(text.rstrip(SENTENCE_END))
    next_sep = [end_of_text] * (len(marks) + 1)  # where the value after each mark ends
    for j in range(len(marks) - 1, -1, -1):
        next_sep[j] = min(marks[j][0], end_of_text) if marks[j][2] == "sep" else next_sep[j + 1]
    spans: list[tuple[int, int]] = []
    after = 0  # the end of the last mark
    for j, (start, end, kind) in enumerate(marks):
        key, stop = text[after:start], next_sep[j + 1]
        after = end
        if kind != "eq" or not key or end >= stop or (spans and start < spans[-1][1]):
            continue
        for _ in range(3):  # a key encoded as its query is (`%2574oken`)
            key = unquote(key)
        if judge(key, text[end:min(stop, end + _JUDGED)], None):
            spans.append((end, stop))
    return spans


def query_item_hidden(key: str, value: str, host: str | None) -> bool:
    """Whether a message hides a query item's value: a credential (`query_item_secret`), or a non-empty value of a
    key hidden wherever a URL is shown (`_SHOWN_HIDDEN`: `key`, an API key whatever its shape)."""
    from urllib.parse import unquote

    if query_item_secret(key, value, host):
        return True
    text = unquote(value).strip()
    return unquote(key).lower() in _SHOWN_HIDDEN and bool(text) and not WHOLE_REF.match(text)


def query_item_secret(key: str, value: str, host: str | None) -> bool:
    """Whether a query item's value (as written, percent-encoded) holds a credential: `query_items`' rule. `host`
    None: unknown (a request path in a log line, `GET /api/x?code=...`): `code` is then a credential, as on an
    Azure Functions app (its function key) or at an OAuth callback (its authorization code), unless it is a number
    (`?code=500`, a status code)."""
    from urllib.parse import unquote

    text = unquote(value).strip()
    if not text or WHOLE_REF.match(text):
        return False
    name = unquote(key)
    return (_listed_key(key, host) or keyed_secret(name, text)
            or (host is None and name.lower() == "code" and not _NUMBER.match(text))
            or (name.lower() == "key" and bool(_GENERATED_KEY.match(text.rstrip(SENTENCE_END))))
            or secret_value_kind(text) is not None)


def query_credential_refs(text: str) -> list[tuple[str, str]]:
    """(key, value) for each item of the query of the URL in `text` (after its first `?`) whose value holds a `${...}`
    reference and whose key says that value is a credential (listed, or named like one: `?password=${env.PW}`,
    `?X-Amz-Signature=${env.SIG}`): what the reference would fill in is a credential, whatever its name."""
    from urllib.parse import unquote, urlsplit

    query = text.partition("?")[2].partition("#")[0] if isinstance(text, str) else ""
    if "${" not in query:
        return []
    try:
        host = urlsplit(text).hostname or "" if URL_IN_TEXT.match(text) else ""
    except ValueError:
        host = ""
    items = [item.partition("=") for item in QUERY_SEP.split(query)]
    return [(key, value) for key, _, value in items
            if "${" in value and (_listed_key(key, host) or is_secret_name(unquote(key)))]


def _listed_key(key: str, host: str | None) -> bool:
    """Whether a query key's value is a credential whatever it is: one of `_QUERY_CREDENTIALS`, a key the host's API
    takes its key in (`_HOST_KEYS`: `key` on googleapis.com, `code` and `key` on an Azure Functions app,
    *.azurewebsites.net)."""
    from urllib.parse import unquote

    name, host = unquote(key).lower(), (host or "").lower()
    return (name in _QUERY_CREDENTIALS
            or any(name in keys and (host == suffix or host.endswith("." + suffix)) for suffix, keys in _HOST_KEYS))


def _webhook_in(text: str) -> bool:
    """Whether `text` holds an incoming-webhook URL of a service `redact_url` knows (`_WEBHOOKS`), or its path."""
    from urllib.parse import urlsplit

    if WEBHOOK_PATH_IN_TEXT.search(text):
        return True
    for m in URL_IN_TEXT.finditer(text):
        try:
            parts = urlsplit(m.group(0))
        except ValueError:
            continue
        if webhook_path(parts.netloc, parts.path) != parts.path:
            return True
    return False


# A base64 key that begins with `/` is no path (an AWS secret access key, `/K7MDENG/bPxRfiCYEXAMPLEKEY...`, one in
# 64 of them): 20 or more of base64's characters, capitals, small letters and digits among them.
_KEY_LIKE = re.compile(r"^(?=.*[A-Z])(?=.*[a-z])(?=.*\d)[A-Za-z0-9/+=]{20,}$")


# A key that ends in a credential's name names the credential itself (`password`, `db_password`, `github_token`);
# one that only holds it as a part says something about it (`token_budget`, `secret_level`).
_CREDENTIAL_LAST = re.compile(r"(^|_)(\w*tokens?|bearer|\w*passw(or)?d|(?<=_)pass|pwd|passphrase|\w*secrets?|cookies?|"
                              r"auth_header|authorization|credentials?|api_?key|access_?key|private_?key|secret_?key|"
                              r"account_?key|subscription_?key|functions?_?key)$")
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")
# A value that is a few plain words (`high`, `per-team`, `gpu_heavy`): under a key holding a credential's name only
# as a part (`secret_level`), it says something about one, it is none.
_PLAIN_WORDS = re.compile(r"^[a-z]{1,20}([-_. ][a-z]{1,20}){0,4}$", re.I)


def names_credential_itself(key: object) -> bool:
    """Whether `key` ends in a credential's name (`DB_PASSWORD`, `github_token`), not only holds one as a part
    (`token_budget`)."""
    return bool(_CREDENTIAL_LAST.search(normal_key(str(key))))


def _basic_pair(value: str) -> bool:
    """Whether `value` is base64 of `user:password` (a Docker config's `"auth"`, HTTP Basic's credentials)."""
    import base64
    import binascii

    if len(value) < 8 or not _BASE64.match(value):
        return False
    try:
        text = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, password = text.partition(":")
    return bool(colon and user and password and text.isprintable())


_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def may_hold_credential(key: object) -> bool:
    """Whether a value under `key` may be a credential by its key alone (`keyed_secret` says which values are):
    `is_secret_name`, a last part `auth` (a Docker config's, `http_auth`: base64 of user:password), or an HTTP header
    whose value is one (`secret_header`: `X-Hub-Signature-256`)."""
    return is_secret_name(str(key)) or _auth_key(key) or secret_header(key)


def _auth_key(key: object) -> bool:
    return normal_key(str(key)).rpartition("_")[2] == "auth" and not is_secret_name(str(key))


def keyed_secret(key: object, value: object) -> bool:
    """Whether `value` under `key` is a credential: the key names one (`is_secret_name`) and the value could be one
    (no flag, number, path or plain URL, `_HARMLESS`; a base64 key beginning with `/` is no path). A number of 8
    characters or more under a key naming the credential itself is one (`DB_PASSWORD=12345678`, a numeric PIN);
    under `secret_level` it is a number, and so are a few plain words (`high`, `per-team`) there. Under `auth`
    (a Docker config's), base64 of `user:password` is one."""
    if not isinstance(value, str) or not may_hold_credential(key):
        return False
    text = value.strip()
    if _auth_key(key) and not secret_header(key):  # `"auth": "Ym9iOmh1bnRlcjI="`
        return _basic_pair(text)
    itself = names_credential_itself(key) or secret_header(key)
    if _NUMBER.match(text) and len(text) >= 8 and itself:
        return True
    if not itself and _PLAIN_WORDS.match(text):  # `secret_level: high`, `password_policy: strict`: about one
        return False
    return not _HARMLESS.match(text) or bool(_KEY_LIKE.match(text))


URL_IN_TEXT = re.compile(_SCHEME + r"[^\s'\"<>]+")
