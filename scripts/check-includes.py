#!/usr/bin/env python3
"""Check that every `#include "component/..."` in src/ names the component
itself or one it depends on (transitively) in its CMakeLists.txt — the layering
rule of DESIGN.md ("dependencies pointing downward only"), checked like Envoy's
BUILD deps. Test files (*_test.cpp) may also use their TEST_DEPS.
On top of that, the edges the "one path" design forbids are refused even if
someone adds them to a CMakeLists.txt (FORBIDDEN: nothing calls back up a
layer), and a few headers are reserved to the components that own the work
(RESERVED: only intake stages messages; only app wires the scheduler).
Exit status 1 and one line per violation when the rule is broken."""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Component A may never include component B's headers nor list B among its
# own dependencies (docs/ARCHITECTURE.md): the message path only goes down.
# (queue reaches config's types only through policy's part of it.)
FORBIDDEN = [
    ("auth", "smtp"), ("auth", "policy"), ("auth", "intake"),  # verifiers stay free of the mail flow
    ("policy", "queue"), ("policy", "delivery"), ("policy", "smtp"),  # the contract is pure
    ("queue", "config"), ("queue", "delivery"), ("queue", "intake"),  # the queue never talks to the world
    ("smtp", "policy"), ("smtp", "intake"), ("smtp", "queue"),  # the session hands over through MessageSink
    ("delivery", "intake"),
]

# Headers only the named components (and their tests, and app) may include.
RESERVED = {
    "queue/spool.hpp": {"queue", "intake", "admin"},      # delivery never writes the spool
    "queue/scheduler.hpp": {"queue", "intake"},           # nobody calls the scheduler back
}


def component_dirs():
    """Map component name -> (folder, deps, test_deps) from hikyaku_add_component calls."""
    out = {}
    for cml in SRC.rglob("CMakeLists.txt"):
        text = cml.read_text()
        for m in re.finditer(r"hikyaku_add_component\((\w+)(.*?)\)\s*$", text, re.S | re.M):
            name, body = m.group(1), m.group(2)
            deps, test_deps, mode = set(), set(), None
            for tok in body.split():
                if tok in ("PUBLIC_DEPS", "PRIVATE_DEPS", "TEST_DEPS", "EXCLUDE"):
                    mode = tok
                elif tok.startswith("hikyaku::"):
                    (test_deps if mode == "TEST_DEPS" else deps).add(tok.split("::")[1])
            out[name] = (cml.parent, deps, test_deps)
    return out


def main():
    comps = component_dirs()

    def closure(names):
        seen, todo = set(), list(names)
        while todo:
            n = todo.pop()
            if n in seen or n not in comps:
                continue
            seen.add(n)
            todo.extend(comps[n][1])
        return seen

    # Longest folder first so smtp/protocol wins over smtp.
    by_folder = sorted(((d.relative_to(SRC).as_posix(), n) for n, (d, _, _) in comps.items()),
                       key=lambda x: -len(x[0]))

    def owner(rel):
        for folder, name in by_folder:
            if rel == folder or rel.startswith(folder + "/"):
                return name
        return None

    bad = 0
    forbidden = set(FORBIDDEN)
    for a, b in FORBIDDEN:
        if a in comps and b in comps[a][1]:
            print(f"component {a} lists {b} as a dependency: forbidden (the message path only goes down)")
            bad += 1
    for f in sorted(SRC.rglob("*.[ch]pp")):
        rel = f.relative_to(SRC).as_posix()
        me = owner(rel)
        if me is None:
            continue  # app/ is an executable, allowed to use everything
        allowed = closure({me})
        if f.name.endswith("_test.cpp"):
            allowed |= closure(comps[me][2])
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = owner(m.group(1))
            reserved = RESERVED.get(m.group(1))
            if reserved is not None and me not in reserved and not f.name.endswith("_test.cpp"):
                print(f"src/{rel}:{i}: includes {m.group(1)}, reserved to {', '.join(sorted(reserved))}")
                bad += 1
            if (me, target) in forbidden and not f.name.endswith("_test.cpp"):
                print(f"src/{rel}:{i}: includes {m.group(1)}: {me} must not use {target}")
                bad += 1
            elif target is not None and target not in allowed:
                print(f"src/{rel}:{i}: includes {m.group(1)} but {me} does not depend on {target}")
                bad += 1
    print(f"include check: {bad} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
