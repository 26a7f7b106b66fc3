"""The config against its JSON schema, as one line per problem a newcomer can act on.

Snakemake's own ``validate`` prints the whole schema and config after its message (hundreds of lines for
one typo). Here every problem is one line: the key path, the value, what is allowed, and for an unknown
key the closest valid one ("did you mean `lr`?"); a number YAML reads as text (``1e-4``) says how to write
it. No defaults are filled in: the config is the user's, as written. Imported when the Snakefile is parsed:
no torch.
"""

import difflib
import functools
import json
import re
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@functools.cache
def schema():
    import yaml

    return yaml.safe_load(SCHEMA.read_text())


def schema_problems(config):
    """Where ``config`` breaks the JSON schema, as 'key = value: what is allowed' lines (no defaults set)."""
    from jsonschema import Draft202012Validator

    problems = []
    for error in Draft202012Validator(schema()).iter_errors(config):
        path = list(error.absolute_path)
        if (
            error.validator in ("additionalProperties", "unevaluatedProperties")
            and error.schema.get(error.validator) is False
        ):
            allowed = _properties(error.schema)
            problems += [
                _unknown_key(path, key, error.instance[key], allowed)
                for key in error.instance
                if key not in allowed  # unevaluatedProperties also lists the keys of a failing sibling
            ]
        elif error.validator == "required":
            properties = _properties(error.schema)
            for key in error.validator_value:
                if key not in error.instance:
                    meaning = properties.get(key, {}).get("description")
                    problems.append(
                        f"{_key_path([*path, key])}: missing" + (f" ({meaning})" if meaning else "")
                    )
        else:
            problems.append(value_problem(_key_path(path), error))
    return list(dict.fromkeys(problems))


def _resolve(node):
    """``node`` with its local ``$ref`` (#/$defs/...) followed."""
    while isinstance(node, dict) and node.get("$ref", "").startswith("#/"):
        target = schema()
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
    return node


def _properties(node):
    """Property name → schema of an object schema, through ``allOf`` and ``$ref``, in schema order."""
    node = _resolve(node)
    properties = {}
    for part in node.get("allOf", []):
        properties.update(_properties(part))
    properties.update({name: _resolve(value) for name, value in node.get("properties", {}).items()})
    return properties


def _key_path(path):
    """``['training', 'betas', 1]`` → ``training.betas[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the config"


def _shown(value, width=60):
    """``value`` as YAML's flow style writes it (JSON: true, null, "text"), cut to ``width`` characters."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "string": "text",
    "array": "a list",
    "object": "a mapping of keys",
    "null": "null",
}


def _unknown_key(path, key, value, allowed):
    """One line for a key the schema does not know: where it belongs, or the closest allowed key."""
    homes = [
        section
        for section, node in schema()["properties"].items()
        if section != (path[0] if path else None) and key in _properties(node)
    ]
    guess = _closest(str(key), allowed)
    if homes:
        hint = f"; `{key}` belongs under {' or '.join(homes)}"
    elif guess:
        hint = f"; did you mean `{guess}`?"
    else:
        hint = ""
    listing = ", ".join(allowed)
    return f"{_key_path([*path, key])} = {_shown(value)}: unknown key{hint} (allowed here: {listing})"


def _closest(key, allowed):
    """The allowed key ``key`` most likely meant: a near spelling, its initials (learning_rate → lr, or
    wd → weight_decay), or the one key whose description holds its words; None when nothing fits."""
    spelled = difflib.get_close_matches(key, list(allowed), n=1)
    if spelled:
        return spelled[0]
    initials = {"".join(word[:1] for word in name.split("_")): name for name in allowed if "_" in name}
    if key in initials:
        return initials[key]
    short = "".join(word[:1] for word in key.split("_"))
    if "_" in key and short in allowed:
        return short
    words = key.replace("_", " ").lower()
    described = [name for name, node in allowed.items() if words in node.get("description", "").lower()]
    return described[0] if len(described) == 1 else None


def value_problem(where, error):
    """'key = value: what is allowed' for a schema error on one value."""
    rule, limit, value = error.validator, error.validator_value, error.instance
    bounds = {
        "minimum": "at least",
        "exclusiveMinimum": "above",
        "maximum": "at most",
        "exclusiveMaximum": "below",
    }
    if rule == "type":
        types = [limit] if isinstance(limit, str) else limit
        allowed = "must be " + " or ".join(TYPE_NAMES.get(name, name) for name in types)
        if isinstance(value, str) and "number" in types:
            allowed += _number_as_text_hint(value)
    elif rule == "enum":
        allowed = "must be one of " + ", ".join(map(str, limit))
    elif rule in bounds:
        allowed = f"must be {bounds[rule]} {limit}"
    elif rule == "pattern":
        allowed = f"must match the pattern {limit}"
    elif rule in ("minItems", "minLength", "minProperties"):
        one, many = {
            "minItems": ("item", "items"),
            "minLength": ("character", "characters"),
            "minProperties": ("entry", "entries"),
        }[rule]
        allowed = f"needs at least {limit} {one if limit == 1 else many}"
    elif rule == "maxItems":
        allowed = f"holds at most {limit} items"
    elif rule == "uniqueItems":
        allowed = "must not repeat an item"
    elif rule == "not" and error.schema.get("description"):
        allowed = f"not allowed: {error.schema['description']}"
    else:
        allowed = error.message
    return f"{where} = {_shown(value)}: {allowed}"


def _number_as_text_hint(value):
    """How to write a number YAML 1.1 read as text (``1e-4`` needs a point and a signed exponent)."""
    match = re.fullmatch(r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:[eE]([+-]?)([0-9]+))?\s*", value)
    if not match:
        return ""
    mantissa, sign, exponent = match.groups()
    if exponent is None:
        return f"; remove the quotes: write {mantissa}"
    mantissa += "" if "." in mantissa else ".0"
    return f"; YAML reads {value.strip()} as text: write {mantissa}e{sign or '+'}{exponent}"
