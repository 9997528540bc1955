#!/usr/bin/env bash
# Install the built OHIF viewer (npm package @ohif/app: its dist/ folder only) into
# deploy/ohif/viewer/ (git-ignored), checked against the sha512 pinned in package.json. The package's own
# dependencies are sources for rebuilding OHIF and are not needed to serve dist/, so the
# tarball is fetched with `npm pack` (npm's cache and registry settings apply) instead
# of `npm install`, and kept outside node_modules (which `npm ci` wipes and `npm install`
# prunes). Nothing is downloaded at run time. Re-running is a no-op.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=$(node -p "require('./package.json').nadir.ohifApp.version")
INTEGRITY=$(node -p "require('./package.json').nadir.ohifApp.integrity")
DEST=viewer
if [ -f "$DEST/.nadir-installed" ] && [ "$(cat "$DEST/.nadir-installed")" = "$INTEGRITY" ]; then
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "@ohif/app@$VERSION" >/dev/null)
TGZ="$TMP/ohif-app-$VERSION.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
if [ "$GOT" != "$INTEGRITY" ]; then
  echo "@ohif/app@$VERSION: integrity $GOT differs from the pinned $INTEGRITY" >&2
  exit 1
fi
rm -rf "$DEST"
mkdir -p "$DEST"
tar xzf "$TGZ" -C "$DEST" --strip-components=1 --exclude='*.map' package/package.json package/LICENSE package/dist
echo "$INTEGRITY" > "$DEST/.nadir-installed"
echo "installed @ohif/app@$VERSION into $(pwd)/$DEST"
