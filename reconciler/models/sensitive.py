"""Which declared values are secrets that no output may show, decided once for every output.

The diff (engine/diff.py) compares real values, so a changed secret is still detected and
applied; but what it hands on, a `Change`, carries `(sensitive value)` in place of every secret,
so no renderer (text, JSON, YAML, the pull-request markdown, `get`, operator events) can print
one. A value is a secret when:

- it is stored under a name the user chose (an environment entry's `name`, a `parameters` or
  log driver `options` key; fields marked `secret_by_name`) and that name looks like a secret's
  (`looks_secret`), or the value is a URL with a password in it;
- or its item says so with the local flag `sensitive: true` (`sensitive: false` says a name
  that looks secret is not: the value is shown and not warned about);
- or, inside fields the models leave untyped (a multinode job's `nodeProperties`), it is the
  `value` of a `{name, value}` entry whose name looks secret: the same rule, found by shape.

`secrets` and `secretOptions` entries are not hidden: their `valueFrom` is a reference (an ARN
or a parameter name), not the secret, and a reviewer must see which secret a job reads. That is
what Terraform does too: sensitivity follows the data (the provider marks password and key
attributes, not references to them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reconciler.models.fields import _nested_models, markers_of

SENSITIVE = "(sensitive value)"
Path = tuple[str | int, ...]

# Anywhere in the name: these are secrets whatever surrounds them (DBPASSWORD, GH_TOKEN).
_ALWAYS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "APIKEY")
# Whole words only: KEY, not KEYCLOAK or MONKEY; PWD, not the working directory's PWD alone.
_WORDS = {"KEY", "KEYS", "PWD", "PRIVATEKEY", "ACCESSKEY"}
# A last word naming what points at or describes a secret rather than the secret itself:
# DB_PASSWORD_FILE is a path, KMS_KEY_ID and SECRET_ARN are references, TOKEN_TTL a duration.
_NOT_THE_VALUE = {
    "ID", "IDS", "ARN", "NAME", "PATH", "FILE", "DIR", "URL", "URI", "ENDPOINT", "HOST",
    "PREFIX", "SUFFIX", "TYPE", "ALGORITHM", "LENGTH", "SIZE", "TTL", "EXPIRY", "TIMEOUT",
    "VERSION", "REGION", "ENABLED", "HEADER", "FIELD",
}  # fmt: skip
# KEY after these is a data key (a partition key's name, an S3 object key), not a credential.
_DATA_KEYS = {
    "PARTITION", "SORT", "HASH", "RANGE", "PRIMARY", "FOREIGN", "CACHE", "OBJECT", "ROUTING",
    "S3", "SHARD", "LOOKUP", "DEDUP", "IDEMPOTENCY", "GROUP",
}  # fmt: skip
_WORD = re.compile(r"[A-Z][A-Z0-9]*(?![a-z])|[A-Z]?[a-z][a-z0-9]*|\d+")
# Where a secret found by shape, in untyped fields, belongs.
_INSTEAD = (
    "a secrets entry whose valueFrom is a Secrets Manager secret or an SSM Parameter Store "
    "parameter"
)
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")


def _words(name: str) -> list[str]:
    """Words of a name written as SNAKE_CASE, kebab-case, dotted.names or camelCase."""
    return [w.upper() for part in re.split(r"[^A-Za-z0-9]+", name) for w in _WORD.findall(part)]


def looks_secret(name: str, value: Any = None) -> bool:
    """Whether a value stored under `name` should be treated as a secret.

    Errs toward hiding: a false positive costs a hidden value in a plan and a warning (both
    undone by `sensitive: false`), a false negative leaks a secret into CI logs and PR comments.
    """
    if isinstance(value, str) and _URL_PASSWORD.match(value):
        return True
    words = _words(name)
    if not words or words[-1] in _NOT_THE_VALUE or name.upper() in ("PWD", "OLDPWD"):
        return False
    if any(marker in "".join(words) for marker in _ALWAYS):
        return True
    return any(
        w in _WORDS and not (w in ("KEY", "KEYS") and i > 0 and words[i - 1] in _DATA_KEYS)
        for i, w in enumerate(words)
    )


def _flaggable(item: BaseModel) -> bool:
    return any(markers_of(i.metadata).sensitivity for i in type(item).model_fields.values())


def _flag(item: BaseModel) -> bool | None:
    """An item's own `sensitive` flag (the field marked SENSITIVITY), if it has one and set it."""
    for name, info in type(item).model_fields.items():
        if markers_of(info.metadata).sensitivity:
            value = getattr(item, name)
            return None if value is None else bool(value)
    return None


def _is_secret(name: Any, value: Any, flag: bool | None) -> bool:
    return flag if flag is not None else looks_secret(str(name), value)


# -- on the canonical form the diff compares -------------------------------------------------


def sensitivity_flags(spec: BaseModel, prefix: Path = ()) -> dict[Path, bool]:
    """The `sensitive` flags a declared spec sets, by the path of their item in the canonical
    form the diff compares (an item of a keyed list under its key, of a plain list its index).
    They are local fields, gone from the data the diff sees, so the diff is given them."""
    out: dict[Path, bool] = {}
    for name, info in type(spec).model_fields.items():
        value = getattr(spec, name)
        marks = markers_of(info.metadata)
        if marks.sensitivity and value is not None:
            out[prefix] = bool(value)
        if isinstance(value, BaseModel):
            out |= sensitivity_flags(value, (*prefix, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    key = str(getattr(item, marks.set_key)) if marks.set_key else i
                    out |= sensitivity_flags(item, (*prefix, name, key))
    return out


def secret_paths(
    data: Any, model: type[BaseModel], flags: Mapping[Path, bool], prefix: Path = ()
) -> set[Path]:
    """Paths of the secret values in `data`, the canonical form of `model` (keyed lists as
    mappings by key): what the diff must never hand on."""
    found: set[Path] = set()
    if not isinstance(data, dict):
        return found
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            continue
        path = (*prefix, key)
        marks = markers_of(info.metadata)
        nested = _nested_models(info.annotation)
        sub = nested[-1] if nested else None
        # A marked field is a leaf, even where it may also hold a reference to another
        # resource ({bucket: NAME}): what is compared is the resolved text.
        if marks.secret_by_name and (sub is None or isinstance(value, str)):
            if isinstance(value, dict):  # a map: each value under its own name
                found |= {(*path, k) for k, v in value.items() if looks_secret(str(k), v)}
            elif _is_secret(data.get("name"), value, flags.get(prefix)):  # an item's value
                found.add(path)
        elif sub is not None and marks.set_key and isinstance(value, dict):
            for k, item in value.items():
                found |= secret_paths(item, sub, flags, (*path, k))
        elif sub is not None and isinstance(value, list):
            for i, item in enumerate(value):
                found |= secret_paths(item, sub, flags, (*path, i))
        elif sub is not None:
            found |= secret_paths(value, sub, flags, path)
        else:
            found |= _by_shape(value, path)
    return found


def _by_shape(data: Any, path: Path) -> set[Path]:
    """In data the models leave untyped: the `value` of every `{name, value}` entry whose name
    looks secret (a multinode job's environment inside `nodeProperties`)."""
    found: set[Path] = set()
    if isinstance(data, dict):
        name = data.get("name")
        if isinstance(name, str) and "value" in data and looks_secret(name, data["value"]):
            found.add((*path, "value"))
        for key, value in data.items():
            found |= _by_shape(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found |= _by_shape(value, (*path, i))
    return found


def hidden(path: Path, secret: set[Path]) -> bool:
    """Whether the value at `path` is a secret or lies inside one."""
    return any(path[:i] in secret for i in range(1, len(path) + 1))


def mask(value: Any, path: Path, secret: set[Path]) -> Any:
    """`value` (found at `path`) with every secret inside it replaced by SENSITIVE."""
    if value is None:
        return None
    if path in secret:
        return SENSITIVE
    if not any(p[: len(path)] == path for p in secret):
        return value
    if isinstance(value, dict):
        return {k: mask(v, (*path, k), secret) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, (*path, i), secret) for i, v in enumerate(value)]
    return value


# -- on a declared resource, for the warning -------------------------------------------------


@dataclass(frozen=True)
class PlainSecret:
    """A value that looks secret, written in clear in a manifest (and so stored in AWS so)."""

    loc: Path  # where in the spec, list indices as declared
    name: str
    instead: str  # where such a value belongs
    flaggable: bool = False  # the item has a `sensitive` flag to say it is no secret

    @property
    def message(self) -> str:
        text = (
            f"{self.name} looks like a secret written in clear (AWS and the manifest's history "
            f"keep it readable): use {self.instead}"
        )
        return text + ("; or set sensitive: false if it is no secret" if self.flaggable else "")


def plain_secrets(spec: BaseModel, loc: Path = ()) -> list[PlainSecret]:
    """Every value of a declared spec that looks secret and no `sensitive` flag decided on:
    each once, where it is declared."""
    out: list[PlainSecret] = []
    for name, info in type(spec).model_fields.items():
        value = getattr(spec, name)
        if value is None:
            continue
        marks = markers_of(info.metadata)
        if marks.secret_by_name:
            if isinstance(value, dict):
                out += [
                    PlainSecret((*loc, name, k), str(k), marks.secret_by_name)
                    for k, v in value.items()
                    if looks_secret(str(k), v)
                ]
            elif (
                isinstance(value, str)
                and _flag(spec) is None
                and looks_secret(str(getattr(spec, "name", "")), value)
            ):
                item = str(getattr(spec, "name", ""))
                out.append(PlainSecret(loc, item, marks.secret_by_name, _flaggable(spec)))
        if isinstance(value, BaseModel):
            out += plain_secrets(value, (*loc, name))
        elif isinstance(value, list) and any(isinstance(v, BaseModel) for v in value):
            for i, item in enumerate(value):
                out += plain_secrets(item, (*loc, name, i))
        elif not marks.secret_by_name and not _nested_models(info.annotation):
            for path in sorted(_by_shape(value, (name,)), key=str):
                entry = _at(value, path[1:-1])
                out.append(PlainSecret((*loc, *path[:-1]), str(entry["name"]), _INSTEAD))
    return out


def _at(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data
