#!/usr/bin/env bash
# Build the documentation site (mkdocs.yml, docs/) with `mkdocs build --strict`: a broken link,
# a page missing from the navigation or any other warning fails the build.
#   bash scripts/docs.sh [OUTPUT_DIR]      (default: site/)
# Installs the `docs` dependency group of pyproject.toml (MkDocs, Material) into .venv when it is
# missing; after that it needs no network: no plugin fetches anything and no web font is used.
# `.venv/bin/mkdocs serve` serves the pages while you edit them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-site}
if [ ! -x .venv/bin/python ]; then
  bash scripts/setup.sh
fi
if ! .venv/bin/python -c "import mkdocs, material" 2>/dev/null; then
  .venv/bin/python -m pip install -q -e ".[docs]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import mkdocs, material" \
    || { echo "docs: could not install the docs group (pip install -e '.[docs]')" >&2; exit 1; }
fi
# NO_MKDOCS_2_WARNING: Material prints a banner about its successor on every build otherwise
NO_MKDOCS_2_WARNING=1 exec .venv/bin/python -m mkdocs build --strict --site-dir "$out"
