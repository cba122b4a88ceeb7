"""The operationIds a role may use, read from the API's own OpenAPI document: the open
operations (no security requirement) and those whose description names the role ("Roles: a,
b." or "Role: a."; a test holds these to what the server enforces). The HTML pages (/console,
/docs) are left out: the browser tests cover them. /metrics, which takes the metrics token
rather than an API token, is the only operation of the pseudo-role "metrics".

    python fuzz_operations.py OPENAPI_JSON ROLE      one operationId per line
"""

import json
import re
import sys


def operations(doc, role):
    for path, item in doc["paths"].items():
        if re.match(r"^/(console|docs)", path):
            continue
        for op in item.values():
            # /metrics answers to its own token, not to API tokens: fuzzed as role "metrics".
            if (op["operationId"] == "metrics") != (role == "metrics"):
                continue
            m = re.search(r"Roles?: ([^.]*)\.", op.get("description") or "")
            named = m and role in [r.strip() for r in m.group(1).split(",")]
            if not op.get("security") or named:
                yield op["operationId"]


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        for op in operations(json.load(f), sys.argv[2]):
            print(op)
