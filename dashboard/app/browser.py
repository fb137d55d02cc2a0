"""Headless Chromium as the browser tests, the screenshot script and the UI benchmark
use it (Debian's chromium + chromedriver; selenium comes with the ``test`` extra)."""

from __future__ import annotations

import shutil
import socket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# --disable-background-networking etc.: the machine has no internet; without them
# Chromium keeps trying to reach Google's hosts
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1920,1080",
         "--hide-scrollbars", "--disable-background-networking", "--disable-component-update", "--no-first-run")


def chrome_options():
    """selenium ChromeOptions for headless Debian chromium at 1920 x 1080."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for flag in FLAGS:
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    return options


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
