#!/usr/bin/env python3
"""Turn data/compat-v1/original-{cert,key}.pem into a C++ source file.

The build fails unless the certificate is exactly the original peersock's
(SHA-256 of its DER form), so a damaged or replaced file can never produce a
binary that an original client rejects (data/compat-v1/README.md).
"""
import base64
import hashlib
import re
import sys

CERT_SHA256 = "015e462077d574fde417b516a44380420b3816bfc0f64fd38bfe970310f654dc"


def pem_body(text, label):
    m = re.search(rf"-----BEGIN {label}-----\n(.*?)-----END {label}-----", text, re.S)
    if not m:
        raise SystemExit(f"no {label} block")
    return base64.b64decode("".join(m.group(1).split()))


def main() -> int:
    cert_path, key_path, dst = sys.argv[1], sys.argv[2], sys.argv[3]
    cert = open(cert_path, encoding="ascii").read()
    key = open(key_path, encoding="ascii").read()
    digest = hashlib.sha256(pem_body(cert, "CERTIFICATE")).hexdigest()
    if digest != CERT_SHA256:
        print(f"{cert_path}: SHA-256 {digest} is not the original peersock's certificate", file=sys.stderr)
        return 1
    with open(dst, "w", encoding="ascii") as out:
        out.write("// Generated from data/compat-v1/ by gen_compat_identity.py. Do not edit.\n")
        out.write("#include <string_view>\n\nnamespace peersock::quic::tls {\n")
        for name, text in (("kOriginalCertPem", cert), ("kOriginalKeyPem", key)):
            out.write(f"extern const std::string_view {name};\n")
            out.write(f'const std::string_view {name} = R"PEM({text})PEM";\n')
        out.write("}  // namespace peersock::quic::tls\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
