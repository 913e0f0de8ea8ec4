"""The catalogue of credential shapes shared.redaction masks: each a name, a pattern and what replaces it.

Two kinds. Shapes recognised by their form (a PAT, a JWT, a PEM block, an Entra secret `xxx8Q~...`) are masked
wherever they appear. Values with no form of their own (a password, a legacy Entra secret, a 32-hex API key)
are masked by their context: the name or word before them (`password=`, `fs.azure...client.secret <v>`,
`"secret": "<v>"`, `subscription key <v>`). A bare high-entropy value with no such context is not recognised;
the README's Security section says so. Applied in order; each mask is something no later pattern matches.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

MASK = "***"

# One segment of a key name that makes its value a secret: `AZURE_CLIENT_SECRET`, `fs.azure.account.key.x`,
# `aws_secret_access_key`, `apiKey`. Segments are split on `_ . -` and camelCase.
SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "apikey", "sig", "signature",
    "credential", "credentials", "accountkey", "accesskey", "sharedaccesskey", "sas", "privatekey", "clientsecret",
    "authorization",
})
# Two-segment names whose second segment alone is too common to count (`key`): api_key, account.key ...
SECRET_PAIRS = frozenset({
    ("api", "key"), ("account", "key"), ("access", "key"), ("shared", "key"), ("subscription", "key"),
    ("private", "key"), ("master", "key"), ("openai", "key"),
    ("storage", "key"), ("functions", "key"), ("client", "secret"), ("encryption", "key"), ("signing", "key"),
})
# Names that contain a secret word but hold none.
NOT_SECRET_NAMES = frozenset({
    "idempotency_token", "token_type", "page_token", "next_page_token", "prev_page_token", "continuation_token",
    "token_endpoint", "secret_name", "secret_names", "pat_secret_name", "secret_scope", "auth_type", "authmech",
    "auth_mech", "sas_version", "password_policy", "token_uri", "pwd_dir",
})
# A last segment that makes the name about a secret, not the secret: SecretName, pat_secret_name, token_type.
_NOT_SECRET_LAST = frozenset({"name", "names", "id", "ids", "scope", "type", "url", "uri", "path", "version",
                              "policy", "endpoint", "length", "count", "file", "dir", "provider", "expiry"})
# Values that point at a secret without being one: a Key Vault reference, a Databricks secret reference.
_REFERENCE = re.compile(r"^(?:@Microsoft\.KeyVault\(|\{\{secrets/)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True when `name` (a key, an env variable, a spark conf) holds a secret: password, X_API_KEY, a.client.secret."""
    lowered = name.strip("\"' ").lower()
    if not lowered or lowered in NOT_SECRET_NAMES:
        return False
    segments = [s for s in re.split(r"[._\-\s]+", _CAMEL.sub("_", name.strip("\"' "))) if s]
    lowered_segments = [s.lower() for s in segments]
    if lowered_segments and lowered_segments[-1] in _NOT_SECRET_LAST:
        return False
    if any(s in SECRET_WORDS for s in lowered_segments):
        return True
    return any(pair in SECRET_PAIRS for pair in zip(lowered_segments, lowered_segments[1:]))


@dataclass(frozen=True)
class SecretShape:
    """One shape: `pattern` found in a text is replaced by `replacement` (a string or a function of the match).

    A `named` shape has groups `name` and `value`: the value is masked when the name is a secret's, and when
    it is not, the value is searched again (a JSON string quoting `"password": "x"` inside another value).
    """

    name: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str] = MASK
    named: bool = False

    def apply(self, text: str) -> str:
        """`text` with this shape masked."""
        if not self.named:
            return self.pattern.sub(self.replacement, text)
        out, pos = [], 0
        while (match := self.pattern.search(text, pos)) is not None:
            value_at = match.start("value")
            out.append(text[pos:value_at])
            value = match.group("value")
            if value != MASK and not _REFERENCE.match(value) and is_secret_name(match.group("name")):
                out.append(MASK)
                pos = match.end("value")
            else:
                pos = value_at  # past the name: the value itself may hold a name and value
        out.append(text[pos:])
        return "".join(out)


# Letters re.IGNORECASE matches to an ASCII letter that str.lower() does not turn into it (the unit tests search
# all of Unicode for them). A text holding one has no lowered form to check case-insensitive literals against.
FOLDS_TO_ASCII = "İıſ"


def lowered_for_prechecks(text: str) -> str | None:
    """text.lower(), to compare case-insensitive literals with; None when that comparison could miss a match."""
    if text.isascii() or not any(c in text for c in FOLDS_TO_ASCII):
        return text.lower()
    return None


class Prechecks:
    """Which shapes may match `text` (REQUIRES), decided with one substring test per literal."""

    __slots__ = ("_present", "_folding")

    def __init__(self, text: str) -> None:
        lowered = lowered_for_prechecks(text)
        self._folding = lowered is not None
        present = {(False, literal) for literal in _EXACT_LITERALS if literal in text}
        if lowered is not None:
            present |= {(True, literal) for literal in _FOLDED_LITERALS if literal in lowered}
        self._present = present

    def allows(self, name: str) -> bool:
        """False only when shape `name` cannot match: a literal every match contains is absent. A
        case-insensitive shape always may when the text holds one of FOLDS_TO_ASCII."""
        needs = _GROUPS.get(name)
        if needs is None:
            return True
        folded, groups = needs
        if folded and not self._folding:
            return True
        return not any(self._present.isdisjoint(group) for group in groups)


def _mask_group(group: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        whole, start = match.group(0), match.start(0)
        return whole[: match.start(group) - start] + MASK + whole[match.end(group) - start:]
    return replace


def _context_value(match: re.Match[str]) -> str:
    # A value after a secret word is masked when it looks like a credential: long, letters and digits mixed.
    value = match.group("value")
    if value == MASK or not (re.search(r"\d", value) and re.search(r"[A-Za-z]", value)):
        return match.group(0)
    return _mask_group("value")(match)


_B64 = r"[A-Za-z0-9+/=]"
_PEM_BEGIN = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
_PEM_END = r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
# Line breaks inside a key: real ones, or `\n` escaped in a JSON string.
_BREAK = r"(?:\\r|\\n|\s)"
_TOKEN_CHARS = r"[A-Za-z0-9_~.\-]"

SHAPES: tuple[SecretShape, ...] = (
    # Private keys (PEM, PGP): whole, or from BEGIN through the key lines when the END was cut off.
    SecretShape("private key block", re.compile(
        _PEM_BEGIN + r"(?:(?:(?!-----BEGIN ).){0,20000}?" + _PEM_END
        + r"|(?:" + _BREAK + r"+(?:" + _B64 + r"{4,}|[A-Za-z-]+: [^\n\\]*))*)", re.S),
        MASK),
    # Databricks personal access tokens (dapi + hex, optional -N suffix), OAuth secrets (dose...), dkea.
    SecretShape("databricks token", re.compile(r"\b(?:dapi|dose|dkea)[0-9a-f]{16,}(?:-\d+)?\b", re.I), MASK),
    SecretShape("OpenAI key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), MASK),
    SecretShape("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), MASK),
    SecretShape("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), MASK),
    SecretShape("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"), MASK),
    SecretShape("SendGrid key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"), MASK),
    # Incoming-webhook URLs are credentials in themselves: whoever has the path can post to the channel.
    SecretShape("chat webhook URL", re.compile(
        r"(?i)(https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/|[\w.\-]{1,100}\.webhook\.office\.com/"
        r"webhookb2/|discord(?:app)?\.com/api/webhooks/))[^\s\"'<>`]+"), r"\1" + MASK),
    # JWTs (Entra ID access tokens and the like): header.payload.signature, base64url.
    SecretShape("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Entra ID client secrets since 2021: three characters, a digit, "Q~", 31-34 more (Microsoft's SEC101/156).
    SecretShape("Entra client secret", re.compile(
        r"(?<!" + _TOKEN_CHARS + r")" + _TOKEN_CHARS + r"{3}\dQ~" + _TOKEN_CHARS + r"{31,34}(?!" + _TOKEN_CHARS + r")"),
        MASK),
    # Connection-string keys: the value runs to the next ';' (it may hold '=', '+', '/', '&').
    SecretShape("connection string key", re.compile(
        r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|AccessKey|Password|Pwd|SharedSecretValue)"
        r"=([^;\s'\"<>]+)"), r"\1=" + MASK),
    # user:password@ in URLs (JDBC mysql, https, smtp, git).
    SecretShape("URL user:password", re.compile(
        r"(?i)\b([a-z][a-z0-9+.:-]{0,30}://[^/\s:@;]{1,255}:)([^@\s/;]{1,256})@"),
                r"\1" + MASK + "@"),
    # A token as the URL's user part: https://<token>@github.com.
    SecretShape("URL token user", re.compile(r"(?i)\b(https?://)([A-Za-z0-9_\-]{30,})@"), r"\1" + MASK + "@"),
    # Oracle: jdbc:oracle:thin:user/password@host, sqlplus user/password@db, CONNECT user/password@db.
    SecretShape("Oracle user/password@", re.compile(
        r"(?i)(jdbc:oracle:[a-z0-9]{1,20}:|\bsqlplus\s{1,5}|\bconnect\s{1,5})([\w$#.\"-]{1,128})/([^@\s/]{1,256})@"),
        r"\1\2/" + MASK + "@"),
    # Function keys and SAS signatures in query strings.
    SecretShape("query-string secret", re.compile(
        r"(?i)([?&](?:code|sig|signature|api[-_]?key|key|token|access_token|password|pwd|client_secret)=)"
        r"[^&\s'\"<>#(),;]+"), r"\1" + MASK),
    # Quoted values after a secret name: "password": "x", 'api_key': 'x', "fs.azure...client.secret": "x"; also
# with escaped quotes (\"password\": \"x\"), as JSON quoted inside a JSON string shows them.
    SecretShape("quoted value of a secret name", re.compile(
        r"(?P<q1>(?:\\?[\"'])?)(?<![\w.\-])(?P<name>[A-Za-z_][\w.\-]{0,200})(?P=q1)\s*[:=]\s*(?P<q>\\?[\"'])"
        r"(?P<value>(?:(?!(?P=q)).)+)(?P=q)"), named=True),
    # Unquoted name=value, names of any style: password=, AZURE_OPENAI_API_KEY=, fs.azure...client.secret.x=.
    SecretShape("name=value", re.compile(
        r"(?<![\w.\-])(?P<name>[A-Za-z_][\w.\-]{0,200})\s?=\s?(?P<value>(?!\*\*\*)[^\s;&,'\"<>)}\]]+)"),
        named=True),
    # Spark / Hadoop conf written `key value` (cluster UI, spark-defaults.conf): fs.azure.account.key.x <v>.
    SecretShape("spark conf key value", re.compile(
        r"(?<![\w.\-])(?P<name>(?:spark\.hadoop\.)?(?:fs|dfs|spark|hadoop)\.[\w.\-]{1,200})"
        r"[ \t]+(?P<value>[^\s'\"]{8,})"),
        named=True),
    # Secret headers: "api-key: value".
    SecretShape("secret header", re.compile(
        r"(?i)\b(api-key|x-api-key|x-functions-key|ocp-apim-subscription-key|x-databricks-azure-sp-management-token)"
        r"(\s*:\s*)([^\s,;'\"]+)"), r"\1\2" + MASK),
    # A secret word, then `is/was/:` and a quoted value: password was "x", Secret: 'x' (AADSTS messages).
    SecretShape("quoted value after a secret word", re.compile(
        r"(?i)(?<![\w.\-])(?:password|passwd|secret|token|api key|key|credential)s?"
        r"(?:\s+(?:was|is|value)|\s*[:=])\s*(?P<q>\\?[\"'`])(?P<value>[^\"'`\s\\]{6,})(?P=q)"), _mask_group("value")),
    # A credential-looking value right after a secret word (a bare 32-hex API key, a token): context masking.
    SecretShape("value after a secret word", re.compile(
        r"(?i)(?<![\w.\-])(?:password|passwd|secret|token|key|credential|signature)s?(?:\s+(?:is|was|value))?"
        r"[\s:=]{1,3}(?P<value>[A-Za-z0-9+/_~\-]{16,}=*)"), _context_value),
    # Azure storage / Cosmos / ACS account keys seen on their own: 64 bytes, 88 base64 characters ending in ==.
    SecretShape("account key (88 base64)",
                re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"), MASK),
)

# What every match of a shape contains (each group: one of these literals), so that a text without it skips the
# shape's scan: most log lines and error texts hold none of them. (folded: the pattern ignores case, and the
# literals are compared with the lowered text.) tests/unit/test_redaction_prechecks.py holds each one to it.
REQUIRES: dict[str, tuple[bool, tuple[tuple[str, ...], ...]]] = {
    "private key block": (False, (("-----BEGIN ",),)),
    "databricks token": (True, (("dapi", "dose", "dkea"),)),
    "OpenAI key": (False, (("sk-",),)),
    "GitHub token": (False, (("gh", "github_pat_"),)),
    "Slack token": (False, (("xox",),)),
    "Google API key": (False, (("AIza",),)),
    "SendGrid key": (False, (("SG.",),)),
    "chat webhook URL": (True, (("https://",),)),
    "JWT": (False, (("eyJ",),)),
    "Entra client secret": (False, (("Q~",),)),
    "connection string key": (True, (("=",), ("key", "sharedaccess", "password", "pwd", "sharedsecretvalue"))),
    "URL user:password": (False, (("://",), ("@",))),
    "URL token user": (False, (("://",), ("@",))),
    "Oracle user/password@": (True, (("/",), ("@",), ("jdbc:oracle:", "sqlplus", "connect"))),
    "query-string secret": (False, (("=",), ("?", "&"))),
    "quoted value of a secret name": (False, ((":", "="), ('"', "'"))),
    "name=value": (False, (("=",),)),
    "spark conf key value": (False, (("fs.", "spark.", "hadoop."),)),
    "secret header": (True, ((":",), ("api-key", "x-functions-key", "ocp-apim-subscription-key",
                                       "x-databricks-azure-sp-management-token"))),
    "quoted value after a secret word": (True, (('"', "'", "`"), ("passw", "secret", "token", "key", "credential"))),
    "value after a secret word": (True, (("passw", "secret", "token", "key", "credential", "signature"),)),
    "account key (88 base64)": (False, (("==",),)),
    "authorization value": (True, (("bearer", "basic", "token", "sharedkey", "hmac-sha256"),)),
}

_GROUPS = {name: (folded, tuple(frozenset((folded, literal) for literal in group) for group in groups))
           for name, (folded, groups) in REQUIRES.items()}
_EXACT_LITERALS = frozenset(lit for folded, groups in REQUIRES.values() if not folded for g in groups for lit in g)
_FOLDED_LITERALS = frozenset(lit for folded, groups in REQUIRES.values() if folded for g in groups for lit in g)

# Authorization header values: "Bearer <token>", "Basic <base64 user:password>", "SharedKey acct:sig".
AUTH_VALUE = re.compile(r"(?i)\b(Bearer|Basic|Token|SharedKey|HMAC-SHA256)(\s+)([A-Za-z0-9._~+/=:-]+)")
