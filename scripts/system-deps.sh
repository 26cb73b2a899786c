#!/usr/bin/env bash
# Install the Debian packages the course needs, when we can.
#   scripts/system-deps.sh bubblewrap [chromium] [postgresql] [fonts-wqy-microhei]
# As root with apt-get, installs what is missing. Otherwise prints how and
# carries on: grading then runs without the sandbox (and says so loudly), and
# the browser and PostgreSQL tests skip with a message.
set -u
declare -A probe=(
  [bubblewrap]="bwrap"
  [chromium]="/usr/bin/chromium"
  [postgresql]="/usr/lib/postgresql"
  # Chinese glyphs: the zh edition's figures (cnn figures) and its pages in chromium
  [fonts-wqy-microhei]="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
)
missing=()
for pkg in "$@"; do
  p="${probe[$pkg]:-$pkg}"
  if [[ "$p" == /* ]]; then
    [[ -e "$p" ]] || missing+=("$pkg")
  else
    command -v "$p" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "WARNING: could not install ${missing[*]} with apt-get" >&2
else
  echo "WARNING: missing system packages: ${missing[*]}" >&2
  echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
  echo "  Without bubblewrap, grading runs with resource limits only (SANDBOX OFF)." >&2
fi
exit 0
