#!/usr/bin/env python3
"""Docs link only inside the repository.

Checks README.md and docs/*.md (or the files given as arguments): every link (inline
`[text](target)`, reference definitions `[name]: target`, autolinks `<scheme://…>` and bare URLs
in prose, which GitHub turns into links) must be a relative path to a file or folder that exists
in the repository, and an `#anchor` must name a heading of the target file. A link to an outside
URL is refused: the docs must be readable from a checkout alone. URLs inside code (fenced blocks
and `inline code`) are examples, not links, and are left alone.

Exits 1 with one line per problem (file:line: what), 0 when every link resolves.
Standard library only.
"""

import os
import re
import sys
import unicodedata

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)
# [text](target "title") and ![alt](target); the target may be <…>.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*)>")
BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>()]+|\bwww\.[A-Za-z0-9-]+\.[^\s<>()]+")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def slug(heading):
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_" or cat[0] in "LN" or cat == "Mn":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def _blank_code(block):
    """Blanks `inline code` in a paragraph (a code span may run over lines), keeping newlines."""
    text = "\n".join(line for _, line in block)
    text = INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return list(zip((n for n, _ in block), text.split("\n")))


def prose_lines(path):
    """(line number, text) of the lines outside fenced code, inline code blanked out."""
    fence, block = None, []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = FENCE.match(line)
            if fence is None and m:
                yield from _blank_code(block)
                block = []
                fence = m.group(1)[0] * len(m.group(1))
                continue
            if fence is not None:
                if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                    fence = None
                continue
            if not line.strip():
                yield from _blank_code(block)
                block = []
                continue
            block.append((number, line))
    yield from _blank_code(block)


def explicit_anchors(path):
    """Anchors set by hand: <a name="x"> or <a id="x">."""
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", f.read()))


def heading_anchors(path):
    """Anchors from the raw headings (inline code kept, as GitHub renders its text)."""
    found, seen, fence = set(), {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = FENCE.match(line)
            if fence is None and m:
                fence = m.group(1)[0] * len(m.group(1))
                continue
            if fence is not None:
                if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                    fence = None
                continue
            h = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
            if h:
                base = slug(h.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
    return found | explicit_anchors(path)


def check_target(source, number, target, problems):
    where = f"{os.path.relpath(source, ROOT)}:{number}"
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    if not target:
        problems.append(f"{where}: empty link")
        return
    if SCHEME.match(target) or target.startswith("//"):
        problems.append(f"{where}: links outside the repository ({target}); docs link only to files in it")
        return
    path_part, _, anchor = target.partition("#")
    path_part = path_part.split("?", 1)[0]
    if path_part.startswith("/"):
        resolved = os.path.join(ROOT, path_part.lstrip("/"))
    elif path_part:
        resolved = os.path.normpath(os.path.join(os.path.dirname(source), path_part))
    else:
        resolved = source
    if not os.path.exists(resolved):
        problems.append(f"{where}: {target}: no such file ({os.path.relpath(resolved, ROOT)})")
        return
    if os.path.relpath(resolved, ROOT).startswith(".."):
        problems.append(f"{where}: {target}: points outside the repository")
        return
    if anchor and resolved.endswith(".md"):
        if anchor not in heading_anchors(resolved):
            problems.append(
                f"{where}: {target}: no heading with the anchor #{anchor} in {os.path.relpath(resolved, ROOT)}"
            )


def check_file(path, problems):
    for number, line in prose_lines(path):
        spans = []
        for m in INLINE_LINK.finditer(line):
            check_target(path, number, m.group(1), problems)
            spans.append(m.span())
        m = REF_DEF.match(line)
        if m:
            check_target(path, number, m.group(1), problems)
            spans.append(m.span())
        for m in AUTOLINK.finditer(line):
            check_target(path, number, m.group(1), problems)
            spans.append(m.span())
        rest = line
        for start, end in spans:
            rest = rest[:start] + " " * (end - start) + rest[end:]
        for m in BARE_URL.finditer(rest):
            problems.append(
                f"{os.path.relpath(path, ROOT)}:{number}: a bare URL ({m.group(0)}) becomes a link outside the repository; "
                "put an example in `code`, or link a file of the repository"
            )


def main(argv):
    if argv:
        files = [os.path.abspath(a) for a in argv]
    else:
        docs = os.path.join(ROOT, "docs")
        files = [os.path.join(ROOT, "README.md")] + sorted(
            os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md")
        )
    problems = []
    for f in files:
        check_file(f, problems)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-doc-links: {len(problems)} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"check-doc-links: every link in {len(files)} file(s) resolves inside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
