"""Validates FHIR R4 JSON resources with an external library, fhir.resources 6.2.2 (FHIR 4.0.1
models on pydantic), plus the rule that library leaves out: FHIR forbids empty strings, empty
arrays, empty objects and nulls anywhere in a resource.

    python fhir_validate.py DIR_OR_FILE...

Every *.json file under the given directories is one resource. Exits 1 when any is invalid, and
when there is nothing to validate (a run that checked nothing proves nothing)."""

import json
import pathlib
import sys

from fhir.resources import __fhir_version__, get_fhir_model_class


def empties(node, path="$"):
    if isinstance(node, str):
        if node.strip() == "":
            yield f"{path}: empty string"
    elif isinstance(node, list):
        if not node:
            yield f"{path}: empty array"
        for i, v in enumerate(node):
            yield from empties(v, f"{path}[{i}]")
    elif isinstance(node, dict):
        if not node:
            yield f"{path}: empty object"
        for k, v in node.items():
            if v is None:
                yield f"{path}.{k}: null"
            else:
                yield from empties(v, f"{path}.{k}")


def validate(data):
    errors = []
    kind = data.get("resourceType") if isinstance(data, dict) else None
    try:
        cls = get_fhir_model_class(kind or "")
    except Exception:  # unknown resource type
        return [f"$.resourceType: not a FHIR R4 resource type: {kind!r}"]
    try:
        cls.parse_obj(data)
    except Exception as e:  # pydantic.ValidationError
        errors.append(f"model: {e}")
    errors.extend(empties(data))
    return errors


def main(args):
    files = []
    for arg in args:
        p = pathlib.Path(arg)
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    if not files:
        print("fhir_validate: no FHIR resources to validate", file=sys.stderr)
        return 1
    bad = 0
    kinds = {}
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        kinds[data.get("resourceType")] = kinds.get(data.get("resourceType"), 0) + 1
        errors = validate(data)
        if errors:
            bad += 1
            print(f"INVALID {f}", file=sys.stderr)
            for e in errors:
                print("    " + e.replace("\n", "\n    "), file=sys.stderr)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=str))
    print(f"fhir_validate (fhir.resources, FHIR {__fhir_version__}): {len(files)} resources "
          f"({summary}), {bad} invalid", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
