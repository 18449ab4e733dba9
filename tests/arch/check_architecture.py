#!/usr/bin/env python3
"""check_architecture.py — checks that the code keeps the shape ARCHITECTURE.md draws.

Reads the rules block of ARCHITECTURE.md (each source folder and the folders it
may use) and checks, for every C file of those folders:
  - each "#include" of a project header names a header of the file's own
    folder or of a folder it may use; outside core/, only core/include/;
  - each forq_* library a folder's CMakeLists.txt links belongs to a folder it
    may use;
  - no circle of calls between the files of one folder;
  - no source file over 800 lines, no folder over 40% of the C lines.
Prints one line per check and "N passed, N failed"; exits 1 on a failure.
"""
import collections
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MAX_FILE_LINES = 800
MAX_FOLDER_SHARE = 0.40
# Folders whose C files are counted for the share but not bound by the rules.
FREE = ('tests', 'bench', 'examples')
# Libraries each folder's CMakeLists.txt builds.
TARGET_FOLDER = {}

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print('ok   - ' + what)
    else:
        failed += 1
        print('FAIL - ' + what)


def read_rules():
    text = open(os.path.join(ROOT, 'ARCHITECTURE.md')).read()
    m = re.search(r'<!-- rules -->\n```\n(.*?)```', text, re.S)
    if not m:
        sys.exit('ARCHITECTURE.md has no rules block (<!-- rules --> then a code block)')
    rules = {}
    for line in m.group(1).splitlines():
        if not line.strip():
            continue
        folder, _, uses = line.partition(':')
        rules[folder.strip()] = uses.split('#')[0].split()
    return rules


def c_files(folder):
    for dirpath, _, names in os.walk(os.path.join(ROOT, folder)):
        for n in sorted(names):
            if n.endswith(('.c', '.h')):
                yield os.path.join(dirpath, n)


def header_homes(rules):
    homes = collections.defaultdict(set)
    for folder in rules:
        for path in c_files(folder):
            if path.endswith('.h'):
                rel = os.path.relpath(path, ROOT)
                home = 'core/include' if rel.startswith('core/include/') else folder
                homes[os.path.basename(path)].add(home)
    return homes


def check_includes(rules, homes):
    for folder, uses in rules.items():
        allowed = {folder} | set(uses)
        bad = []
        for path in c_files(folder):
            for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', open(path).read(), re.M):
                name = os.path.basename(inc)
                where = homes.get(name)
                if not where:
                    continue  # generated or system header
                ok = False
                for home in where:
                    top = 'core' if home == 'core/include' else home
                    if home == 'core/include' and top in allowed:
                        ok = True
                    elif home == 'core' and folder == 'core':
                        ok = True
                    elif home != 'core' and top in allowed:
                        ok = True
                if not ok:
                    bad.append('%s includes %s (%s)' % (os.path.relpath(path, ROOT), inc,
                                                        ', '.join(sorted(where))))
        check(not bad, '%s/ includes only %s' % (folder, ', '.join(sorted(allowed)) or 'itself') +
              ''.join('\n       ' + b for b in bad))


def check_links(rules):
    # Which folder builds each forq_* library.
    for folder in rules:
        cm = os.path.join(ROOT, folder, 'CMakeLists.txt')
        if os.path.exists(cm):
            for t in re.findall(r'add_library\((forq_\w+)', open(cm).read()):
                TARGET_FOLDER[t] = folder
    for folder, uses in rules.items():
        cm = os.path.join(ROOT, folder, 'CMakeLists.txt')
        if not os.path.exists(cm):
            continue
        bad = []
        for block in re.findall(r'target_link_libraries\(([^)]*)\)', open(cm).read()):
            for lib in re.findall(r'\bforq_\w+', block)[1:]:
                home = TARGET_FOLDER.get(lib)
                if home and home != folder and home not in uses:
                    bad.append('links %s (%s/)' % (lib, home))
        check(not bad, '%s/CMakeLists.txt links only what %s/ may use' % (folder, folder) +
              ''.join('\n       ' + b for b in bad))


def strip_comments(s):
    s = re.sub(r'/\*.*?\*/', '', s, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', s)


def check_call_circles(rules):
    for folder in rules:
        files = [p for p in c_files(folder) if p.endswith('.c')]
        defined = {}
        for p in files:
            for name in re.findall(r'^(?!static)[a-z][^;\n(]*?\b([a-z_][a-z0-9_]*)\([^;]*?\)\s*\n\{',
                                   strip_comments(open(p).read()), re.M):
                defined[name] = p
        graph = collections.defaultdict(set)
        for p in files:
            body = strip_comments(open(p).read())
            for name, home in defined.items():
                if home != p and re.search(r'\b%s\(' % re.escape(name), body):
                    graph[p].add(home)
        circle = find_circle(graph)
        check(not circle, 'no circle of calls between the files of %s/' % folder +
              ('' if not circle else '\n       ' +
               ' -> '.join(os.path.relpath(c, ROOT) for c in circle)))


def find_circle(graph):
    state = {}

    def visit(u, path):
        state[u] = 1
        path.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                return path[path.index(v):] + [v]
            if not state.get(v):
                c = visit(v, path)
                if c:
                    return c
        state[u] = 2
        path.pop()
        return None

    for u in sorted(list(graph)):
        if not state.get(u):
            c = visit(u, [])
            if c:
                return c
    return None


def check_sizes(rules):
    lines = {}
    long_files = []
    for folder in list(rules) + list(FREE):
        n = 0
        for p in c_files(folder):
            k = sum(1 for _ in open(p))
            n += k
            if k > MAX_FILE_LINES:
                long_files.append('%s: %d lines' % (os.path.relpath(p, ROOT), k))
        lines[folder] = n
    check(not long_files, 'no C file over %d lines' % MAX_FILE_LINES +
          ''.join('\n       ' + f for f in long_files))
    total = sum(lines.values())
    big = ['%s/: %.0f%%' % (f, 100.0 * n / total) for f, n in lines.items()
           if n > MAX_FOLDER_SHARE * total]
    check(not big, 'no folder holds over %.0f%% of the %d C lines (largest: %s)' %
          (100 * MAX_FOLDER_SHARE, total, max(lines, key=lines.get)) +
          ''.join('\n       ' + b for b in big))


def main():
    rules = read_rules()
    for folder in rules:
        check(os.path.isdir(os.path.join(ROOT, folder)), 'ARCHITECTURE.md names %s/, which exists' % folder)
    homes = header_homes(rules)
    dup = sorted(n for n, h in homes.items() if len(h) > 1)
    check(not dup, 'each project header name is unique: %s' % (', '.join(dup) or 'yes'))
    check_includes(rules, homes)
    check_links(rules)
    check_call_circles(rules)
    check_sizes(rules)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
