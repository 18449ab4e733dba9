#!/usr/bin/env bash
# test_flags_doc.sh — README.md's forqd flag table agrees with `forqd --help`,
# which service/config.c's flag table writes: every flag of --help is in the
# README and every README flag in --help, with the same value name and the
# same default. (Help texts may differ: README's are for a page, --help's for
# a terminal.)
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD"

"$FORQD" --help >"$TMP/help.txt" 2>&1
check "forqd --help exits 0" [ $? -eq 0 ]

# The table under "## Running forqd", as "flags<TAB>default" lines: a row's
# flags are its `--...` words (`--recover` / `--no-recover` is one row).
awk '
	/^## / { in_sec = ($0 == "## Running forqd") }
	in_sec && /^\| flag \| default \| meaning \|/ { in_tab = 1; next }
	in_tab && !/^\|/ { exit }
	in_tab && /^\|---/ { next }
	in_tab {
		n = split($0, cell, "|")
		flag = cell[2]; def = cell[3]
		gsub(/`/, "", flag); gsub(/`/, "", def)
		gsub(/^ +| +$/, "", flag); gsub(/^ +| +$/, "", def)
		print flag "\t" def
	}' "$FORQ_SRC/README.md" >"$TMP/readme.tsv"
check "README.md has the forqd flag table (got $(wc -l <"$TMP/readme.tsv") rows)" \
	[ "$(wc -l <"$TMP/readme.tsv")" -ge 25 ]

# --help's lines "  --name ARG   help (RANGE; default: D)", as "--name ARG<TAB>D".
while IFS= read -r line; do
	case $line in
	"  --"*) ;;
	*) continue ;;
	esac
	left=$(sed 's/^  \(--[a-z-]*\( [A-Z:]\+\)\?\)  .*$/\1/' <<<"$line")
	def=""
	case $line in
	*"default: "*) def=${line##*default: }; def=${def%)} ;;
	esac
	printf '%s\t%s\n' "$left" "$def"
done <"$TMP/help.txt" >"$TMP/help.tsv"

python3 - "$TMP/readme.tsv" "$TMP/help.tsv" >"$TMP/compare.txt" 2>&1 <<'EOF'
import re, sys
readme = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
help_rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
helps = {}
for left, d in help_rows:
    helps[left.split()[0]] = (left, d)
bad = 0
seen = set()
for cell, d in readme:
    names = re.findall(r"--[a-z-]+(?: [A-Z:]+)?", cell)
    if not names:
        print("README row without a flag: %r" % cell); bad += 1; continue
    for i, n in enumerate(names):
        flag = n.split()[0]
        seen.add(flag)
        if flag not in helps:
            print("README's %s is not in forqd --help" % flag); bad += 1; continue
        left, hd = helps[flag]
        if n != left:
            print("README says %r, --help says %r" % (n, left)); bad += 1
        if i == 0 and d != hd:
            print("%s: README's default %r, --help's %r" % (flag, d, hd)); bad += 1
for flag in helps:
    if flag not in seen and flag not in ("--help", "--version"):
        print("forqd --help's %s is not in README's table" % flag); bad += 1
print("%d flags compared, %d differences" % (len(seen), bad))
sys.exit(1 if bad else 0)
EOF
rc=$?
cat "$TMP/compare.txt"
check "README's flag table and forqd --help agree: every flag, value name and default" [ $rc -eq 0 ]
check "... over every flag of --help ($(wc -l <"$TMP/help.tsv") lines)" \
	[ "$(wc -l <"$TMP/help.tsv")" -ge 30 ]

finish
