#!/usr/bin/env python3
"""Turn the BIP-39 English word list (one word per line) into a C++ source file.

Fails the build if the list is not exactly 2048 sorted lowercase ASCII words,
so a damaged data file can never produce a binary with a short list.
"""
import sys

def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="ascii") as f:
        words = [w.strip() for w in f if w.strip()]
    if len(words) != 2048:
        print(f"{src}: expected 2048 words, found {len(words)}", file=sys.stderr)
        return 1
    if words != sorted(words) or not all(w.isalpha() and w.islower() for w in words):
        print(f"{src}: words must be sorted lowercase ASCII letters", file=sys.stderr)
        return 1
    with open(dst, "w", encoding="ascii") as out:
        out.write("// Generated from data/bip39-english.txt by gen_wordlist.py. Do not edit.\n")
        out.write("#include <array>\n#include <string_view>\n\n")
        out.write("namespace peersock::code {\n")
        out.write("extern const std::array<std::string_view, 2048> kBip39English;\n")
        out.write("const std::array<std::string_view, 2048> kBip39English = {\n")
        for i in range(0, len(words), 8):
            out.write("    " + " ".join(f'"{w}",' for w in words[i:i + 8]) + "\n")
        out.write("};\n}  // namespace peersock::code\n")
    return 0

if __name__ == "__main__":
    sys.exit(main())
