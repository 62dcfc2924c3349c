#!/usr/bin/env python3
"""Builds one include tree per layer, holding only the headers it may use.

    layer_includes.py OUT INCLUDE SRC LAYER=USED,USED... ...

src/meson.build runs this at configure time and compiles each layer's
library with -I OUT/LAYER instead of -I include, so that an include of a
layer it may not use fails to compile (docs: the table in src/meson.build).

OUT/LAYER/peersock/ holds
  - a symlink to include/peersock/X for every layer X in USED (and LAYER),
  - the loose headers of include/peersock/ and its non-layer directories
    (glib/), which are the common layer's, as symlinks,
  - for every other layer a directory of stubs, one per header, that stop
    the compiler with a message naming the rule,
and OUT/LAYER/LAYER links to src/LAYER (private headers such as
"cli/commands.hpp").

Symlinks to directories pick up new headers in an allowed layer without a
reconfigure; a new header in a forbidden layer has no stub and is simply not
found. Only a new loose common header (include/peersock/x.hpp) needs
`meson setup --reconfigure`.
"""

import os
import shutil
import sys


def stub(layer, uses, header):
    allowed = ", ".join(uses) if uses else "nothing"
    return (f'#error "layering: src/{layer} may not include {header}: '
            f'it may use {allowed} (see layer_uses in src/meson.build)"\n')


def build_tree(root, include, src, layer, uses, layers):
    peersock = os.path.join(root, "peersock")
    os.makedirs(peersock)
    top = os.path.join(include, "peersock")
    for entry in sorted(os.listdir(top)):
        path = os.path.join(top, entry)
        if not os.path.isdir(path) or entry not in layers:
            # The common layer: loose headers and helper directories (glib/).
            os.symlink(path, os.path.join(peersock, entry))
        elif entry == layer or entry in uses:
            os.symlink(path, os.path.join(peersock, entry))
        else:
            stubs = os.path.join(peersock, entry)
            for dirpath, _, files in os.walk(path):
                rel = os.path.relpath(dirpath, path)
                out_dir = os.path.normpath(os.path.join(stubs, rel))
                os.makedirs(out_dir, exist_ok=True)
                for name in files:
                    header = os.path.normpath(os.path.join("peersock", entry, rel, name))
                    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
                        f.write(stub(layer, uses, header))
    private = os.path.join(src, layer)
    if os.path.isdir(private):
        os.symlink(private, os.path.join(root, layer))


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    out, include, src = (os.path.abspath(a) for a in argv[:3])
    rules = {}
    for arg in argv[3:]:
        layer, _, used = arg.partition("=")
        rules[layer] = [u for u in used.split(",") if u]
    # Built next to OUT, then swapped in, so that a build running meanwhile
    # never sees a half-made tree.
    fresh = out + ".new"
    shutil.rmtree(fresh, ignore_errors=True)
    for layer, uses in rules.items():
        build_tree(os.path.join(fresh, layer), include, src, layer, uses, set(rules))
    old = out + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(out):
        os.rename(out, old)
    os.rename(fresh, out)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
