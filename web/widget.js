/*
 * incidentd status widget: <incidentd-status tenant="acme" mode="banner|badge|list">.
 * One script, no framework, no cookies. It follows a published tenant's status
 * over server-sent events (polling the summary when they are unavailable) and
 * renders it in a shadow root that takes the page's colours from
 * --incidentd-* custom properties. Served by the hosted status page too, where
 * it refreshes the server-rendered parts live (data-incidentd-page).
 * See docs/widget.md.
 */
(() => {
  "use strict";
  // currentScript exists only while this file first runs: the default
  // server is the one the script came from.
  const script = document.currentScript;
  const scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;

  // Component statuses from best to worst, as the summary names them.
  const LEVELS = ["operational", "maintenance", "minor", "major", "outage"];
  const LABEL = {
    operational: "Operational", maintenance: "Under maintenance", minor: "Degraded performance",
    major: "Partial outage", outage: "Major outage",
  };
  const OVERALL = {
    operational: "All systems operational", maintenance: "Maintenance in progress", incident: "Incident in progress",
    minor: "Degraded performance", major: "Partial outage", outage: "Major outage", unavailable: "Status unavailable",
  };
  const TONE = {
    operational: "ok", maintenance: "info", incident: "warn", minor: "warn", major: "bad", outage: "bad", unavailable: "none",
  };
  const SOON = 24 * 3600e3; // a banner announces maintenance this far ahead
  const SSE_FAILURES = 3; // errors in a row before polling instead
  const SSE_RETRY = 5 * 60e3; // while polling, the stream is tried again this often
  const MAX_BACKOFF = 60e3;

  const backoff = (n, base) => Math.min(MAX_BACKOFF, base * 2 ** Math.min(n, 10)) * (0.5 + Math.random() / 2);
  const time = (s) => Date.parse(s);

  // overall reduces a summary to what a reader needs first; the hosted page
  // computes the same in Go (web/view.go).
  function overall(s, now) {
    let worst = 0;
    for (const c of s.components || []) worst = Math.max(worst, LEVELS.indexOf(c.status));
    const maint = s.maintenance || [];
    const active = maint.filter((m) => time(m.startsAt) <= now && now < time(m.endsAt));
    const soon = maint.filter((m) => time(m.startsAt) > now && time(m.startsAt) - now <= SOON);
    const incidents = s.openIncidents || [];
    let level = LEVELS[worst];
    if (worst <= 1 && incidents.length) level = "incident";
    else if (worst === 0 && active.length) level = "maintenance";
    return { level, text: OVERALL[level], tone: TONE[level], incidents, active, soon };
  }

  // fingerprint names what the hosted page shows, in the form the page
  // renders it into data-fingerprint, so a first frame equal to the page
  // costs no refresh.
  function fingerprint(s) {
    return [
      (s.components || []).map((c) => c.id + "=" + c.status).join(","),
      (s.openIncidents || []).map((i) => i.id + "@" + i.updatedAt + "#" + lastOrder((s.openIncidentUpdates || {})[i.id])).join(","),
      (s.maintenance || []).map((m) => m.id).join(","),
    ].join(";");
  }

  const lastOrder = (ups) => (ups && ups.length ? ups[ups.length - 1].order : 0);

  // A Feed is one connection per server and tenant, shared by every element
  // (and the page) that shows it.
  const feeds = new Map();

  function feedFor(origin, tenant, pollMs) {
    const key = origin + "\n" + tenant;
    let f = feeds.get(key);
    if (!f) {
      f = new Feed(origin, tenant, pollMs, () => feeds.delete(key));
      feeds.set(key, f);
    }
    // Polled at the shortest interval any of its viewers asked for.
    if (pollMs < f.pollMs) {
      f.pollMs = pollMs;
      if (f.timer && !f.es && !f.stopped) f.poll();
    }
    return f;
  }

  class Feed {
    constructor(origin, tenant, pollMs, forget) {
      this.url = origin + "/v1/public/" + encodeURIComponent(tenant) + "/status";
      this.pollMs = pollMs;
      this.forget = forget;
      this.subs = new Set();
      this.failures = 0;
      this.pollFailures = 0;
      this.data = undefined; // undefined: nothing yet; null: ended
      this.key = "";
    }

    add(fn) {
      if (this.subs.has(fn)) return;
      this.subs.add(fn);
      if (this.data !== undefined) fn(this.data, this.ended);
      if (this.subs.size === 1) this.start();
    }

    remove(fn) {
      this.subs.delete(fn);
      if (this.subs.size === 0) {
        this.stop();
        this.forget();
      }
    }

    start() {
      this.stopped = false;
      if (window.EventSource) this.stream();
      else this.poll();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      clearTimeout(this.sseTimer);
      if (this.es) this.es.close();
      this.es = null;
    }

    // end: the tenant unpublished (or the server says it is gone): show a
    // neutral state and stay quiet rather than retry.
    end() {
      this.stop();
      this.publish(null, true);
    }

    // publish hands a changed summary to every viewer; null is "unknown",
    // and ended says the tenant is gone for good.
    publish(s, ended) {
      const key = s ? JSON.stringify([s.components, s.openIncidents, s.openIncidentUpdates, s.maintenance]) : ended ? "ended" : "";
      if (this.data !== undefined && key === this.key) return;
      this.key = key;
      this.data = s;
      this.ended = !!ended;
      for (const fn of this.subs) fn(s, this.ended);
    }

    stream() {
      clearTimeout(this.timer);
      // No credentials: the public status is the same for everyone. The
      // browser sends Last-Event-ID itself when it reconnects.
      const es = (this.es = new EventSource(this.url + "/events"));
      es.onopen = () => {
        this.failures = 0;
      };
      es.addEventListener("status", (e) => {
        this.failures = 0;
        try {
          this.publish(JSON.parse(e.data));
        } catch (_) {
          /* a frame we cannot read: wait for the next */
        }
      });
      es.addEventListener("end", () => this.end());
      es.onerror = () => {
        if (this.stopped || es !== this.es) return;
        this.failures++;
        // Show something meanwhile: one read of the summary (a 404 there
        // means unpublished, and ends the feed).
        if (this.data === undefined && this.failures === 1) this.read().catch(() => {});
        if (this.failures >= SSE_FAILURES) {
          // Streams keep failing (a proxy that buffers, an old server):
          // poll, and try the stream again now and then.
          es.close();
          this.es = null;
          this.poll();
          this.sseTimer = setTimeout(() => {
            this.failures = 0;
            if (!this.stopped) this.stream();
          }, SSE_RETRY);
        } else if (es.readyState === EventSource.CLOSED) {
          // The browser gave up (a refused or broken answer): retry later.
          this.es = null;
          this.timer = setTimeout(() => !this.stopped && this.stream(), backoff(this.failures, 1000));
        }
        // Otherwise the browser reconnects on its own, resuming after the
        // last event id it saw.
      };
    }

    // read fetches the summary once.
    async read() {
      // no-cache: the browser revalidates with If-None-Match against the
      // copy it holds (the summary carries an ETag), so an unchanged summary
      // costs a 304; setting the header here instead would make a
      // cross-origin request need a preflight.
      const r = await fetch(this.url, { cache: "no-cache", credentials: "omit", mode: "cors" });
      if (r.status === 404) return this.end();
      if (!r.ok) throw new Error("status " + r.status);
      const s = await r.json();
      if (!this.stopped) this.publish(s);
    }

    async poll() {
      clearTimeout(this.timer);
      if (this.stopped || this.es) return;
      let failed = false;
      try {
        await this.read();
        this.pollFailures = 0;
      } catch (_) {
        failed = true;
      }
      // The interval is read after the request: a viewer that joined
      // meanwhile may have asked for a shorter one.
      let delay = this.pollMs;
      if (failed) {
        delay = Math.max(delay, backoff(this.pollFailures++, 1000));
        // Failing reads look alike from here (a cross-origin 404 of a tenant
        // that unpublished is unreadable too): say the status is unknown
        // rather than show an old one, and keep trying, slowly.
        if (this.pollFailures >= 2 && this.data !== null) this.publish(null, false);
      }
      if (!this.stopped && !this.es) this.timer = setTimeout(() => this.poll(), delay);
    }
  }

  const CSS = `
:host{--_bg:var(--incidentd-bg,#fff);--_fg:var(--incidentd-fg,#1d2127);--_muted:var(--incidentd-muted,#5c6670);
--_ok:var(--incidentd-ok,#1a7f37);--_info:var(--incidentd-info,#0969da);--_warn:var(--incidentd-warn,#9a6700);
--_bad:var(--incidentd-bad,#cf222e);--_none:var(--_muted);--_border:var(--incidentd-border,#d0d7de);
display:block;position:relative;font:var(--incidentd-font,14px/1.4 system-ui,sans-serif);color:var(--_fg)}
@media (prefers-color-scheme:dark){:host{--_bg:var(--incidentd-bg,#16191d);--_fg:var(--incidentd-fg,#e6edf3);
--_muted:var(--incidentd-muted,#9aa4ae);--_ok:var(--incidentd-ok,#3fb950);--_info:var(--incidentd-info,#58a6ff);
--_warn:var(--incidentd-warn,#d29922);--_bad:var(--incidentd-bad,#f85149);--_border:var(--incidentd-border,#30363d)}}
:host([mode=badge]){display:inline-block}
[hidden]{display:none!important}
.sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.box{background:var(--_bg);border:1px solid var(--_border);border-radius:6px;padding:.6em .8em}
.banner{border-left:4px solid var(--_t)}
.badge{display:inline-flex;align-items:center;gap:.45em;padding:.2em .7em;border-radius:999px;color:inherit;text-decoration:none}
.dot{width:.7em;height:.7em;border-radius:50%;background:var(--_t);flex:none}
.ok{--_t:var(--_ok)}.info{--_t:var(--_info)}.warn{--_t:var(--_warn)}.bad{--_t:var(--_bad)}.none{--_t:var(--_none)}
.head{display:flex;align-items:center;gap:.5em;font-weight:600}
ul{list-style:none;margin:.4em 0 0;padding:0}
li{display:flex;justify-content:space-between;gap:1em;padding:.25em 0;border-top:1px solid var(--_border)}
li.item{display:block;border:0;padding:.15em 0}
h3{font-size:.85em;margin:.8em 0 .2em;color:var(--_muted);text-transform:uppercase;letter-spacing:.04em}
.st{color:var(--_t);white-space:nowrap}
.muted{color:var(--_muted);font-size:.9em}
a{color:inherit}`;

  let sheet = null;
  function style(root) {
    // A constructed sheet is not subject to the host page's style-src CSP
    // (a <style> element would be); the element is the fallback.
    try {
      sheet = sheet || new CSSStyleSheet();
      if (!sheet.cssRules.length) sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (_) {
      const el = document.createElement("style");
      el.textContent = CSS;
      root.append(el);
    }
  }

  // h builds an element; text is always set as text, never parsed as HTML.
  function h(tag, cls, ...kids) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    for (const k of kids) if (k != null) el.append(k);
    return el;
  }

  const when = (s) => {
    const d = new Date(s);
    return isNaN(d) ? "" : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  };

  class StatusElement extends HTMLElement {
    static get observedAttributes() {
      return ["tenant", "mode", "src", "group-by", "poll-interval"];
    }

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      style(root);
      this._view = h("div");
      // Changes are read out politely; the region stays in place (visually
      // hidden) while a banner hides, so a recovery is announced too.
      this._live = h("div", "sr");
      this._live.setAttribute("role", "status");
      this._live.setAttribute("aria-live", "polite");
      this._live.setAttribute("aria-atomic", "true");
      this._live.setAttribute("part", "live");
      root.append(this._view, this._live);
      this._data = undefined;
      this._onData = (s) => {
        this._data = s;
        this._render();
      };
    }

    connectedCallback() {
      this._sync();
    }

    disconnectedCallback() {
      this._unsubscribe();
    }

    attributeChangedCallback() {
      if (this.isConnected) this._sync();
    }

    // state is the overall status shown ("operational", "minor", ...,
    // "unavailable"), "" until the first answer.
    get state() {
      return this._state || "";
    }

    get _mode() {
      const m = this.getAttribute("mode");
      return m === "badge" || m === "list" ? m : "banner";
    }

    get _origin() {
      try {
        return new URL(this.getAttribute("src") || scriptOrigin, location.href).origin;
      } catch (_) {
        return scriptOrigin;
      }
    }

    // _sync follows the feed the attributes name. An upgrade reports each
    // attribute and then the connection: only a change of server, tenant or
    // interval changes the subscription; mode and grouping only render.
    _sync() {
      const tenant = this.getAttribute("tenant");
      const poll = Math.max(1, Number(this.getAttribute("poll-interval")) || 30) * 1000;
      const key = tenant ? this._origin + "\n" + tenant + "\n" + poll : "";
      if (key === this._key) {
        if (this._data !== undefined) this._render();
        return;
      }
      this._unsubscribe();
      this._key = key;
      if (!tenant) return;
      this._feed = feedFor(this._origin, tenant, poll);
      this._feed.add(this._onData);
    }

    _unsubscribe() {
      clearTimeout(this._tick);
      if (this._feed) this._feed.remove(this._onData);
      this._feed = null;
      this._key = "";
      this._data = undefined;
    }

    _render() {
      clearTimeout(this._tick);
      const s = this._data;
      const now = Date.now();
      const o = s ? overall(s, now) : { level: "unavailable", text: OVERALL.unavailable, tone: "none", incidents: [], active: [], soon: [] };
      const page = this._origin + "/status/" + encodeURIComponent(this.getAttribute("tenant"));
      const mode = this._mode;
      let view;
      if (mode === "badge") view = this._badge(o, page);
      else if (mode === "list") view = this._list(s, o);
      else view = this._banner(o, page);
      this._view.replaceChildren(view);

      let say = o.text;
      if (o.incidents.length) say += ": " + o.incidents.map((i) => i.title).join("; ");
      if (this._live.textContent !== say) this._live.textContent = say;
      const changed = this._state !== o.level;
      this._state = o.level;
      this.setAttribute("data-state", o.level);
      if (changed) this.dispatchEvent(new CustomEvent("incidentd-status", { detail: { state: o.level, text: o.text }, bubbles: true }));

      // Maintenance starts and ends without news from the server: render
      // again at the next boundary.
      if (s) {
        let next = Infinity;
        for (const m of s.maintenance || []) {
          for (const t of [time(m.startsAt) - SOON, time(m.startsAt), time(m.endsAt)]) if (t > now) next = Math.min(next, t);
        }
        if (next < Infinity) this._tick = setTimeout(() => this._render(), Math.min(next - now + 50, 2 ** 31 - 1));
      }
    }

    _badge(o, page) {
      const a = h("a", "badge box " + o.tone, h("span", "dot"), h("span", "text", o.text));
      a.href = page;
      a.target = "_blank";
      a.rel = "noopener";
      a.setAttribute("part", "badge");
      return a;
    }

    _banner(o, page) {
      const b = h("div", "banner box " + o.tone);
      b.setAttribute("part", "banner");
      // Hidden while all is well, unless maintenance is near.
      b.hidden = o.level === "unavailable" || (o.level === "operational" && !o.soon.length);
      const items = h("ul");
      for (const i of o.incidents) items.append(h("li", "item", i.title, h("span", "muted", " — " + i.status)));
      for (const m of o.active) items.append(h("li", "item", "Maintenance in progress: " + m.description, h("span", "muted", " — until " + when(m.endsAt))));
      for (const m of o.soon) items.append(h("li", "item", "Scheduled maintenance: " + m.description, h("span", "muted", " — " + when(m.startsAt))));
      const link = h("a", "muted", "Status page");
      link.href = page;
      link.target = "_blank";
      link.rel = "noopener";
      b.append(h("div", "head", h("span", "dot"), h("span", "text", o.level === "operational" ? "Scheduled maintenance" : o.text)), items, link);
      return b;
    }

    _list(s, o) {
      const box = h("div", "list box " + o.tone);
      box.setAttribute("part", "list");
      box.append(h("div", "head", h("span", "dot"), h("span", "text", o.text)));
      if (!s) return box;
      const key = this.getAttribute("group-by") || "group";
      const groups = new Map();
      for (const c of s.components || []) {
        const g = (c.labels && c.labels[key]) || "";
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(c);
      }
      // Named groups first, alphabetically; ungrouped components last.
      const names = [...groups.keys()].sort((a, b) => (a === "") - (b === "") || a.localeCompare(b));
      for (const g of names) {
        if (g !== "" || names.length > 1) box.append(h("h3", "", g || "Other"));
        const ul = h("ul");
        for (const c of groups.get(g)) {
          const lvl = LEVELS.includes(c.status) ? c.status : "operational";
          ul.append(h("li", "", h("span", "name", c.displayName), h("span", "st " + TONE[lvl], LABEL[lvl])));
        }
        box.append(ul);
      }
      return box;
    }
  }

  if (window.customElements && !customElements.get("incidentd-status")) customElements.define("incidentd-status", StatusElement);

  // The hosted page: its HTML is complete without this script; with it, the
  // dynamic parts are fetched again when the status changes.
  function enhance() {
    const live = document.querySelector("[data-incidentd-live]");
    if (!live || !window.fetch || !window.DOMParser) return;
    const tenant = live.getAttribute("data-tenant");
    const announce = document.getElementById("incidentd-announce");
    let shown = live.getAttribute("data-fingerprint");
    let busy = false;
    let again = false;
    let refreshes = 0;
    const refresh = async () => {
      // Counted where a reader (and the browser test) can see it.
      document.documentElement.setAttribute("data-incidentd-refreshes", String(++refreshes));
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        const r = await fetch(location.href, { cache: "no-cache", credentials: "same-origin" });
        if (r.ok) {
          const doc = new DOMParser().parseFromString(await r.text(), "text/html");
          const fresh = doc.querySelector("[data-incidentd-live]");
          const cur = document.querySelector("[data-incidentd-live]");
          if (fresh && cur) {
            cur.replaceWith(document.adoptNode(fresh));
            const o = fresh.querySelector("[data-overall]");
            if (announce && o) announce.textContent = o.textContent.trim();
          }
        }
      } catch (_) {
        /* the next change tries again */
      } finally {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      }
    };
    const poll = Math.max(5, Number(live.getAttribute("data-poll-interval")) || 30) * 1000;
    feedFor(location.origin, tenant, poll).add((s, ended) => {
      if (ended) {
        // Unpublished: the page is gone; reloading shows that (once: the
        // answer carries no script).
        location.reload();
        return;
      }
      document.documentElement.setAttribute("data-incidentd", s ? "live" : "unknown");
      if (!s) return; // the server is away: keep what the page shows
      const fp = fingerprint(s);
      if (fp === shown) return;
      shown = fp;
      refresh();
    });
  }

  if (script && script.hasAttribute("data-incidentd-page")) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", enhance);
    else enhance();
  }
})();
