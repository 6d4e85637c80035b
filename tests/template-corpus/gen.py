#!/usr/bin/env python3
"""Regenerates the alert-template golden corpus from real promtool.

Writes rules.yml (one alerting rule per case), asks `promtool test rules` with
deliberately empty expectations, reads the annotations promtool got (Go's exact
output), and writes test.yml (a promtool unit test that passes with those
annotations) and expected.json (the same data for bellwether's unit test).

Run from the repository root: python3 tests/template-corpus/gen.py
"""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

EXTERNAL_LABELS = {"region": "eu-west", "cluster": "c1"}
EXTERNAL_URL = "http://prom.example.com:9090/prometheus"

# Series `corpus_q` that the `query` function reads (the order is the
# engine's: sorted by label set).
QUERY_SERIES = [
    ({"__name__": "corpus_q", "instance": "a.example.com:9100", "job": "node", "zone": "z2"}, 3.0),
    ({"__name__": "corpus_q", "instance": "b.example.com:9100", "job": "node", "zone": "z1"}, 1234567.0),
    ({"__name__": "corpus_q", "instance": "c.example.com:9100", "job": "node", "zone": "z3"}, 0.5),
]

# (case, value as promtool input text, value as float, extra labels, annotations)
CASES = [
    ("Basic", "1000000", 1e6, {"instance": "web-1.example.com:8080", "job": "api"}, {
        "value": "{{ $value }}",
        "dot_value": "{{ .Value }}",
        "labels": "{{ $labels.instance }} {{ $labels.job }} {{ .Labels.job }}",
        "missing": "[{{ $labels.missing }}][{{ index $labels \"missing\" }}][{{ .Labels.nope }}][{{ $externalLabels.nope }}]",
        "name": "{{ $labels.__name__ }} {{ index $labels \"case\" }}",
        "labels_map": "{{ $labels }}",
        "external": "{{ $externalLabels.region }} {{ $externalURL }} {{ .ExternalURL }} {{ $externalLabels }}",
        "dot": "{{ . }}",
        "text_only": "plain text, no actions",
        "trim": "a   {{- $labels.job -}}   b",
        "comment": "x{{/* comment */}}y",
        "len": "{{ len $labels }} {{ len \"héllo\" }} {{ len $externalLabels }}",
    }),
    ("Humanize", "1234567", 1234567.0, {}, {
        "h_value": "{{ humanize $value }}",
        "h_zero": "{{ humanize 0 }}",
        "h_small": "{{ humanize 0.000123 }} {{ humanize 0.0000000000000000000000001 }}",
        "h_huge": "{{ humanize 1e30 }} {{ humanize 1e27 }} {{ humanize 999999 }} {{ humanize 1000 }}",
        "h_negative": "{{ humanize -1500 }} {{ humanize -0.002 }}",
        "h_string": "{{ humanize \"2048\" }} {{ humanize \"1e3\" }}",
        "h_special": "{{ humanize \"NaN\" }} {{ humanize \"+Inf\" }} {{ humanize \"-Inf\" }}",
        "h1024": "{{ humanize1024 1024 }} {{ humanize1024 1536 }} {{ humanize1024 0.5 }} {{ humanize1024 1e30 }} {{ humanize1024 -2048 }} {{ humanize1024 1 }}",
        "hdur": "{{ humanizeDuration 0.5 }}|{{ humanizeDuration 59 }}|{{ humanizeDuration 3600 }}|{{ humanizeDuration 259201 }}|{{ humanizeDuration 0.0015 }}|{{ humanizeDuration 0 }}|{{ humanizeDuration -90 }}|{{ humanizeDuration 1.23456 }}|{{ humanizeDuration 0.000000123 }}|{{ humanizeDuration 61.9 }}",
        "hpct": "{{ humanizePercentage 0.1234567 }} {{ humanizePercentage 1 }} {{ humanizePercentage 0 }} {{ humanizePercentage -0.5 }}",
        "hts": "{{ humanizeTimestamp 1234567890 }}|{{ humanizeTimestamp 1234567890.123 }}|{{ humanizeTimestamp 0 }}|{{ humanizeTimestamp \"NaN\" }}",
        "totime": "{{ toTime 1234567890 }} {{ (toTime 1700000000.5).Unix }}",
        "pipe": "{{ $value | humanize }} {{ 0.25 | humanizePercentage }}",
    }),
    ("Printf", "1.5", 1.5, {}, {
        "f": "{{ printf \"%.2f\" $value }} {{ printf \"%.0f\" 2.5 }} {{ printf \"%8.3f|\" $value }} {{ printf \"%-8.1f|\" $value }}",
        "g": "{{ printf \"%.4g\" 1234567.0 }} {{ printf \"%g\" 1e21 }} {{ printf \"%.3g\" 0.00001234 }} {{ printf \"%G\" 1e-7 }}",
        "e": "{{ printf \"%e\" 123456.789 }} {{ printf \"%.2E\" 0.000123 }}",
        "d": "{{ printf \"%d\" 42 }} {{ printf \"%d\" $value }} {{ printf \"%05d\" -42 }} {{ printf \"%x %X %o %b\" 255 255 8 5 }}",
        "v": "{{ printf \"%v\" $value }} {{ printf \"%v\" 1e6 }} {{ printf \"%v\" $labels }} {{ printf \"%v\" true }}",
        "s": "{{ printf \"%s\" \"str\" }} {{ printf \"%s\" 12 }} {{ printf \"%10s|%-4s|\" \"r\" \"l\" }} {{ printf \"%.2s\" \"abcdef\" }}",
        "q": "{{ printf \"%q\" \"a\\\"b\" }} {{ printf \"%q\" 65 }}",
        "t": "{{ printf \"%T %T %T %T\" $value 1 \"s\" $labels }}",
        "bad": "{{ printf \"%d %d\" 1 }} {{ printf \"%d\" 1 2 }} {{ printf \"100%%\" }} {{ printf \"%z\" 3 }} {{ printf \"%!\" }}",
        "print": "{{ print 1 2 \"a\" \"b\" 3 }}|{{ println \"x\" 1 }}|{{ print $value }}",
        "signs": "{{ printf \"%+d %+.1f % d\" 5 2.0 7 }}",
        "inf": "{{ printf \"%f %v %.2f\" (humanize1024 1 | len | printf \"%d\" | len | printf \"%d\" | humanize | len | printf \"%v\" | humanize | len) 0 0 }}",
    }),
    ("Strings", "3", 3.0, {"instance": "db-7.prod.example.com:5432", "service": "hello wORLD-foo_bar"}, {
        "title": "{{ title $labels.service }} {{ title \"élan vital\" }}",
        "upper": "{{ toUpper $labels.service }} {{ toLower \"MiXeD\" }}",
        "rereplace": "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ reReplaceAll \"o\" \"0\" \"foo boo\" }} {{ reReplaceAll \"(?P<h>[a-z]+)-(\\\\d+)\" \"${h}_$2\" \"db-7\" }}",
        "match": "{{ match \"^db-\" $labels.instance }} {{ match \"x\" \"abc\" }}",
        "strip": "{{ stripPort $labels.instance }} {{ stripPort \"[::1]:80\" }} {{ stripPort \"nohost\" }} {{ stripDomain $labels.instance }} {{ stripDomain \"10.0.0.1:80\" }} {{ stripDomain \"host.example.com\" }} {{ stripDomain \"[::1]:80\" }}",
        "links": "{{ graphLink \"rate(x[5m]) > 0\" }} {{ tableLink \"up{job=\\\"a b\\\"}\" }}",
        "safe": "{{ safeHtml \"<b>bold</b>\" }}",
        "escapes": "{{ html \"<a href='x'>&</a>\" }} {{ js \"it's <b>\" }} {{ urlquery \"a b&c\" }}",
        "parse_duration": "{{ parseDuration \"1h30m\" }} {{ parseDuration \"500ms\" }} {{ parseDuration \"0\" }}",
        "index_str": "{{ index \"abc\" 1 }} {{ slice \"abcdef\" 1 3 }}",
    }),
    ("Control", "42", 42.0, {"severity": "critical", "team": "db"}, {
        "if": "{{ if gt $value 40.0 }}high{{ else if gt $value 10.0 }}mid{{ else }}low{{ end }}",
        "eq": "{{ if eq $labels.severity \"critical\" \"page\" }}page{{ end }} {{ eq 1 1 2 }} {{ ne \"a\" \"b\" }} {{ lt 1 2 }} {{ le 2.0 2.0 }} {{ ge \"b\" \"a\" }}",
        "andor": "{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ and $labels.team \"yes\" }} {{ or $labels.nope \"default\" }} {{ not 0 }}",
        "with": "{{ with $labels.team }}team={{ . }}{{ end }}{{ with $labels.nope }}never{{ else }} no-nope{{ end }}",
        "range_labels": "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
        "range_else": "{{ range $externalLabels.nope }}x{{ else }}empty{{ end }}",
        "define": "{{ define \"sev\" }}[{{ . }}]{{ end }}{{ template \"sev\" $labels.severity }}{{ template \"sev\" .Value }}",
        "vars": "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
        "args": "{{ define \"t\" }}{{ .arg0 }}-{{ .arg1 }}{{ end }}{{ template \"t\" (args \"a\" 2) }} {{ args 1 \"x\" }}",
        "break": "{{ range $k, $v := $labels }}{{ if eq $k \"severity\" }}{{ break }}{{ end }}{{ $k }} {{ end }}",
    }),
    # Prometheus returns a selector's series in no fixed order here, so every
    # use of a multi-series result sorts it first.
    ("Query", "7", 7.0, {}, {
        "first": "{{ sortByLabel \"instance\" (query \"corpus_q\") | first | value }} {{ with sortByLabel \"zone\" (query \"corpus_q\") }}{{ . | first | label \"instance\" }}{{ end }}",
        "range": "{{ range sortByLabel \"instance\" (query \"corpus_q\") }}{{ .Labels.instance }}={{ .Value }};{{ end }}",
        "sorted": "{{ range sortByLabel \"zone\" (query \"corpus_q\") }}{{ .Labels.zone }}:{{ humanize .Value }};{{ end }}",
        "strvalue": "[{{ query \"corpus_q\" | first | strvalue }}]",
        "len": "{{ len (query \"corpus_q\") }} {{ len (query \"corpus_nothing\") }}",
        "sample": "{{ query \"corpus_q\" | sortByLabel \"instance\" | first }}",
        "index": "{{ (index (sortByLabel \"instance\" (query \"corpus_q\")) 1).Labels.zone }} {{ index (sortByLabel \"instance\" (query \"corpus_q\")) 2 | value }}",
        "empty_range": "{{ range query \"corpus_nothing\" }}x{{ else }}none{{ end }}",
        "scalar_query": "{{ query \"2 * 21\" | first | value }}",
        "labels_of_first": "{{ with query \"corpus_q\" | sortByLabel \"zone\" | first }}{{ .Labels }}{{ end }}",
    }),
    ("Special", "NaN", float("nan"), {}, {
        "nan": "{{ $value }} {{ humanize $value }} {{ printf \"%.2f\" $value }} {{ humanizeDuration $value }} {{ humanizePercentage $value }} {{ humanizeTimestamp $value }}",
    }),
    ("PosInf", "+Inf", float("inf"), {}, {
        "inf": "{{ $value }} {{ humanize $value }} {{ printf \"%.2f|%e|%g\" $value $value $value }} {{ humanize1024 $value }} {{ humanizeDuration $value }}",
    }),
    ("NegTiny", "-0.000000123", -0.000000123, {}, {
        "neg": "{{ $value }} {{ humanize $value }} {{ humanizeDuration $value }} {{ printf \"%.3e\" $value }}",
    }),
    ("Errors", "5", 5.0, {"instance": "x:1"}, {
        "index_int": "{{ index $labels 1 }}",
        "title_float": "{{ title $value }}",
        "eq_mixed": "{{ eq $value 1 }}",
        "gt_mixed": "{{ if gt $value 1 }}x{{ end }}",
        "no_field": "{{ .Foo }}",
        "humanize_str": "{{ humanize \"abc\" }}",
        "first_empty": "{{ query \"corpus_nothing\" | first | value }}",
        "arg_count": "{{ title }}",
        "arg_count2": "{{ humanize 1 2 }}",
        "bad_regex": "{{ reReplaceAll \"(\" \"x\" \"y\" }}",
        "bad_match": "{{ match \"[\" \"y\" }}",
        "range_string": "{{ range $labels.instance }}{{ end }}",
        "field_on_string": "{{ $labels.instance.foo }}",
        "bad_duration": "{{ parseDuration \"abc\" }}",
        "literal_to_string": "{{ toUpper 1 }}",
        "sample_field": "{{ (query \"corpus_q\" | first).Nope }}",
        "nil_cmd": "{{ nil }}",
        "index_oob": "{{ index \"abc\" 5 }}",
        "len_float": "{{ len $value }}",
        "undefined_template": "{{ template \"nope\" }}",
        "in_define": "{{ define \"bad\" }}{{ title 1.5 }}{{ end }}line1\n{{ template \"bad\" }}",
        "multiline": "first line\nsecond {{ index $labels 2 }}",
        "non_function": "{{ $value 1 }}",
        "totime_nan": "{{ toTime \"NaN\" }}",
        "query_error": "{{ query \"sum(\" }}",
    }),
]


def go_unquote(s):
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n == "x":
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        elif n == "u":
            out.append(chr(int(s[i + 2:i + 6], 16)))
            i += 6
        elif n == "U":
            out.append(chr(int(s[i + 2:i + 10], 16)))
            i += 10
        else:
            raise ValueError("unknown escape \\" + n)
    return "".join(out)


def yaml_str(s):
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(s, ensure_ascii=False)


def write_rules(path):
    lines = ["groups:", "  - name: template-corpus", "    rules:"]
    for name, _, _, _, annotations in CASES:
        lines.append(f"      - alert: {name}")
        lines.append(f"        expr: corpus{{case=\"{name}\"}}")
        lines.append("        annotations:")
        for key, text in annotations.items():
            lines.append(f"          {key}: {yaml_str(text)}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def series_text(labels):
    name = labels["__name__"]
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def case_labels(name, extra):
    labels = {"__name__": "corpus", "case": name}
    labels.update(extra)
    return labels


def write_test(path, got):
    lines = [
        "# Generated by gen.py from promtool's own output: every expected annotation",
        "# below is what Prometheus 2.42 produced for the template in rules.yml.",
        "rule_files: [rules.yml]",
        "evaluation_interval: 1m",
        "tests:",
        "  - interval: 1m",
        f"    external_labels: {json.dumps(EXTERNAL_LABELS)}",
        f"    external_url: {yaml_str(EXTERNAL_URL)}",
        "    input_series:",
    ]
    for name, text, _, extra, _ in CASES:
        lines.append(f"      - series: {yaml_str(series_text(case_labels(name, extra)))}")
        lines.append(f"        values: {yaml_str(text)}")
    for labels, value in QUERY_SERIES:
        lines.append(f"      - series: {yaml_str(series_text(labels))}")
        lines.append(f"        values: {yaml_str(repr(value))}")
    lines.append("    alert_rule_test:")
    for name, _, _, extra, _ in CASES:
        labels = {"alertname": name, "case": name}
        labels.update(extra)
        lines.append("      - eval_time: 0m")
        lines.append(f"        alertname: {name}")
        lines.append("        exp_alerts:")
        lines.append(f"          - exp_labels: {json.dumps(labels, ensure_ascii=False)}")
        lines.append(f"            exp_annotations: {json.dumps(got.get(name, {}), ensure_ascii=False)}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def parse_got(output):
    got = {}
    current = None
    for line in output.splitlines():
        m = re.match(r"\s*alertname: (\w+), time:", line)
        if m:
            current = m.group(1)
        m = re.match(r"\s*Annotations:\{(.*)\},?$", line)
        if m and current:
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1))
            got[current] = {k: go_unquote(v) for k, v in pairs}
    return got


def main():
    rules = os.path.join(HERE, "rules.yml")
    test = os.path.join(HERE, "test.yml")
    write_rules(rules)
    write_test(test, {})
    run = subprocess.run(["promtool", "test", "rules", test], capture_output=True, text=True)
    got = parse_got(run.stdout + run.stderr)
    missing = [c[0] for c in CASES if c[0] not in got]
    if missing:
        sys.exit(f"promtool reported no annotations for {missing}:\n{run.stdout}{run.stderr}")
    write_test(test, got)
    check = subprocess.run(["promtool", "test", "rules", test], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"generated test does not pass:\n{check.stdout}{check.stderr}")
    expected = {
        "external_labels": EXTERNAL_LABELS,
        "external_url": EXTERNAL_URL,
        "queries": {"corpus_q": [{"labels": l, "value": v} for l, v in QUERY_SERIES], "corpus_nothing": []},
        "cases": [
            {
                "alert": name,
                "labels": case_labels(name, extra),
                "value": "NaN" if value != value else ("+Inf" if value == float("inf") else value),
                "annotations": {k: {"template": annotations[k], "expected": got[name][k]} for k in annotations},
            }
            for name, _, value, extra, annotations in CASES
        ],
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{sum(len(c[4]) for c in CASES)} annotations in {len(CASES)} rules; promtool test passes")


if __name__ == "__main__":
    main()
