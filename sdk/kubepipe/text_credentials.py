"""Credentials in free text where no key names them: a command line's (`curl -u`, `mysql -p`, `docker login -p`, a
.netrc's `password`), an image reference's `user:password@registry/`, and incoming-webhook URLs, whose path is the
secret. The words every redaction uses (REDACTED, SENTENCE_END) live here too; kubepipe.secret_shapes and
kubepipe.redaction sit on this module, below every layer.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "SENTENCE_END", "IMAGE_PASSWORD_IN_TEXT", "COMMAND_CREDENTIALS", "COMMAND_MARKS",
           "WEBHOOK_PATH_IN_TEXT", "webhook_path", "SECRET_HEADER", "HEADER_MARKS", "secret_header",
           "HOST_KEYS", "redact_host"]

REDACTED = "<redacted>"
# What may follow a credential in a sentence and is kept after it: `&token=T1: 404`, `(see .../XXXX).`, a Markdown
# code span's closing backquote (`?api_key=<redacted>`).
SENTENCE_END = ".,:;)]`"

# `user:password@registry/repo` in free text (a pull error quoting the image): the password; the registry a host
# (`reg.io`, `reg:5000`, `localhost`), so that prose (`at 10:30@room/5`) is none, and so is a time or a
# `mailto:` before the `@` (`12:30@reg.io/x`). Not inside a URL (`https://u:p@h/`:
# `URL_PASSWORD`'s), nor a digest (`reg/img@sha256:...`: its `@` after a `/`).
IMAGE_PASSWORD_IN_TEXT = re.compile(r"(?<![\w/:@.+%-])(?!mailto:|\d+:)(?P<head>[A-Za-z0-9][\w.-]*:)(?P<password>[^/@\s'\"]+)"
                                    r"(?=@(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9.-]+:\d+)"
                                    r"(?::\d+)?/)")

# Credentials on a command line or in a file where no key names them (`redact_text` hides `value`, keeps `head`):
# curl's `-u user:password` (`--user`, `--proxy-user`, `-U`), a MySQL client's `-pPASSWORD` (attached only:
# `mysql -p db` prompts for the password and `db` is the database), `docker login -p`, `sshpass -p`, `redis-cli -a`,
# a .netrc entry's `password X`. Only after those commands: `docker run -u 1000:1000` is a uid:gid, `-p 8080` a
# port. Each bounded to its line.
_ARG_SEP = r"(?:[ \t=]+|['\"],[ \t]*['\"])"  # `-u bob:pw`, `--user=bob:pw`, `'-u', 'bob:pw'` (an argument list)
_WORD_SEP = r"[ \t'\",]+"  # between a command's words: `docker login`, `'docker', 'login'`
COMMAND_CREDENTIALS = [
    re.compile(r"(?P<head>\bcurl\b[^\n|;&]{0,500}?[\s'\"](?:-u|--user|--proxy-user|-U)" + _ARG_SEP
               + r"['\"]?[^\s:'\"]*:)(?P<value>[^\s'\"]+)"),
    re.compile(r"(?P<head>\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb(?:-dump|-admin)?)"
               r"\b[^\n|;&]{0,500}?[\s'\"]-p)(?P<value>[^\s'\"]+)"),
    # a registry login's `-p` (docker, podman, helm registry, oras, skopeo), sshpass's `-p` and redis-cli's `-a`
    re.compile(r"(?P<head>\b(?:(?:(?:docker|podman|buildah|skopeo|oras|helm" + _WORD_SEP + "registry)" + _WORD_SEP
               + r"login|sshpass)\b"
               r"[^\n|;&]{0,500}?[\s'\"]-p|\bredis-cli\b[^\n|;&]{0,500}?[\s'\"]-a)(?:" + _ARG_SEP
               + r")?['\"]?)(?P<value>[^-\s'\"][^\s'\"]*)"),
    # a .netrc entry names its login ahead of its password: `the default password is x` is prose
    re.compile(r"(?P<head>\b(?:machine[ \t]+\S+|default)(?:\s+(?:account|port)[ \t]+\S+){0,2}\s+login[ \t]+\S+"
               r"(?:\s+(?:account|port)[ \t]+\S+){0,2}\s+password[ \t]+)(?P<value>\S+)"),
]
# What each of COMMAND_CREDENTIALS holds (redact_text's pre-test, as TOKEN_MARKS): its command, or `login`.
COMMAND_MARKS = r"curl|mysql|mariadb|login|sshpass|redis-cli"


# Incoming-webhook URLs, whose path is the secret (hooks.slack.com/services/T000/B000/XXXX): (host, the path's
# part kept to say which service). Slack, Discord, Microsoft Teams (Office 365 connectors), Google Chat (its
# key and token are query values, redacted by `query_items`' rule; the space goes too), and Mattermost, on
# any host (self-hosted): `/hooks/` and a 26-character id, maybe under a path (`/chat/hooks/...`).
_MATTERMOST_ID = r"[a-z0-9]{26}"
_WEBHOOKS = (
    (re.compile(r"^hooks\.slack(-gov)?\.com$"), re.compile(r"^/[^/]+/")),
    (re.compile(r"^(\w+\.)?discord(app)?\.com$"), re.compile(r"^/api/(v\d+/)?webhooks/")),
    (re.compile(r"^(outlook\.office(365)?\.com|[\w-]+\.webhook\.office\.com)$"), re.compile(r"^/webhook(b2)?/")),
    (re.compile(r"^chat\.googleapis\.com$"), re.compile(r"^/v1/spaces/")),
    (re.compile(r"^.*$"), re.compile(r"^(/[^/]+)*?/hooks/(?=" + _MATTERMOST_ID + r"([/.,:;)\]]|$))")),
)
# A webhook's secret path without its scheme, as an HTTP client's error shows it (`Max retries exceeded with
# url: /hooks/xi3k...`, `mm.example.com/hooks/...`): Mattermost's and Slack's are told by their shape.
WEBHOOK_PATH_IN_TEXT = re.compile(r"(/hooks/)" + _MATTERMOST_ID + r"(?![A-Za-z0-9])"
                                   r"|(/services/)T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{12,}")


def webhook_path(netloc: str, path: str) -> str:
    """A webhook URL's path with its secret part REDACTED (the service's first segments kept); else as is.
    Punctuation ending a sentence (`.../XXXX: 404`, `(see .../XXXX).`) stays."""
    host = netloc.rpartition("@")[2].split(":", 1)[0].lower()
    for host_pattern, kept in _WEBHOOKS:
        head = kept.match(path)
        if host_pattern.match(host) and head and path[head.end():].strip("/"):
            tail = path[len(path.rstrip(SENTENCE_END)):]
            return head.group(0) + REDACTED + tail
    return path


# HTTP headers whose value is a credential, the one rule wherever headers are shown (a dict of them, a client's
# error quoting them, a `Name: value` line): Authorization and Proxy-Authorization, Authentication, Cookie and
# Set-Cookie; the known ones named by their service (Docker's X-Registry-Auth, Honeycomb's X-Honeycomb-Team,
# signed-webhook signatures such as GitHub's X-Hub-Signature-256 and Stripe-Signature); and any custom `X-` header
# with one of these word parts (`X-Auth-Token`, `X-Slack-Signature`, `X-Session-Id`, `X-Shopify-Hmac-Sha256`).
# Only header-shaped names: `signature_version: s3v4` (botocore's) and `team: payments` (a label) are no headers.
_HEADER_PARTS = (r"auth(?:n|z|orization|entication|token)?|signature|token|secret|session|cookie|passw(?:or)?d|"
                 r"credentials?|api-?key|key|hmac|jwt")
SECRET_HEADER = (r"(?:proxy-)?authori[sz]ation|authentication|(?:set-)?cookie|x-registry-auth|x-honeycomb-team|"
                 r"[a-z0-9]+-signature(?:-[a-z0-9]+)?|x-(?:[a-z0-9]+-)*?(?:" + _HEADER_PARTS + r")(?:-[a-z0-9]+)*")
_SECRET_HEADER = re.compile(SECRET_HEADER, re.I)
# What a text holding one of them holds, for `redact_text`'s pre-test (besides its credential words: auth, token...)
HEADER_MARKS = "signature|session|hmac|jwt|honeycomb"


def secret_header(name: object) -> bool:
    """Whether `name` is an HTTP header whose value is a credential (`SECRET_HEADER`)."""
    return isinstance(name, str) and _SECRET_HEADER.fullmatch(name.strip()) is not None


# Keys whose value is a host or a service's URL (a profile's KFP `host`, Vertex's `api_endpoint`): one given without
# its scheme is refused, and its value is said with the refusal.
HOST_KEYS = frozenset({"host", "api_endpoint", "endpoint", "kfp_host"})
# Without a scheme no URL rule reads such a value: `bob:pw@kfp.example.com` (no path: no image reference either) and
# `kfp.example.com:pw` (a password where the port goes, or `user:password` with its `@host` lost) were said whole.
_SCHEMELESS_USERINFO = re.compile(r"^(?P<head>\s*[^\s@:]*:)(?P<password>[^\s@]+)(?=@)")
_NOT_A_PORT = re.compile(r"^(?P<head>\s*[^\s/@:?#]+:)(?!\d*(?:[/?#\s]|$))(?P<password>[^\s/?#@]+)")


def redact_host(value: str) -> str:
    """A host value given without a scheme (`HOST_KEYS`'), as messages say it: a password before an `@`
    (`bob:<redacted>@kfp.example.com`) and whatever stands where the port goes but is no port number
    (`kfp.example.com:<redacted>`) REDACTED; a value with a scheme is as it is (the URL rules read it)."""
    if not isinstance(value, str) or "://" in value:
        return value
    value = _SCHEMELESS_USERINFO.sub(lambda m: m.group("head") + REDACTED, value, count=1)
    return value if "@" in value else _NOT_A_PORT.sub(lambda m: m.group("head") + REDACTED, value, count=1)
