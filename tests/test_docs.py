"""The docs stay true to the repository: relative links resolve, every output of every rule is listed in
docs/output.md, the make targets they name exist, and the README stays short enough for a newcomer."""

import ast
import re
import textwrap
import urllib.parse

import pytest

from helpers import REPO

README_MAX_LINES = 130
DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
OUTPUT_DOC = REPO / "docs" / "output.md"
RULE_FILES = [REPO / "workflow" / "rules" / "common.smk"] + sorted(
    path for path in (REPO / "workflow" / "rules").glob("*.smk") if path.name != "common.smk"
)

FENCED_BLOCK = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
VARIES = "\ue000"  # a part of an output path that Snakemake or the config fills in (a private-use character)


def doc_id(path):
    return str(path.relative_to(REPO))


# ---- links ----------------------------------------------------------------------------------------------


def links(text):
    """The targets of a Markdown text's links, code blocks and code spans left out."""
    prose = INLINE_CODE.sub("", FENCED_BLOCK.sub("", text))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def anchors(path):
    """The heading anchors GitHub makes for a Markdown file (lower case, punctuation dropped, - for spaces)."""
    found, seen = set(), {}
    for heading in HEADING.findall(FENCED_BLOCK.sub("", path.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_relative_links_resolve(doc):
    dead = []
    for target in links(doc.read_text()):
        if not target or re.match(r"(https?|mailto):", target):
            continue
        path, _, anchor = urllib.parse.unquote(target).partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            dead.append(f"{target} (no file {file})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target} (no heading #{anchor} in {file.name})")
    assert not dead, f"{doc_id(doc)} links to what does not exist: {dead}"


def test_the_docs_a_newcomer_is_sent_to_exist():
    for name in ("usage.md", "output.md", "cluster.md", "development.md"):
        assert (REPO / "docs" / name).is_file(), f"docs/{name} is missing"


# ---- every rule output is documented -------------------------------------------------------------------


class Configured(str):
    """Stands in for `config` and every value read from it: a path part the config fills in."""

    def __new__(cls):
        return super().__new__(cls, VARIES)

    def __getitem__(self, key):
        return Configured()

    def get(self, key, default=None):
        return Configured()


def keep_path(path, *args, **kwargs):
    """report(), directory(), temp() and the like: the path they wrap."""
    return path


def top_level_statements(text):
    """The plain-Python top-level statements of a Snakemake file (imports, assignments, defs); the rest of
    the Snakemake syntax does not parse as Python and is skipped."""
    chunks, current = [], []
    for line in text.splitlines():
        if line[:1].strip() and line[0] not in ")]}" and current:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    chunks.append("\n".join(current))
    for chunk in chunks:
        try:
            yield from ast.parse(chunk).body
        except SyntaxError:
            continue


def rules_namespace():
    """The rule files' paths, helpers and imported names, with `config` replaced by `Configured`, so that
    an output expression evaluates to its path with the configured and wildcard parts marked."""
    namespace = {"config": Configured()}
    namespace.update(
        dict.fromkeys(["report", "directory", "temp", "protected", "ancient", "touch"], keep_path)
    )
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign)
    for path in RULE_FILES:
        for statement in top_level_statements(path.read_text()):
            if isinstance(statement, kinds):
                try:  # what needs the real config or Snakemake (the model list, validation) is not needed
                    exec(compile(ast.Module([statement], []), str(path), "exec"), namespace)
                except Exception:
                    continue
    return namespace


def output_sections():
    """(rule, the text of its output: section) for every rule and `use rule … as … with:` block."""
    sections = []
    for path in RULE_FILES:
        blocks = re.split(r"^\s*(?:rule (\w+)|use rule \w+ as (\w+) with):", path.read_text(), flags=re.M)
        for index in range(1, len(blocks), 3):
            rule, body = blocks[index] or blocks[index + 1], blocks[index + 2]
            match = re.search(r"^( *)output:(.*)\n((?:\1 +\S.*\n|\s*\n)*)", body, flags=re.M)
            if match:
                sections.append((rule, match.group(2) + "\n" + textwrap.dedent(match.group(3))))
    return sections


def evaluated(expression, namespace):
    """The paths an output expression names: one for a path, several for a ``**dict``; [] if unknown."""
    try:
        value = eval(compile(ast.Expression(expression), "<output>", "eval"), namespace)
    except Exception:
        return []
    values = value.values() if isinstance(value, dict) else [value]
    return [value for value in values if isinstance(value, str)]


def pattern(path):
    """A path relative to its configured folder, wildcards and configured parts marked VARIES; or None when
    nothing of it is fixed by the rule (a path taken whole from the config)."""
    path = re.sub(r"\{[^{}]*\}", VARIES, path)
    path = re.sub(f"{VARIES}+", VARIES, path).removeprefix(f"{VARIES}/")
    return path if re.search(r"[A-Za-z0-9]", path) else None


def rule_outputs():
    """(rule, output pattern or None) for every output of every rule."""
    namespace, outputs = rules_namespace(), []
    for rule, section in output_sections():
        call = ast.parse(f"_(\n{section}\n)", mode="eval").body
        for expression in [*call.args, *(keyword.value for keyword in call.keywords)]:
            paths = evaluated(expression, namespace)
            outputs += [(rule, pattern(path)) for path in paths] or [(rule, None)]
    return outputs


def expand_braces(text):
    """Shell-style alternatives in a path, `a/{b,c}.csv` → `a/b.csv`, `a/c.csv` (placeholders like
    `{model}`, without a comma, are kept)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", text)
    if not match:
        return [text]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in expand_braces(text[: match.start()] + choice + text[match.end() :])
    ]


def documented_paths(text):
    """The text of a doc with every code span's alternatives written out."""
    spans = re.findall(r"`([^`\n]+)`", text)
    return "\n".join([text, *(path for span in spans for path in expand_braces(span))])


def is_documented(path, documented):
    """Whether ``path`` appears in ``documented``, its varying parts matching any name (`<model>`,
    `<N>`, `{sweep}`, a real file name) or none (seed 0's empty suffix)."""
    varying = r"[^\s/`|]*"
    body = varying.join(re.escape(part) for part in path.split(VARIES))
    return re.search(rf"(?<![\w-]){body}(?![\w-])", documented) is not None


RULE_OUTPUTS = rule_outputs()


def test_the_rule_files_are_read():
    """Guards the parsing below: many rules found, and nearly every output resolved to a path."""
    rules = {rule for rule, _ in RULE_OUTPUTS}
    assert {"train_cnn", "evaluate", "make_table", "prepare_dataset", "train_sweep_point"} <= rules
    assert sum(path is not None for _, path in RULE_OUTPUTS) > 40


@pytest.mark.parametrize(("rule", "path"), RULE_OUTPUTS, ids=lambda value: str(value).replace(VARIES, "*"))
def test_every_rule_output_is_in_docs_output_md(rule, path):
    text = OUTPUT_DOC.read_text()
    if path is None:  # a path taken whole from the config: the rule must be named where it is described
        assert f"`{rule}`" in text, f"docs/output.md says nothing about what rule {rule} writes"
    else:
        shown = path.replace(VARIES, "<…>")
        assert is_documented(path, documented_paths(text)), f"docs/output.md lacks {shown} (rule {rule})"


# ---- commands and length -------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_docs_name_only_real_make_targets(doc):
    text = doc.read_text()
    code = [block.group(0) for block in FENCED_BLOCK.finditer(text)] + INLINE_CODE.findall(text)
    makefile = (REPO / "Makefile").read_text()
    for target in set(re.findall(r"\bmake ([a-z][a-z-]*)", "\n".join(code))):
        assert re.search(rf"^{target}:", makefile, flags=re.M), (
            f"{doc_id(doc)} names make {target}; no such target"
        )


def test_readme_is_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md is {lines} lines; move details to docs/ (at most {README_MAX_LINES})"
    )
