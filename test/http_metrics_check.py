#!/usr/bin/env python3
"""Parses a /metrics body with the Prometheus client library's text parser and checks families.

usage: http_metrics_check.py METRICS_FILE FAMILY...
Prints one line per family found ("name type samples"); exits 1 naming the families missing,
2 when the text does not parse.
"""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    try:
        families = {f.name: f for f in text_string_to_metric_families(text)}
    except Exception as e:  # the parser raises ValueError and others on bad text
        print(f"unparsable metrics: {e}")
        return 2
    for name in sorted(families):
        print(f"{name} {families[name].type} {len(families[name].samples)}")
    # The parser drops a counter's _total suffix from the family name.
    missing = [f for f in sys.argv[2:] if f not in families and f.removesuffix("_total") not in families]
    if missing:
        print("missing: " + " ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
