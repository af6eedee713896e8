#!/usr/bin/python3
"""Check a generated HTML report in real headless Chromium via the DevTools Protocol.

Why: the report is a self-contained HTML file; unit tests of the generator cannot
see what a browser sees.  This script loads the file in headless Chromium and
fails (exit 1, one "FAIL: ..." line per problem) when
  * the page logs console errors/asserts, throws, or Chromium logs an error;
  * the page touches anything but its own file:// URL and data: URLs;
  * an <img> did not decode, or a top-level inline <svg> renders with zero size;
  * a comparison table (table.comparison[data-csv=REL]) disagrees with its CSV
    (REL = CSV path relative to the report's folder): cell count, one cell per
    row (matched on data-encoder, -source, -method, -setting, -metric), exact
    data-* values (absent for an empty field), visible 3-decimal text ("n/a"
    for an empty mean), and the "best" markers;
  * an --expect-text string is missing from document.body.innerText.
Optionally writes a PNG screenshot.  Needs only the stdlib + websocket-client.

Usage: check_report.py REPORT_HTML [--comparison CSV ...] [--expect-text TEXT ...]
       [--screenshot OUT.png] [--full-page] [--width 1400] [--height 1000] [--timeout 90]
"""
import argparse, base64, contextlib, csv, json, math, os, re, shutil, signal, subprocess
import sys, tempfile, time, urllib.parse, urllib.request
import websocket

CHROMIUM = "/usr/bin/chromium"
FIELDS = ["encoder", "method", "setting", "metric", "mean", "sd", "ci_low", "ci_high", "source"]
STATS = [("mean", "data-mean"), ("sd", "data-sd"), ("ci_low", "data-ci-low"), ("ci_high", "data-ci-high")]
COLLECT_JS = r"""(() => {
  const attrs = el => Object.fromEntries([...el.attributes].map(a => [a.name, a.value]));
  return {
    imgs: [...document.images].map(i => ({src: (i.getAttribute('src') || '').slice(0, 40),
      complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})),
    svgs: [...document.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg'))
      .map(s => { const r = s.getBoundingClientRect(); return {w: r.width, h: r.height, id: s.id}; }),
    text: document.body ? document.body.innerText : '',
    tables: [...document.querySelectorAll('table.comparison')].map(t => ({
      csv: t.getAttribute('data-csv'),
      cells: [...t.querySelectorAll('td[data-metric]')].map(td => ({
        attrs: attrs(td), best: td.classList.contains('best'), text: td.textContent}))}))
  };
})()"""


class Cdp:
    """Minimal CDP client: synchronous commands, every event kept in self.events."""

    def __init__(self, url, deadline):
        self.deadline, self.next_id, self.events = deadline, 0, []
        self.ws = websocket.create_connection(url, timeout=self.left(), suppress_origin=True)

    def left(self):
        rest = self.deadline - time.monotonic()
        if rest <= 0:
            raise TimeoutError("overall --timeout exceeded")
        return rest

    def _recv(self, limit):
        """Read one message (None on timeout); keep it in self.events if it is an event."""
        self.ws.settimeout(max(0.01, min(limit, self.left())))
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in msg:
            self.events.append(msg)
        return msg

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = self._recv(self.left())
            if msg and msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def wait_event(self, name):
        start = len(self.events)
        while not any(e["method"] == name for e in self.events[start:]):
            self._recv(self.left())

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._recv(end - time.monotonic())


def start_browser(opts, tmp, deadline):
    """Start Chromium in its own process group (stored in opts.proc so main() always
    kills it), wait for DevToolsActivePort and return the page target's websocket URL."""
    args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
            f"--user-data-dir={tmp}", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", f"--window-size={opts.width},{opts.height}",
            "about:blank"]
    log_path, port_file = os.path.join(tmp, "chromium.log"), os.path.join(tmp, "DevToolsActivePort")
    with open(log_path, "wb") as log:
        opts.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
    while True:
        if opts.proc.poll() is not None:
            with open(log_path, errors="replace") as log:
                raise RuntimeError(f"chromium exited with {opts.proc.returncode}: {log.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError("chromium did not start (no page target)")
        lines = open(port_file).read().split() if os.path.exists(port_file) else []
        if lines:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list", timeout=5) as r:
                    # Chromium 156 also lists "browser_ui" targets (omnibox popup): skip them.
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.05)


def remote_text(args):
    """Console arguments as text (primitive values, else the object description)."""
    return " ".join(str(a["value"]) if "value" in a else a.get("description", a.get("type", ""))
                    for a in args)


def norm_url(url):
    return urllib.parse.unquote(url.split("#")[0])


def check_events(events, report_url):
    fails, warnings, requests, urls = [], [], [], {}
    own = norm_url(report_url)
    for e in events:
        m, p = e["method"], e["params"]
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            fails.append(f"console.{p['type']}: {remote_text(p.get('args', []))}")
        elif m == "Runtime.consoleAPICalled" and p["type"] == "warning":
            warnings.append(remote_text(p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            desc = (d.get("exception", {}).get("description") or d.get("text", "")).split("\n")[0]
            fails.append(f"exception at {d.get('url', '?')}:{d.get('lineNumber', -1) + 1}: {desc}")
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            fails.append(f"log error ({p['entry'].get('source')}): {p['entry']['text']} {p['entry'].get('url', '')}")
        elif m == "Network.requestWillBeSent":
            url = urls[p["requestId"]] = p["request"]["url"]
            requests.append(url)
            if norm_url(url) != own and not url.startswith("data:"):
                fails.append(f"external request: {url}")
        elif m == "Network.loadingFailed":
            url = urls.get(p["requestId"], "?")
            if norm_url(url) != own and not url.startswith("data:"):
                fails.append(f"loading failed ({p.get('errorText')}): {url}")
    return fails, warnings, requests


def check_dom(dom):
    fails = [f"image not loaded: src={i['src']!r} complete={i['complete']} naturalWidth={i['w']}"
             for i in dom["imgs"] if not i["complete"] or i["w"] == 0]
    fails += [f"inline svg #{n} (id={s['id']!r}) has zero size {s['w']}x{s['h']}"
              for n, s in enumerate(dom["svgs"]) if s["w"] == 0 or s["h"] == 0]
    return fails


def same(text, value):
    """True when the attribute text parses to value (within 1e-12; NaN equals NaN)."""
    try:
        got = float(text)
    except ValueError:
        return False
    return (math.isnan(got) and math.isnan(value)) or math.isclose(got, value, rel_tol=1e-12, abs_tol=1e-12)


def check_table(csv_path, key, tables):
    """Compare one CSV with table.comparison[data-csv=key]; return FAIL messages."""
    where = f"comparison {key}"
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != FIELDS:
            return [f"{where}: CSV header {reader.fieldnames} != {FIELDS}"]
        rows = list(reader)
    found = [t for t in tables if t["csv"] == key]
    if len(found) != 1:
        return [f"{where}: expected 1 table.comparison[data-csv={key!r}], found {len(found)}"]
    cells, fails = found[0]["cells"], []
    if len(cells) != len(rows):
        fails.append(f"{where}: table has {len(cells)} td[data-metric] cells, CSV has {len(rows)} rows")
    keys = ("encoder", "method", "setting", "metric", "source")
    columns = {}
    for n, row in enumerate(rows, start=2):
        ident = "/".join(row[k] for k in keys)
        at = f"{where} line {n} ({ident})"
        match = [c for c in cells if all(c["attrs"].get("data-" + k) == row[k] for k in keys)]
        if len(match) != 1:
            fails.append(f"{at}: expected exactly 1 matching cell, found {len(match)}")
            continue
        cell = match[0]
        for name, attr in STATS:
            got = cell["attrs"].get(attr)
            if row[name].strip() == "":
                if got is not None:
                    fails.append(f"{at}: {attr}={got!r} present but CSV {name} is empty")
            elif got is None:
                fails.append(f"{at}: {attr} missing, CSV {name}={row[name]}")
            elif not same(got, float(row[name])):
                fails.append(f"{at}: {attr}={got} != CSV {name}={row[name]}")
        # Shown: the mean ("n/a" when empty), "± sd" when there is one, "[low, high]" when both bounds are.
        expect = [shown_number(row[name]) for name in ("mean", "sd") if row[name].strip()]
        if row["ci_low"].strip() and row["ci_high"].strip():
            expect += [shown_number(row["ci_low"]), shown_number(row["ci_high"])]
        shown = [x.lower() for x in re.findall(r"-?\d+\.\d+|nan", cell["text"], re.IGNORECASE)]
        if shown != expect:
            fails.append(f"{at}: cell text {cell['text'].strip()!r} shows {shown}, expected {expect}")
        mean = float(row["mean"]) if row["mean"].strip() else math.nan
        columns.setdefault((row["method"], row["setting"], row["metric"]), []).append(
            (mean, cell["best"], row["encoder"] + " (" + row["source"] + ")"))
    for col, entries in columns.items():
        means = [m for m, _, _ in entries if not math.isnan(m)]
        top = max(means) if means else None
        want = sorted(e for m, _, e in entries if m == top)
        have = sorted(e for _, b, e in entries if b)
        if want != have:
            fails.append(f"{where} column {'/'.join(col)}: class best on {have}, expected {want}")
    return fails


def shown_number(text):
    """A CSV value as the report shows it: 3 decimals, no negative zero (as C's printf after histoflow's fix)."""
    shown = f"{float(text):.3f}"
    return "0.000" if shown == "-0.000" else shown.lower()


def screenshot(cdp, path, full_page, width):
    params = {"format": "png"}
    if full_page:
        size = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
        params.update(captureBeyondViewport=True, clip={
            "x": 0, "y": 0, "width": max(width, math.ceil(size["width"])),
            "height": math.ceil(size["height"]), "scale": 1})
    with open(path, "wb") as f:
        f.write(base64.b64decode(cdp.call("Page.captureScreenshot", **params)["data"]))


def run(opts, tmp, deadline):
    report = os.path.abspath(opts.report)
    if not os.path.isfile(report):
        return [f"report not found: {report}"], {}
    url = "file://" + urllib.parse.quote(report)
    cdp = Cdp(start_browser(opts, tmp, deadline), deadline)
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(domain + ".enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=opts.width, height=opts.height,
             deviceScaleFactor=1, mobile=False)
    nav = cdp.call("Page.navigate", url=url)
    if nav.get("errorText"):
        return [f"navigation to {url} failed: {nav['errorText']}"], {}
    cdp.wait_event("Page.loadEventFired")
    cdp.pump(0.3)
    res = cdp.call("Runtime.evaluate", expression=COLLECT_JS, returnByValue=True)
    if "exceptionDetails" in res:
        return [f"collect script failed: {res['exceptionDetails']}"], {}
    dom = res["result"]["value"]
    fails, warnings, requests = check_events(cdp.events, url)
    fails += check_dom(dom)
    for path in opts.comparison:
        key = os.path.relpath(os.path.abspath(path), os.path.dirname(report))
        try:
            fails += check_table(path, key, dom["tables"])
        except (OSError, ValueError, KeyError) as e:  # unreadable or malformed CSV
            fails.append(f"comparison {key}: cannot check {path}: {type(e).__name__}: {e}")
    fails += [f"expected text not found: {t!r}" for t in opts.expect_text if t not in dom["text"]]
    for w in warnings:
        print(f"WARNING: console.warn: {w}")
    if opts.screenshot:
        screenshot(cdp, opts.screenshot, opts.full_page, opts.width)
    cdp.ws.close()
    return fails, {"images": len(dom["imgs"]), "svgs": len(dom["svgs"]), "requests": len(requests),
                   "console_errors": sum(f.startswith("console.") for f in fails),
                   "console_warnings": len(warnings), "tables_checked": len(opts.comparison),
                   "tables_found": len(dom["tables"])}


def on_sigterm(*_):
    raise RuntimeError("terminated by SIGTERM")


def stop(proc):
    """SIGTERM the browser (so it reaps its helpers), then SIGKILL the whole group."""
    if proc is None:
        return
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, renderer, gpu) share the group
    proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report", metavar="REPORT_HTML")
    ap.add_argument("--comparison", action="append", default=[], metavar="CSV")
    ap.add_argument("--expect-text", action="append", default=[], metavar="TEXT")
    ap.add_argument("--screenshot", metavar="OUT.png")
    ap.add_argument("--full-page", action="store_true", help="screenshot the whole document")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=90, help="overall limit in seconds")
    opts = ap.parse_args()
    opts.proc = None
    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = tempfile.mkdtemp(prefix="check_report.")
    start = time.monotonic()
    try:
        fails, summary = run(opts, tmp, start + opts.timeout)
    except Exception as e:  # report any crash of the checker as a failure, then clean up
        fails, summary = [f"{type(e).__name__}: {e}"], {}
    finally:
        stop(opts.proc)
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print("FAIL: " + f.replace("\n", " | "))
    summary["seconds"] = round(time.monotonic() - start, 2)
    if not fails:
        print(f"OK: {summary.get('images')} images, {summary.get('svgs')} svgs, "
              f"{summary.get('requests')} requests, {summary.get('tables_checked')} tables checked")
    print(json.dumps(summary, sort_keys=True))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
