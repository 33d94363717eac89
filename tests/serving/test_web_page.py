"""The web page (``GET /``) in a real browser: Debian's chromium, headless, driven by selenium, against the served
models (``real_server``, API key "test-key"). One browser serves the module; its fake microphone
(``--use-file-for-fake-audio-capture``) loops a WAV of synthetic speech followed by silence.

Skipped when chromium, chromedriver or selenium is missing (Debian: ``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from seqspeech.audio.io import load_audio
from seqspeech.metrics.wer import cer, wer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SENTENCE = "the quick brown fox jumps over the lazy dog"
LIVE_MODEL = "whisper-tiny.en"  # rnnt-synth-en mishears speech that follows silence, as a looping microphone gives
KEY = "test-key"


def _browser_path(preferred: str, *names: str) -> str | None:
    if Path(preferred).exists():
        return preferred
    return next((found for name in names if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def microphone_wav(synth_speech, tmp_path_factory) -> Path:
    """What the fake microphone plays, looped: 0.3 s of silence, the sentence (flite), 2.5 s of silence (so the
    recogniser's endpointing ends the utterance), as the 16-bit PCM WAV that chromium needs."""
    speech = load_audio(synth_speech(SENTENCE, engine="flite"), 16000)
    wave = np.concatenate([np.zeros(4800, np.float32), speech, np.zeros(40000, np.float32)])
    path = tmp_path_factory.mktemp("web_page") / "microphone.wav"
    sf.write(str(path), wave, 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone_wav: Path) -> Iterator[Any]:
    chromium = _browser_path(CHROMIUM, "chromium", "chromium-browser")
    chromedriver = _browser_path(CHROMEDRIVER, "chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone_wav}", "--autoplay-policy=no-user-gesture-required",
                 "--window-size=1200,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# ---------------------------------------------------------------------------------------------------- helpers


def _wait(driver: Any, condition: Any, seconds: float, what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.1).until(condition)
    except TimeoutException:
        raise AssertionError(f"{what} within {seconds} s; page says: {_page_messages(driver)}; console: "
                             f"{_console(driver)}") from None


def _page_messages(driver: Any) -> dict[str, str]:
    ids = ("server-status", "models-error", "transcribe-status", "transcribe-error", "live-status", "live-error",
           "speak-status", "speak-error")
    return {i: t for i in ids if (t := driver.find_element("id", i).get_attribute("textContent").strip())}


def _console(driver: Any) -> list[str]:
    try:
        return [entry["message"] for entry in driver.get_log("browser")][-10:]
    except Exception:  # noqa: BLE001 - only a diagnostic
        return []


def _text(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).get_attribute("textContent").strip()


def _open_page(driver: Any, server: Any, key: str) -> str:
    """Load the page, use ``key`` (empty: none) and wait for its model list: "loaded" or "none" (an error)."""
    driver.get(server.url + "/")
    field = driver.find_element("id", "api-key")
    field.clear()
    if key:
        field.send_keys(key)
    driver.find_element("id", "key-save").click()  # the page's last model load is the one with this key
    return _wait(driver, lambda d: d.execute_script(
        "const s = document.body.dataset.models; return s === 'loaded' || s === 'none' ? s : null"), 30,
        "the model list")


def _select(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


# ---------------------------------------------------------------------------------------------------- tests


def test_page_is_public_and_self_contained(real_server) -> None:
    from urllib.request import urlopen

    with urlopen(real_server.url + "/", timeout=30) as page:  # no key: the page is public
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        html = page.read().decode()
    for element_id in ("api-key", "asr-model", "transcript", "partial", "captions", "voice", "speed", "player"):
        assert f'id="{element_id}"' in html
    assert "http://" not in html and "https://" not in html and "<script src" not in html  # nothing from elsewhere


def test_upload_and_record_show_the_transcript(browser, real_server, synth_speech) -> None:
    assert _open_page(browser, real_server, KEY) == "loaded"
    _select(browser, "asr-model", "whisper-tiny.en")
    browser.find_element("id", "audio-file").send_keys(str(synth_speech(SENTENCE)))
    browser.find_element("id", "transcribe-file").click()
    _wait(browser, lambda d: _text(d, "transcript"), 60, "a transcript")
    heard = _text(browser, "transcript")
    assert wer([SENTENCE], [heard]) <= 0.25, heard
    assert not browser.find_element("id", "transcribe-error").is_displayed()
    assert "s of audio" in _text(browser, "transcribe-status")

    # Record: the fake microphone's loop is 0.3 s silence + ~3 s speech + 2.5 s silence; 6 s hold it once
    browser.execute_script("document.getElementById('transcript').textContent = ''")
    browser.find_element("id", "record").click()
    _wait(browser, lambda d: "Recording… 6 s" in _text(d, "transcribe-status"), 20, "six seconds recorded")
    browser.find_element("id", "record").click()
    _wait(browser, lambda d: _text(d, "transcript"), 60, "a transcript of the recording")
    recorded = _text(browser, "transcript")
    assert "quick brown fox" in recorded.lower(), recorded
    assert "recording.wav" in _text(browser, "transcribe-status")


def test_live_captions_from_the_fake_microphone(browser, real_server) -> None:
    """The browser offers the key as a WebSocket subprotocol and streams to v1/stream/asr."""
    assert _open_page(browser, real_server, KEY) == "loaded"
    _select(browser, "live-model", LIVE_MODEL)
    browser.execute_script("""
        window.partials = [];
        new MutationObserver(() => { const t = document.getElementById('partial').textContent;
                                     if (t) window.partials.push(t); })
            .observe(document.getElementById('partial'), {childList: true, characterData: true, subtree: true});""")
    browser.find_element("id", "live-toggle").click()

    def good_caption(driver: Any) -> str | None:
        lines = [e.get_attribute("textContent") for e in driver.find_elements("css selector", "#captions li .text")]
        return next((line for line in lines if cer([SENTENCE], [line]) <= 0.3), None)

    caption = _wait(browser, good_caption, 30, f"a caption of {SENTENCE!r}")
    assert browser.execute_script("return window.partials.length") > 0, "no partial text was shown"
    assert "Listening" in _text(browser, "live-status")
    assert browser.execute_script("return document.body.dataset.captions") == "v1/stream/asr"
    browser.find_element("id", "live-toggle").click()  # stop: {"type": "end"}, the last finals, done
    _wait(browser, lambda d: _text(d, "live-status") == "Stopped.", 30, "the captions stopped")
    assert _text(browser, "live-toggle") == "Start captions"
    assert not browser.find_element("id", "live-error").is_displayed(), _text(browser, "live-error")
    assert caption


def _speak(driver: Any, text: str, speed: float) -> float:
    """Speak ``text`` at ``speed``; the player's duration in seconds once it has the audio."""
    box = driver.find_element("id", "speak-text")
    box.clear()
    box.send_keys(text)
    driver.execute_script("const s = document.getElementById('speed'); s.value = arguments[0];"
                          "s.dispatchEvent(new Event('input'));"
                          "document.getElementById('player').removeAttribute('src');", speed)
    driver.find_element("id", "speak").click()
    return _wait(driver, lambda d: d.execute_script(
        "const p = document.getElementById('player');"
        "return p.getAttribute('src') && isFinite(p.duration) && p.duration > 0 ? p.duration : null"), 60,
        "the player's audio")


def test_speak_fills_a_playable_player(browser, real_server) -> None:
    assert _open_page(browser, real_server, KEY) == "loaded"
    _select(browser, "voice", "slt")
    text = "Good evening, everyone. The weather today is mild and sunny."
    normal = _speak(browser, text, 1.0)
    assert normal > 0.5
    assert _text(browser, "speed-value") == "1.00×"
    assert browser.execute_script("return document.getElementById('player').getAttribute('src')").startswith("blob:")
    assert not browser.find_element("id", "speak-error").is_displayed()
    # it plays: autoplay is allowed here, so time moves (or it has already played to the end)
    _wait(browser, lambda d: d.execute_script(
        "const p = document.getElementById('player'); return p.currentTime > 0 || p.ended"), 20, "the audio playing")
    fast = _speak(browser, text, 2.0)
    assert _text(browser, "speed-value") == "2.00×"
    assert fast < 0.75 * normal, (fast, normal)


def test_wrong_key_shows_the_server_error(browser, real_server, synth_speech) -> None:
    assert _open_page(browser, real_server, "not-the-key") == "none"
    assert browser.find_element("id", "models-error").is_displayed()
    message = _text(browser, "models-error")
    assert "invalid or missing API key" in message and "refused" in message, message
    assert browser.execute_script("return localStorage.getItem('seqspeech.apiKey')") == "not-the-key"
    # a request anyway shows the server's own message where it was made
    browser.find_element("id", "audio-file").send_keys(str(synth_speech(SENTENCE)))
    browser.find_element("id", "transcribe-file").click()
    _wait(browser, lambda d: d.find_element("id", "transcribe-error").is_displayed(), 30, "the transcribe error")
    assert "invalid or missing API key" in _text(browser, "transcribe-error")
    assert _text(browser, "transcript") == ""
    browser.find_element("id", "live-toggle").click()
    _wait(browser, lambda d: d.find_element("id", "live-error").is_displayed(), 30, "the captions error")
    assert "check the API key" in _text(browser, "live-error")
    # the right key clears it
    assert _open_page(browser, real_server, KEY) == "loaded"
    assert not browser.find_element("id", "models-error").is_displayed()
