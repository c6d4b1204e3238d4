#!/usr/bin/env python3
"""Checks the dependency rule of docs/architecture.md on every #include line of the sources.

    scripts/check_layering.py [REPO]     exit 0 when the rule holds, 1 with one line per violation

The rule: tools -> compress -> converters -> runtime; inside compress, analysis -> passes -> algo -> pipeline;
no pass includes another pass; LibTorch headers only in the translation units named below.
Runs under ctest (label "layout").
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

# Which rooms each room may include (the first matching prefix of the file's path decides).
ALLOWED = [
    ("runtime/", ("runtime/",)),
    ("converters/", ("runtime/", "converters/")),
    ("compress/pipeline/", ("runtime/", "converters/", "compress/pipeline/")),
    ("compress/algo/", ("runtime/", "converters/", "compress/pipeline/", "compress/algo/")),
    ("compress/passes/", ("runtime/", "converters/", "compress/")),
    ("compress/analysis/", ("runtime/", "converters/", "compress/")),
    ("tools/", ("runtime/", "converters/", "compress/", "tools/")),
]
# LibTorch is compiled only here (and in tests/*/test_torch_*.cpp).
TORCH_FILES = re.compile(r"^(converters/pth_file\.cpp|compress/algo/[a-z_]*_torch\.cpp|compress/algo/torch_parts\.cpp)$")
TORCH_HEADER = re.compile(r"^(torch/|ATen/|c10/|caffe2/)")
PASS_HEADER = re.compile(r"^compress/passes/([a-z_]+)_pass\.h$")


def violations():
    for path in sorted(ROOT.glob("**/*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.suffix not in (".h", ".cpp") or rel.startswith(("build", ".git", "tests/")):
            continue
        rule = next((allowed for prefix, allowed in ALLOWED if rel.startswith(prefix)), None)
        if rule is None:
            continue
        own_pass = PASS_HEADER.match(rel.replace(".cpp", ".h"))
        for kind, target in INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace")):
            if kind == "<":
                if TORCH_HEADER.match(target) and not TORCH_FILES.match(rel):
                    yield f"{rel}: includes LibTorch <{target}> outside the LibTorch translation units"
                continue
            if not target.startswith(rule):
                yield f"{rel}: includes \"{target}\", which its room may not use"
            other_pass = PASS_HEADER.match(target)
            if rel.startswith("compress/passes/") and other_pass and not rel.startswith("compress/passes/builtin_passes"):
                if not own_pass or own_pass.group(1) != other_pass.group(1):
                    yield f"{rel}: includes another pass, \"{target}\""


def main():
    found = list(violations())
    for v in found:
        print(v)
    print(f"check_layering: {len(found)} violation(s)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
