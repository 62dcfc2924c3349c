#!/usr/bin/env bash
# Fails if any tracked file holds a PEM private key or a DER/PKCS#8 key in a
# C array, so that "no private key in the source" stays true. The
# original peersock shipped its TLS key in the source; this build makes a
# fresh key per session (src/quic/tls.cpp).
#
# One exception, by fingerprint: the original's own published key,
# data/compat-v1/original-key.pem, which an original client needs to see
# (data/compat-v1/README.md says why it is harmless). The file passes only
# if it holds exactly one private key block and the SHA-256 of that block's
# DER bytes is the published key's; any other key, anywhere, still fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
allowed_file=data/compat-v1/original-key.pem
allowed_sha256=7637f1a7a58aea79c10b987498e47791bad53a950c6109aa9b45afd0c8725dfe
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout: scanning every file"
  files=$(find . -path ./build\* -prune -o -type f -print | sed 's|^\./||')
else
  files=$(git ls-files)
fi
# The published key, and nothing else in its file.
is_published_key() {
  [ "$1" = "$allowed_file" ] || return 1
  [ "$(grep -c -- '-----BEGIN' "$1")" = 1 ] || return 1
  local sum
  sum=$(sed -n '/^-----BEGIN PRIVATE KEY-----$/,/^-----END PRIVATE KEY-----$/p' "$1" | grep -v -- '-----' |
    base64 -d 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "$sum" = "$allowed_sha256" ]
}
# shellcheck disable=SC2086
candidates=$(printf '%s\n' $files | grep -v '^tests/security/no_private_keys.sh$' |
  xargs -r grep -IlE -- '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----|PRIVATE KEY BLOCK' 2>/dev/null)
hits=""
for f in $candidates; do
  if is_published_key "$f"; then
    echo "allowed: $f (the original peersock's published key, SHA-256 $allowed_sha256)"
  else
    hits="$hits $f"
  fi
done
if [ -n "$hits" ]; then
  echo "private key material in:$hits"
  exit 1
fi
echo "no private key in $(printf '%s\n' $files | wc -l) tracked files (besides the published one above)"
