#!/usr/bin/env python3
"""Builds bench/normalize-requests.ndjson from the golden cases.

Every case of crates/payerr/tests/golden/*.toml becomes one `POST /v1/normalize` request body, in the
service's request shape:

    {"dialect": ID, "http_status": N, "headers": {...}, "body": "<provider body as text>"}

Why the golden cases: they are real provider responses (every documented code of every built-in
dialect, envelope variants, HTML gateway pages, empty bodies), so the benchmark exercises the same
mix of lookups the engine sees in production rather than one hot path.

Why an explicit dialect: the gateway always passes one (the file stem names it, as in the golden test
runner), so detection (`auto`) is not what is measured here.

Why the body as a JSON string: that is how a gateway forwards a provider's bytes untouched, including
non-JSON bodies (HTML 502 pages, empty bodies).

Usage:
    bench/make-corpus.py            # (re)write bench/normalize-requests.ndjson
    bench/make-corpus.py --check    # exit 1 if the committed file is not what the goldens give
    bench/make-corpus.py --stdout   # print the corpus instead of writing it
"""

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "crates" / "payerr" / "tests" / "golden"
CORPUS = ROOT / "bench" / "normalize-requests.ndjson"


def corpus() -> str:
    files = sorted(GOLDEN.glob("*.toml"))
    if not files:
        sys.exit(f"make-corpus: no golden files under {GOLDEN}")
    lines = []
    for path in files:
        dialect = path.stem
        with path.open("rb") as f:
            cases = tomllib.load(f).get("cases", [])
        if not cases:
            sys.exit(f"make-corpus: {path} has no [[cases]]")
        for case in cases:
            request = {
                "dialect": dialect,
                "http_status": case["http_status"],
                "headers": case.get("headers", {}),
                "body": case["body"],
            }
            # Compact, UTF-8 as is (the Chinese messages stay readable in the diff), one line each:
            # wrk's Lua script reads the file line by line.
            lines.append(json.dumps(request, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def main() -> None:
    text = corpus()
    if "--stdout" in sys.argv[1:]:
        sys.stdout.write(text)
    elif "--check" in sys.argv[1:]:
        current = CORPUS.read_text(encoding="utf-8") if CORPUS.exists() else None
        if current != text:
            sys.exit(f"make-corpus: {CORPUS.relative_to(ROOT)} is stale; run bench/make-corpus.py")
    else:
        CORPUS.write_text(text, encoding="utf-8")
        print(f"make-corpus: wrote {text.count(chr(10))} requests to {CORPUS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
