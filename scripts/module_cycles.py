#!/usr/bin/env python3
"""Import cycles between the crate's modules, from cargo-modules' graph.

    cargo modules dependencies --lib --no-fns --no-types --no-traits --no-externs \
        --no-sysroot | python3 scripts/module_cycles.py

Reads the DOT graph on stdin, keeps its "uses" edges (module to module), and prints every
strongly connected component of more than one module with the edges inside it. Exits 1
when there is one. (`cargo modules dependencies --acyclic` cannot be used for this: it
checks the item graph, where a type and its own constructor already form a cycle.)
"""
import re
import sys

edges = {}
for line in sys.stdin:
    m = re.match(r'\s*"([^"]+)" -> "([^"]+)" \[label="uses"', line)
    if m and m.group(1) != m.group(2):
        edges.setdefault(m.group(1), set()).add(m.group(2))
        edges.setdefault(m.group(2), set())

index, low, stack, on_stack, components = {}, {}, [], set(), []


def connect(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
        if w not in index:
            connect(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        components.append(component)


sys.setrecursionlimit(100_000)
for v in list(edges):
    if v not in index:
        connect(v)
cycles = [c for c in components if len(c) > 1]
for cycle in cycles:
    inside = set(cycle)
    print(f"{len(cycle)} modules in a cycle:")
    for a in sorted(cycle):
        print(f"    {a} -> {', '.join(sorted(edges[a] & inside))}")
print(f"modules: {len(edges)}, uses edges: {sum(map(len, edges.values()))}, cycles: {len(cycles)}")
sys.exit(1 if cycles else 0)
