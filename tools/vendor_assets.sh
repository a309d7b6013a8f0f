#!/usr/bin/env bash
# Copy the JavaScript the built book loads into _vendor/ (served as _static/ by
# Sphinx, see html_static_path in _config.yml), so that the HTML needs no CDN:
#   _vendor/mathjax/            MathJax 3 tex-chtml-full.js + its CHTML woff2 fonts
#                               (+ a11y/sre, loaded only if a reader turns on
#                               accessibility features in the MathJax menu)
#   _vendor/jupyter-widgets/    @jupyter-widgets/html-manager's standalone embed.js:
#                               base + controls + output widgets built in, no
#                               require.js, no CDN loader; + its Font Awesome fonts,
#                               which it finds next to itself (webpack publicPath);
#                               + tools/assets/ipywidgets-mathjax3.js, which lets it
#                               typeset widget labels with MathJax 3.
# Idempotent: does nothing when package-lock.json and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

VENDOR=_vendor
key=$(cat package-lock.json tools/vendor_assets.sh tools/assets/* | sha256sum | cut -d' ' -f1)
if [[ -f $VENDOR/.stamp && $(cat $VENDOR/.stamp) == "$key" ]]; then
  exit 0
fi

npm_key=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.vendor-stamp || $(cat node_modules/.vendor-stamp) != "$npm_key" ]]; then
  command -v npm >/dev/null || { echo "vendor_assets: npm is needed (apt-get install npm)" >&2; exit 1; }
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$npm_key" > node_modules/.vendor-stamp
fi

tmp=$(mktemp -d "${VENDOR}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mj=node_modules/mathjax/es5
mkdir -p "$tmp/mathjax/output/chtml/fonts"
cp "$mj/tex-chtml-full.js" "$tmp/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$tmp/mathjax/output/chtml/fonts/"
cp -r "$mj/a11y" "$mj/sre" "$tmp/mathjax/"
cp node_modules/mathjax/LICENSE "$tmp/mathjax/"

hm=node_modules/@jupyter-widgets/html-manager
mkdir -p "$tmp/jupyter-widgets"
cp "$hm/dist/embed.js" "$hm/dist/embed.js.LICENSE.txt" "$hm/dist/"*.woff2 "$hm/dist/"*.woff \
   "$tmp/jupyter-widgets/"
cp tools/assets/ipywidgets-mathjax3.js "$tmp/jupyter-widgets/"

echo "$key" > "$tmp/.stamp"
rm -rf "$VENDOR"
mv "$tmp" "$VENDOR"
trap - EXIT
echo "vendor_assets: $(du -sh "$VENDOR" | cut -f1) in $VENDOR/"
