"""Write docs/mutation.md from a finished `mutmut run` (make mutation): kill rate per module and every surviving
mutant, each with the one-line change it makes and why it survives (an equivalent change, or what no test pins).

Run from the repository root after `mutmut run`; exits 1 when a module's kill rate is below KILL_FLOOR."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

KILL_FLOOR = 0.80
KILLED = {1, 3, 24, -24, 36, 152, 255}  # a failing test, pytest's internal error, or a timeout (mutmut's own score)
REPORT = Path("docs/mutation.md")

# Survivor classes: a regex on the mutated line (and, where it says so, on the original), and why such a mutant
# does not change what a user gets. Anything else is listed as not yet pinned by a test.
EQUIVALENT = [
    (r"errstate\(", "numpy's warning filter: changes which warnings print, not any value"),
    (r'datetime64\((None|"nat"|"NAT")\)|np\.full\(len\(d\), None', "another spelling of NaT"),
    (r'float\("NAN"\)', "float('NAN') is the same NaN"),
    (r"for lag in range\(1, lags \+ 2\)", "Newey-West: the Bartlett weight of lag L + 1 is zero"),
    (r"if len\(x\) >= lag\)", "Newey-West: a block exactly `lag` long has an empty lag product either way"),
    (r'"(RIGHT|LEFT)"\)|freq="b"', "an option string that numpy/pandas read regardless of case"),
    (r'groupby\((key|"ticker"), (sort=(None|True))?\)',
     "groupby's sort flag where only group membership or the order within a group is used"),
    (r'sort_values\(.*(kind=None|XXstableXX|STABLE|\], \)|\], na_position)|kind="stable", \)',
     "sort algorithm or NaN placement: rows with equal keys are the same bar or the same report line"),
    (r"Series\(dtype=None\)", "the dtype of an empty result: no row to differ on"),
    (r"MAX_ROWS_IN_MESSAGE|head\((None|4)\)|head\(MAX", "how many example rows an error message shows"),
    (r'Error\((None|f?"[^"]*None)|Error\(None, |Error\(table, \["(XX|\(UNP)|shown = None|counts = None|tail = |'
     r'source: str = "(XXpricesXX|PRICES)"',
     "text of an error message, or the source name shown in it (tests match the rule names and offending rows)"),
    (r"sleep\(|range\(5[01]\)|attempt", "retry pacing on a locked catalog: how long, not whether"),
    (r"compression=", "Parquet compression codec: the same rows read back"),
    (r"indent=2", "JSON indentation"),
    (r"np\.where\(has, np\.arange\(T\)\[:, None\], [+-]\d\)|np\.maximum\(k, 1\)|np\.arange\(1, (None)?\)",
     "the no-bar-yet guard of an exit: a position is entered on a real bar, so its last bar is never before entry"),
    (r"if n >= 0:", "with n = 0 there is nothing to compute either way"),
    (r"o\[1 \+ period:2 \+ period \+ n\]", "a slice end past the last row is clipped to it"),
    (r"accumulate\(last_row, out=last_row\)", "axis=0 is numpy's default"),
    (r"if \(len\((ic|finite)\)( > 1)?\) or True|if len\((ic|finite)\) >= 1 ",
     "the mean of no value and the standard deviation of one are NaN either way"),
    (r"by_month\.setdefault", "how old day files are batched while migrating: write_partitions splits by month itself"),
]


def classify(removed: str, added: str) -> str:
    if re.search(r"\.(astype|to_numpy)\(None\)", added) and re.search(r"\.(astype|to_numpy)\(float\)", removed) \
            and removed.count("(float)") == 1:
        return "dtype None is float64 in numpy: the same as the float it replaces"
    for pattern, why in EQUIVALENT:
        if re.search(pattern, added) or (pattern.startswith("errstate") and re.search(pattern, removed)):
            return why
    return "not yet pinned by a test"


def changed_lines(diff: str) -> tuple[str, str]:
    minus = [l[1:].strip() for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    plus = [l[1:].strip() for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    return " / ".join(minus)[:160], " / ".join(plus)[:160]


def main() -> int:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    rows, survivors = [], []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        source = meta.relative_to("mutants").with_suffix("")  # cnn_pipelines/...py
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(codes.values())
        killed = sum(n for code, n in counts.items() if code in KILLED)
        unchecked = counts.get(None, 0)
        rows.append((str(source), len(codes), killed, counts.get(0, 0), counts.get(33, 0) + counts.get(5, 0), unchecked))
        for name, code in sorted(codes.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1]) if kv[0][-1].isdigit() else 0):
            if code in KILLED or code is None:
                continue
            removed, added = changed_lines(get_diff_for_mutant(name, path=source))
            survivors.append((str(source), name.split(".")[-1], "survived" if code == 0 else "no test reaches it",
                              removed, added, classify(removed, added)))
    lines = ["# Mutation testing", "",
             "Generated by `make mutation` (mutmut; `setup.cfg` names the modules and the tests each mutant runs). A",
             "mutant is killed when a test fails on it. The floor is "
             f"{KILL_FLOOR:.0%} per module.", "",
             "| module | mutants | killed | survived | no test reaches it | not run | kill rate |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    failing = []
    for source, total, killed, survived, untested, unchecked in rows:
        rate = killed / total if total else 1.0
        failing += [source] if rate < KILL_FLOOR or unchecked else []
        lines.append(f"| `{source}` | {total} | {killed} | {survived} | {untested} | {unchecked} | {rate:.1%} |")
    by_class = Counter(s[5] for s in survivors)
    lines += ["", "## Why the survivors survive", "", "| class | mutants |", "|---|---:|"]
    lines += [f"| {why} | {n} |" for why, n in by_class.most_common()]
    lines += ["", "## Every survivor", "", "| module | mutant | status | original | mutated | class |",
              "|---|---|---|---|---|---|"]
    esc = lambda s: s.replace("|", "\\|").replace("`", "'")  # noqa: E731
    lines += [f"| `{Path(s).name}` | {n} | {st} | `{esc(r)}` | `{esc(a)}` | {why} |" for s, n, st, r, a, why in survivors]
    REPORT.parent.mkdir(exist_ok=True)
    text = REPORT.read_text() if REPORT.exists() else ""
    notes = text.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in text else "\n"
    REPORT.write_text("\n".join(lines) + "\n\n<!-- notes -->" + notes)
    print("\n".join(lines[:len(rows) + 8]))
    if failing:
        print(f"below {KILL_FLOOR:.0%} (or not finished): {failing}", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
