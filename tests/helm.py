"""A Go-template renderer with Helm's semantics, for testing the chart without a helm binary.

It implements the subset of text/template and Sprig the chart uses, with Helm's value semantics
(numbers are float64, so a bare 1000000 prints as 1e+06), and refuses anything else: a template
change either renders faithfully here or fails loudly. `helm lint` and `helm template` stay the
reference. Also the part of JSON Schema that values.schema.json uses.
"""

from __future__ import annotations

import base64
import json
import re
from collections import ChainMap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "ocpi-puller"
PARTNERS_PATH = "/etc/ocpi-puller/partners.yaml"
MODES = ["job", "indexed", "cronjob"]  # also the names of charts/ocpi-puller/ci/*-values.yaml

# --- A Go-template renderer: parsing ------------------------------------------------------------

ACTION = re.compile(r"\{\{(- )?(.*?)( -)?\}\}", re.S)
TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+)(?![\w.])|(?P<decl>:=)|(?P<assign>=)
    |(?P<pipe>\|)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<var>\$\w*(?:\.\w+)*)
    |(?P<field>(?:\.\w+)+|\.)|(?P<ident>[A-Za-z_]\w*))""",
    re.X,
)
LITERALS = {"true": True, "false": False, "nil": None}
NIL = object()  # "nothing piped in", unlike None, Go's nil


class RenderError(Exception):
    """What Helm reports as a template error (`fail` and `required` included)."""


@dataclass
class Pipe:
    commands: list[list[tuple[str, Any]]]
    declare: list[str] = field(default_factory=list)  # $x := ..., or $i, $x := ... in range
    assign: bool = False  # $x = ...


@dataclass
class Block:
    keyword: str  # if, range or with
    branches: list[tuple[Pipe | None, list[Any]]]  # None: the else branch


def parse_pipe(text: str) -> Pipe:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise RenderError(f"cannot parse {text[position:]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    pipe = Pipe([])
    kinds = [kind for kind, _ in tokens[:4]]
    if kinds[:2] in (["var", "decl"], ["var", "assign"]):
        pipe.declare, pipe.assign, tokens = [tokens[0][1]], kinds[1] == "assign", tokens[2:]
    elif kinds == ["var", "comma", "var", "decl"]:
        pipe.declare, tokens = [tokens[0][1], tokens[2][1]], tokens[4:]
    pipe.commands, end = parse_commands(tokens, 0)
    if end != len(tokens):
        raise RenderError(f"unexpected ) in {text!r}")
    return pipe


def parse_commands(tokens: list[tuple[str, str]], i: int) -> tuple[list[list[Any]], int]:
    """Commands separated by |, up to a closing ")" or the end: (commands, where it stopped)."""
    commands: list[list[Any]] = [[]]
    while i < len(tokens) and tokens[i][0] != "rp":
        kind, value = tokens[i]
        if kind == "pipe":
            commands.append([])
        elif kind == "lp":
            inner, i = parse_commands(tokens, i + 1)
            if i == len(tokens):
                raise RenderError("unclosed (")
            commands[-1].append(("sub", Pipe(inner)))
        elif kind in ("str", "num") or value in LITERALS:
            literal = json.loads(value) if kind != "ident" else LITERALS[value]
            commands[-1].append(("lit", literal))
        elif kind in ("ident", "field", "var"):
            commands[-1].append((kind, value))
        else:
            raise RenderError(f"unexpected {value!r}")
        i += 1
    if not all(commands):
        raise RenderError("empty command in a pipeline")
    return commands, i


def parse_template(source: str, defines: dict[str, list[Any]]) -> list[Any]:
    """The template's nodes (text, Pipe, Block); its `define`s go into `defines`."""
    pieces: list[list[Any]] = []
    position = 0
    for match in ACTION.finditer(source):
        pieces.append(["text", source[position : match.start()]])
        pieces.append(["action", match.group(2).strip(), match.group(1), match.group(3)])
        position = match.end()
    pieces.append(["text", source[position:]])
    for index, piece in enumerate(pieces):  # {{- and -}} trim all the whitespace beside them
        if piece[0] == "action" and piece[2]:
            pieces[index - 1][1] = pieces[index - 1][1].rstrip(" \t\r\n")
        if piece[0] == "action" and piece[3]:
            pieces[index + 1][1] = pieces[index + 1][1].lstrip(" \t\r\n")
    nodes, _, closing = parse_nodes(pieces, 0, defines)
    if closing is not None:
        raise RenderError(f"unexpected {closing}")
    return nodes


def parse_nodes(
    pieces: list[list[Any]], i: int, defines: dict[str, list[Any]]
) -> tuple[list[Any], int, str | None]:
    """Nodes up to an {{ else... }} or {{ end }}: (nodes, its index, its text)."""
    nodes: list[Any] = []
    while i < len(pieces):
        kind, body = pieces[i][0], pieces[i][1]
        word = body.split(" ", 1)[0] if kind == "action" else ""
        if kind == "text":
            nodes.append(body)
        elif body.startswith("/*") and body.endswith("*/"):
            pass
        elif word in ("end", "else"):
            return nodes, i, body
        elif word in ("if", "range", "with"):
            block = Block(word, [])
            condition: Pipe | None = parse_pipe(body[len(word) :])
            while True:
                inner, i, closing = parse_nodes(pieces, i + 1, defines)
                block.branches.append((condition, inner))
                if closing == "end":
                    break
                if closing == "else":
                    condition = None
                elif closing and closing.startswith("else if ") and word == "if":
                    condition = parse_pipe(closing[len("else if ") :])
                else:
                    raise RenderError(f"{word} closed by {closing!r}")
            nodes.append(block)
        elif word == "define":
            name = json.loads(body[len(word) :].strip())
            defines[name], i, closing = parse_nodes(pieces, i + 1, defines)
            if closing != "end":
                raise RenderError(f"define {name} is not closed")
        elif word in ("template", "block", "break", "continue"):
            raise RenderError(f"{word} is not supported by this renderer")
        else:
            nodes.append(parse_pipe(body))
        i += 1
    return nodes, i, None


# --- A Go-template renderer: values and functions -----------------------------------------------


def go_str(value: Any) -> str:
    """Go's %v of a template value; nil prints nothing in Helm."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):  # shortest digits; exponent form from 1e+06 and below 1e-04
        number = Decimal(repr(value)).normalize()
        digits, power = number.as_tuple().digits, number.adjusted()
        if value != 0 and (power < -4 or power >= 6):
            mantissa = f"{digits[0]}" + (f".{''.join(map(str, digits[1:]))}" if digits[1:] else "")
            return f"{'-' * (value < 0)}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
        return format(number, "f")
    if isinstance(value, int | str):
        return str(value)
    raise RenderError(f"printing a {type(value).__name__} is not supported")


def truth(value: Any) -> bool:
    return value not in (None, False, 0, "") and value != {} and value != []


def plain(value: Any) -> Any:
    """Helm's float64 numbers as JSON and YAML write them: integral ones as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, list) else value


def go_printf(template: str, *args: Any) -> str:
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        if match.group(1) == "%":
            return "%"
        value = next(values)
        if match.group(1) == "d" and (isinstance(value, bool) or not isinstance(value, int)):
            raise RenderError(f"%d of {value!r}")
        return json.dumps(go_str(value)) if match.group(1) == "q" else go_str(value)

    return re.sub(r"%([sdvq%])", one, template)


def go_eq(a: Any, *others: Any) -> bool:
    for b in others:
        if isinstance(a, int | float) and isinstance(b, int | float) and type(a) is not type(b):
            raise RenderError(f"incompatible types for comparison: {a!r} and {b!r}")
    return a in others


def fail(message: str) -> Any:
    raise RenderError(message)


def indent(width: int, text: str) -> str:
    return " " * width + text.replace("\n", "\n" + " " * width)


KINDS = {bool: "bool", str: "string", int: "int", float: "float64", dict: "map", list: "slice"}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "b64enc": lambda s: base64.b64encode(s.encode()).decode(),
    "contains": lambda part, text: part in text,
    "default": lambda fallback, given=None: given if truth(given) else fallback,
    "eq": go_eq,
    "fail": fail,
    "hasKey": lambda mapping, key: key in mapping,
    "indent": indent,
    "int": lambda v: int(v) if isinstance(v, float | int) else fail(f"int of {v!r}"),
    "kindIs": lambda kind, value: KINDS.get(type(value), "invalid") == kind,
    "ne": lambda a, b: not go_eq(a, b),
    "nindent": lambda width, text: "\n" + indent(width, text),
    "not": lambda value: not truth(value),
    "printf": go_printf,
    "quote": lambda *vs: " ".join(json.dumps(go_str(v)) for v in vs if v is not None),
    "replace": lambda old, new, text: text.replace(old, new),
    "required": lambda message, v: fail(message) if v is None or v == "" else v,
    "toJson": lambda v: json.dumps(plain(v), separators=(",", ":"), sort_keys=True),
    "toYaml": lambda v: yaml.safe_dump(plain(v), width=1 << 16).removesuffix("...\n").rstrip(),
    "trimSuffix": lambda suffix, text: text.removesuffix(suffix),
    "trunc": lambda n, text: text[:n] if n >= 0 else text[n:],
    "upper": str.upper,
}


# --- A Go-template renderer: execution ----------------------------------------------------------


class Renderer:
    """Executes parsed templates, Go's way, against Helm's top-level object."""

    def __init__(self, defines: dict[str, list[Any]]) -> None:
        self.defines = defines

    def execute(self, nodes: list[Any], dot: Any) -> str:
        return self.run(nodes, dot, ChainMap({"$": dot}))

    def run(self, nodes: list[Any], dot: Any, scope: ChainMap[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Block):
                out.append(self.block(node, dot, scope.new_child()))
            else:
                value = self.pipe(node, dot, scope)
                out.append("" if node.declare else go_str(value))  # a declaration prints nothing
        return "".join(out)

    def block(self, block: Block, dot: Any, scope: ChainMap[str, Any]) -> str:
        if block.keyword == "range":
            (over, body), *otherwise = block.branches
            assert over is not None
            items = self.pipe(Pipe(over.commands), dot, scope)
            if not truth(items):
                return self.run(otherwise[0][1], dot, scope) if otherwise else ""
            pairs = sorted(items.items()) if isinstance(items, dict) else enumerate(items)
            out = []
            for key, item in pairs:
                inner = scope.new_child()
                if over.declare:  # range $item := ..., or range $key, $item := ...
                    inner.update(zip(over.declare, [key, item][-len(over.declare) :], strict=True))
                out.append(self.run(body, item, inner))
            return "".join(out)
        for condition, body in block.branches:
            if condition is None:
                return self.run(body, dot, scope)
            value = self.pipe(condition, dot, scope)
            if truth(value):
                return self.run(body, value if block.keyword == "with" else dot, scope)
        return ""

    def pipe(self, pipe: Pipe, dot: Any, scope: ChainMap[str, Any]) -> Any:
        value: Any = NIL
        for command in pipe.commands:
            value = self.command(command, dot, scope, value)
        if pipe.assign:
            holder = next((m for m in scope.maps if pipe.declare[0] in m), None)
            if holder is None:
                raise RenderError(f"undefined variable {pipe.declare[0]}")
            holder[pipe.declare[0]] = value
        elif pipe.declare:
            scope[pipe.declare[0]] = value
        return value

    def command(
        self, command: list[tuple[str, Any]], dot: Any, scope: ChainMap[str, Any], piped: Any
    ) -> Any:
        (kind, head), arguments = command[0], command[1:]
        if kind != "ident":
            if arguments or piped is not NIL:
                raise RenderError(f"{head} is not a function")
            return self.operand(command[0], dot, scope)
        if head in ("and", "or"):  # lazy, and they return an operand, as in Go
            value = None
            for argument in arguments:
                value = self.operand(argument, dot, scope)
                if truth(value) == (head == "or"):
                    return value
            return value if piped is NIL else piped
        values = [self.operand(argument, dot, scope) for argument in arguments]
        values += [] if piped is NIL else [piped]
        if head == "include":
            name, context = values
            return self.execute(self.defines[name], context)
        if head not in FUNCTIONS:
            raise RenderError(f"function {head!r} is not supported by this renderer")
        return FUNCTIONS[head](*values)

    def operand(self, operand: tuple[str, Any], dot: Any, scope: ChainMap[str, Any]) -> Any:
        kind, value = operand
        if kind == "lit":
            return value
        if kind == "sub":
            return self.pipe(value, dot, scope)
        if kind == "ident":
            return self.command([operand], dot, scope, NIL)
        if kind == "var":
            name, *names = value.split(".")
            if name not in scope:
                raise RenderError(f"undefined variable {name}")
            value, dot = ".".join(names), scope[name]
        for name in filter(None, value.split(".")):
            if not isinstance(dot, dict):
                raise RenderError(f"nil pointer evaluating {operand[1]}")
            dot = dot.get(name)
        return dot


# --- Helm's part: values, the top-level object, which files are manifests ----------------------


def as_helm_numbers(value: Any) -> Any:
    """Values pass through JSON in Helm: every number becomes a float64."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        return {k: as_helm_numbers(v) for k, v in value.items()}
    return [as_helm_numbers(v) for v in value] if isinstance(value, list) else value


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge, anything else replaces, null deletes."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def chart_values(*overrides: dict[str, Any] | str) -> dict[str, Any]:
    """values.yaml with ci/<name>-values.yaml files or dicts over it, in order."""
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    for override in overrides:
        if isinstance(override, str):
            override = yaml.safe_load((CHART / "ci" / f"{override}-values.yaml").read_text())
        values = merge(values, override)
    return values


@dataclass
class Rendered:
    """`helm template` output: manifests per template file, and NOTES.txt."""

    values: dict[str, Any]
    files: dict[str, str]
    notes: str

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return [d for text in self.files.values() for d in yaml.safe_load_all(text) if d]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = [m for m in self.manifests if m["kind"] == kind]
        return found

    @property
    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self.manifests)

    @property
    def job_spec(self) -> dict[str, Any]:
        if "CronJob" in self.kinds:
            return dict(self.one("CronJob")["spec"]["jobTemplate"]["spec"])
        return dict(self.one("Job")["spec"])

    @property
    def job_name(self) -> str:
        if "CronJob" in self.kinds:  # as the CronJob controller names a run
            return f"{self.one('CronJob')['metadata']['name']}-29400000"
        return str(self.one("Job")["metadata"]["name"])

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.job_spec["template"]["spec"]["containers"]
        return dict(container)


def render(values: dict[str, Any], release: str = "ocpi", revision: int = 1) -> Rendered:
    """`helm template <release> charts/ocpi-puller --namespace roaming`, values given in full."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    top = {
        "Values": as_helm_numbers(values),
        "Release": {
            "Name": release,
            "Namespace": "roaming",
            "Revision": revision,
            "Service": "Helm",
        },
        "Chart": {
            key[0].upper() + key[1:]: chart[key] for key in ("name", "version", "appVersion")
        },
    }
    defines: dict[str, list[Any]] = {}
    parsed = {
        path.name: parse_template(path.read_text(), defines)
        for path in sorted((CHART / "templates").iterdir())
    }
    renderer = Renderer(defines)
    files = {name: renderer.execute(nodes, top) for name, nodes in parsed.items()}
    manifests = {
        name: text
        for name, text in files.items()
        if not name.startswith("_") and name != "NOTES.txt" and text.strip()
    }
    return Rendered(values, manifests, files["NOTES.txt"])


# --- values.schema.json, checked with the part of JSON Schema it uses ---------------------------

SCHEMA_KEYWORDS = {
    "$schema", "title", "description", "type", "properties", "required", "additionalProperties",
    "items", "enum", "minimum", "maximum", "exclusiveMinimum", "minItems", "minLength", "pattern",
}  # fmt: skip
JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v == int(v),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    """What is wrong with `value` (nothing: it is valid)."""
    assert set(schema) <= SCHEMA_KEYWORDS, f"{path}: unknown to this checker: {set(schema)}"
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if types and not any(JSON_TYPES[t](value) for t in types):
        yield f"{path}: {value!r} is not {types}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} not in {schema['enum']}"
    if JSON_TYPES["number"](value):
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            yield f"{path}: {value} out of range"
        if value <= schema.get("exclusiveMinimum", value - 1):
            yield f"{path}: {value} too small"
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        yield f"{path}: too short"
    if isinstance(value, str) and not re.search(schema.get("pattern", ""), value):
        yield f"{path}: {value!r} does not match {schema['pattern']}"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            yield f"{path}: fewer than {schema['minItems']} items"
        for index, item in enumerate(value):
            yield from schema_errors(schema.get("items", {}), item, f"{path}[{index}]")
    if isinstance(value, dict):
        yield from (
            f"{path}: {n} is required" for n in schema.get("required", []) if n not in value
        )
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in schema.get("properties", {}):
                yield from schema_errors(schema["properties"][key], item, f"{path}.{key}")
            elif extra is False:
                yield f"{path}: unknown key {key!r}"
            elif isinstance(extra, dict):
                yield from schema_errors(extra, item, f"{path}.{key}")


def values_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema
