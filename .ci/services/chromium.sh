# Headless Chromium for the storefront browser test (sourced by .ci/run).
# Installs Debian's chromium and chromium-driver (the driver matches the browser's version)
# and an emoji font (the storefront's product pictures) when missing; nothing to start:
# tests/test_storefront_browser.py launches the browser itself.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y -q chromium chromium-driver fonts-noto-color-emoji >/dev/null \
    || { $SUDO apt-get update -q >/dev/null \
         && $SUDO apt-get install -y -q chromium chromium-driver fonts-noto-color-emoji >/dev/null; }
fi
echo "$(chromium --version 2>/dev/null | head -n 1); $(chromedriver --version 2>/dev/null | head -n 1)"
