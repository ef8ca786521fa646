// Vigil's dashboard in the browser: local times, the live event stream, sections swapped in
// place, and actions through the JSON API. The pages work without it (plain forms and links);
// this only makes them live.
(function () {
  "use strict";

  const body = document.body;
  const root = body.dataset.root || "";
  const pageName = body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const intervalMs = Math.max(5, Number(body.dataset.interval) || 30) * 1000;
  // Relative times count from the server's clock, whatever the browser's says. The server
  // wrote its time as it sent the page: compare it with the browser's clock when the page's
  // answer arrived, not when this script runs (a slow load is not clock skew, and counting it
  // would put just-past times in the future).
  function answeredAt() {
    const [navigation] = performance.getEntriesByType ? performance.getEntriesByType("navigation") : [];
    if (navigation && navigation.responseStart > 0) return performance.timeOrigin + navigation.responseStart;
    return Date.now();
  }
  const serverNow = Date.parse(body.dataset.serverNow);
  const offset = Number.isNaN(serverNow) ? 0 : serverNow - answeredAt();
  const now = () => Date.now() + offset;
  const charts = window.VigilCharts || { drawIn() {}, destroyIn() {} };

  // -- times ----------------------------------------------------------------------------------

  const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const steps = [
    ["year", 31536000],
    ["month", 2592000],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];

  const FUTURE_MARGIN = 5; // seconds

  function relative(ms) {
    const seconds = (ms - now()) / 1000;
    // A time the server stamped a moment ago can be a little ahead of the estimate of its
    // clock (the network's delay): only a time clearly ahead is in the future.
    if (seconds > FUTURE_MARGIN && seconds < 45) return "in a few seconds";
    if (seconds > -45 && seconds <= FUTURE_MARGIN) return "just now";
    for (const [unit, size] of steps) {
      if (Math.abs(seconds) >= size || unit === "minute") {
        return relativeFormat.format(Math.round(seconds / size), unit);
      }
    }
    return "";
  }

  function showTimes(scope) {
    scope.querySelectorAll("time[data-time]").forEach((element) => {
      const at = Date.parse(element.getAttribute("datetime"));
      if (Number.isNaN(at)) return;
      element.textContent = relative(at) + " · " + absolute.format(at);
      element.title = new Date(at).toISOString().replace(".000Z", "Z") + " (UTC)";
    });
  }

  // -- notices --------------------------------------------------------------------------------

  const notices = document.getElementById("notices");

  // What the latest notice announces (an incident's card): the notices keep clear of it,
  // at the bottom of the window or, when it is there, at the top.
  let announced = null;

  function notice(text, kind, about) {
    if (!notices) return;
    const item = document.createElement("p");
    item.className = "notice" + (kind ? " notice-" + kind : "");
    item.textContent = text;
    notices.append(item);
    while (notices.children.length > 3) notices.firstElementChild.remove();
    if (about) announced = about;
    placeNotices();
    setTimeout(() => {
      item.remove();
      placeNotices();
    }, 7000);
  }

  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  function placeNotices() {
    if (!notices) return;
    if (!notices.children.length) {
      announced = null;
      notices.classList.remove("notices-top");
      return;
    }
    const target = announced ? document.getElementById(announced) : null;
    if (!target) return;
    const clash = () => overlaps(notices.getBoundingClientRect(), target.getBoundingClientRect());
    if (!clash()) return;
    notices.classList.toggle("notices-top");
    if (clash()) notices.classList.toggle("notices-top"); // in the way either side: stay put
  }

  let placing = null;
  ["scroll", "resize"].forEach((type) =>
    window.addEventListener(
      type,
      () => {
        if (placing === null) placing = requestAnimationFrame(() => ((placing = null), placeNotices()));
      },
      { passive: true },
    ),
  );

  const icons = { critical: "▲", warning: "◆", info: "●" };

  function describe(event) {
    const incident = event.incident;
    if (!incident) {
      if (event.kind.startsWith("rule.")) return ["Rule " + (event.rule || event.metric) + " " + event.kind.slice("rule.".length) + " by " + (event.by || "someone"), ""];
      if (event.kind === "leader.changed") return ["The monitor's leader changed", ""];
      if (event.kind === "snooze.started") return ["⏸ " + event.metric + " snoozed by " + event.by, ""];
      if (event.kind === "snooze.ended") return ["▶ " + event.metric + " is watched again", ""];
      if (event.kind.startsWith("channel.")) {
        const name = (event.data.channel && event.data.channel.name) || "?";
        const verb = event.kind.slice("channel.".length);
        return ["Channel " + name + " " + verb + (event.by ? " by " + event.by : ""), ""];
      }
      if (event.kind.startsWith("escalation.")) {
        const name = (event.data.policy && event.data.policy.name) || "?";
        const verb = event.kind.slice("escalation.".length);
        return ["Escalation policy " + name + " " + verb + (event.by ? " by " + event.by : ""), ""];
      }
      return null;
    }
    const icon = icons[incident.severity] || "";
    switch (event.kind) {
      case "incident.opened":
        return [icon + " New " + incident.severity + " incident: " + incident.message, incident.severity];
      case "incident.escalated":
        return ["▲ Escalated to critical: " + incident.message, "critical"];
      case "incident.acknowledged":
        return ["✔ Acknowledged by " + event.by + ": " + incident.message, ""];
      case "incident.resolved":
        return [event.by ? "✓ Resolved by " + event.by + ": " + incident.message : "↺ Recovered on its own: " + incident.message, "ok"];
      case "incident.flapping":
        return ["≈ Flapping, held open: " + incident.message, incident.severity];
      default:
        return null;
    }
  }

  // -- the JSON API ---------------------------------------------------------------------------

  async function api(method, path, payload) {
    const options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    };
    if (payload !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      return { ok: false, status: 0, error: { message: "The server cannot be reached; try again." } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401) signedOut();
    if (response.ok) return { ok: true, status: response.status, data: data };
    const problem = (data && data.error) || { message: "The server answered " + response.status + "." };
    return { ok: false, status: response.status, error: problem };
  }

  function signedOut() {
    setLive("offline", "Signed out");
    const path = location.pathname + location.search;
    location.assign(root + "/login?next=" + encodeURIComponent(path));
  }

  // -- sections -------------------------------------------------------------------------------

  function sectionUrl(name) {
    if (pageName === "alerts") return root + "/sections/alerts/" + name + location.search;
    if (pageName === "overview") return root + "/sections/overview/" + name;
    if (pageName === "silences") return root + "/sections/silences/" + name;
    if (pageName === "channels") return root + "/sections/channels/" + name;
    if (pageName === "escalations") return root + "/sections/escalations/" + name;
    if (pageName === "rules") return root + "/sections/rules/" + name;
    const section = document.querySelector('[data-section="incident"]');
    return section ? root + "/sections/incidents/" + section.dataset.incidentId : null;
  }

  function isControl(element) {
    return element && /^(INPUT|SELECT|TEXTAREA)$/.test(element.tagName);
  }

  function changed(element) {
    if (element.type === "checkbox" || element.type === "radio") return element.checked !== element.defaultChecked;
    if (element.tagName === "SELECT") return Array.from(element.options).some((o) => o.selected !== o.defaultSelected);
    if (element.type === "hidden" || element.type === "submit") return false;
    return element.value !== element.defaultValue;
  }

  // A keyed element (an incident, a rule row, a channel) that the user is in the middle of:
  // typing in it, with changes not yet saved, or with its edit form open.
  function busy(element) {
    if (element.classList.contains("dirty") || element.querySelector("details[open]")) return true;
    const focused = document.activeElement;
    if (isControl(focused) && focused.type !== "hidden" && element.contains(focused)) return true;
    return Array.from(element.querySelectorAll("input, select, textarea")).some(changed);
  }

  // Where keyboard focus goes once an acted-on element is swapped: back to it, or to its
  // section when it left (resolved).
  let focusAfter = null;

  const deferred = new Set();

  function swap(name, html) {
    const old = document.querySelector('[data-section="' + name + '"]');
    if (!old) return;
    const focused = document.activeElement;
    if (old.contains(focused) && isControl(focused) && !focused.closest("[data-key]")) {
      deferred.add(name); // the user is choosing a filter: swap when they leave it
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.querySelector('[data-section="' + name + '"]');
    if (!fresh) return;
    let keep = null;
    old.querySelectorAll("[data-key]").forEach((element) => {
      if (!busy(element)) return;
      const twin = fresh.querySelector('[data-key="' + CSS.escape(element.dataset.key) + '"]');
      if (!twin) return;
      if (element.contains(focused)) keep = { element: focused, start: focused.selectionStart, end: focused.selectionEnd };
      twin.replaceWith(element);
    });
    charts.destroyIn(old);
    old.replaceWith(fresh);
    if (focusAfter && focusAfter.section === name) {
      const target =
        (focusAfter.key && fresh.querySelector('[data-key="' + CSS.escape(focusAfter.key) + '"] a')) ||
        fresh.querySelector("h1, h2");
      focusAfter = null;
      if (target) {
        if (!target.hasAttribute("tabindex") && target.tagName !== "A") target.setAttribute("tabindex", "-1");
        target.focus();
      }
    }
    if (keep && document.contains(keep.element)) {
      keep.element.focus();
      try {
        keep.element.setSelectionRange(keep.start, keep.end);
      } catch (error) {
        // not a text field
      }
    }
    enhance(fresh);
  }

  document.addEventListener("focusout", () => {
    if (!deferred.size) return;
    setTimeout(() => {
      const names = Array.from(deferred);
      deferred.clear();
      refresh(names);
    }, 0);
  });

  const wanted = new Set();
  const running = new Set();
  let timer = null;

  function refresh(names) {
    names.forEach((name) => wanted.add(name));
    if (timer === null) timer = setTimeout(flush, 150);
  }

  function flush() {
    timer = null;
    const names = Array.from(wanted).filter((name) => !running.has(name));
    names.forEach((name) => wanted.delete(name));
    names.forEach(async (name) => {
      if (name === "header") return updateHeader();
      const url = sectionUrl(name);
      if (!url) return;
      running.add(name);
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (response.status === 401) return signedOut();
        if (response.ok) swap(name, await response.text());
      } catch (error) {
        // offline: the stream's reconnection refreshes everything
      } finally {
        running.delete(name);
        if (wanted.has(name) && timer === null) timer = setTimeout(flush, 150);
      }
    });
  }

  async function updateHeader() {
    const link = document.getElementById("open-count");
    if (!link) return;
    const result = await api("GET", root + "/api/alerts/summary");
    if (!result.ok || !result.data) return;
    const summary = result.data;
    const worst = ["critical", "warning", "info"].find((name) => summary[name] > 0);
    link.className = "open-count sev-" + (worst || "none");
    link.dataset.count = summary.total;
    link.querySelector(".icon").textContent = worst ? icons[worst] : "✓";
    link.querySelector(".open-count-text").textContent = summary.total
      ? summary.total + " open incident" + (summary.total === 1 ? "" : "s") + " · worst " + worst
      : "No open incidents";
    showCount(summary.total);
  }

  // The open incidents counted in the tab's title: a dashboard kept in a background tab.
  const baseTitle = (body.dataset.title ? body.dataset.title + " · " : "") + "Vigil";

  function showCount(total) {
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  }

  const everything = {
    alerts: ["summary", "active", "rules", "history", "recoveries", "frequency", "noisiest", ...groupSections()],
    overview: ["cards", "health", "latest"],
    incident: ["incident"],
    silences: ["snoozes", "windows"],
    channels: ["list", "deliveries"],
    escalations: ["list"],
  };
  // The noisiest rules too: a delivery makes no event, and open incidents' time grows.
  const periodic = {
    alerts: ["active", "rules", "noisiest"],
    overview: ["cards", "health"],
    incident: [],
    silences: ["snoozes", "windows"],
    channels: ["deliveries"],
    escalations: [],
  };

  // -- incident groups (the Alerts page's "groups" section) ---------------------------------

  // Which groups the reader has expanded: a refreshed section opens them again.
  const openGroups = new Set();

  function groupSections(event) {
    if (pageName !== "alerts") return [];
    return !event || event.incident ? ["groups"] : [];
  }

  function keepGroupsOpen(scope) {
    scope.querySelectorAll("details[data-group-id]").forEach((details) => {
      if (openGroups.has(details.dataset.groupId)) details.open = true;
      details.addEventListener("toggle", () => {
        if (details.open) openGroups.add(details.dataset.groupId);
        else openGroups.delete(details.dataset.groupId);
      });
    });
  }

  // Every incident event (flapping included) moves some rule's noise figures.
  function noisiestFor(event) {
    return pageName === "alerts" && event.incident ? ["noisiest"] : [];
  }

  function sectionsFor(event) {
    const names = [...groupSections(event), ...noisiestFor(event)];
    if (event.incident) {
      names.push("header");
      if (pageName === "alerts") {
        names.push("summary", "active", "history");
        if (event.kind === "incident.resolved") names.push("recoveries");
        if (event.kind === "incident.opened" || event.kind === "incident.escalated") names.push("frequency");
      } else if (pageName === "rules") {
        names.push("list");
      } else if (pageName === "overview") {
        names.push("latest", "cards");
      } else if (pageName === "incident") {
        const section = document.querySelector('[data-section="incident"]');
        if (section && section.dataset.incidentId === event.incident.id) names.push("incident");
      }
    } else if (event.kind.startsWith("incident.flapping")) {
      if (pageName === "rules") names.push("list"); // a series flapping with no incident open
    } else if (event.kind.startsWith("rule.")) {
      names.push(pageName === "alerts" ? "rules" : pageName === "rules" ? "list" : "cards");
    } else if (event.kind.startsWith("channel.")) {
      if (pageName === "channels" || pageName === "escalations") names.push("list");
    } else if (event.kind.startsWith("escalation.")) {
      if (pageName === "escalations") names.push("list");
    } else if (event.kind.startsWith("snooze.") || event.kind.startsWith("maintenance.")) {
      if (pageName === "alerts") names.push("rules");
      if (pageName === "silences") names.push(event.kind.startsWith("snooze.") ? "snoozes" : "windows");
    } else if (event.kind === "leader.changed" && pageName === "overview") {
      names.push("health");
    }
    return names;
  }

  // -- the live stream ------------------------------------------------------------------------

  const live = document.getElementById("live");
  const kinds = [
    "incident.opened",
    "incident.escalated",
    "incident.acknowledged",
    "incident.resolved",
    "incident.flapping",
    "incident.flapping_ended",
    "rule.created",
    "rule.changed",
    "rule.deleted",
    "snooze.started",
    "snooze.ended",
    "maintenance.added",
    "maintenance.removed",
    "channel.added",
    "channel.changed",
    "channel.removed",
    "escalation.added",
    "escalation.changed",
    "escalation.removed",
    "leader.changed",
  ];
  let lastId = Number(body.dataset.lastEventId) || 0;
  let source = null;
  let failures = 0;
  let wasDown = false;

  function setLive(state, text) {
    if (!live) return;
    live.dataset.state = state;
    live.querySelector(".live-text").textContent = text;
    live.title =
      state === "live"
        ? "Updates arrive as they happen."
        : "Not receiving updates right now; the page reconnects by itself.";
  }

  function onEvent(message) {
    const id = Number(message.lastEventId);
    if (id > lastId) lastId = id;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    const text = describe(event);
    if (text) notice(text[0], text[1], event.incident ? "incident-" + event.incident.id : null);
    refresh(sectionsFor(event));
  }

  function connect() {
    if (!window.EventSource) return setLive("static", "Reload for news");
    setLive("connecting", "Connecting…");
    // The page's data is as of lastId: the stream starts there, and the browser sends
    // Last-Event-ID itself when it reconnects.
    source = new EventSource(root + "/api/events?last_event_id=" + lastId);
    source.onopen = () => {
      failures = 0;
      setLive("live", "Live");
      if (wasDown) {
        wasDown = false;
        refresh(["header", ...everything[pageName]]); // what changed without an event
      }
    };
    source.onerror = () => {
      wasDown = true;
      failures += 1;
      if (source.readyState === EventSource.CLOSED) {
        // The server answered with an error (restarting, or the session ended): the browser
        // gives up on its own, so try again ourselves, from the last event seen.
        setLive("offline", "Offline · reconnecting");
        source.close();
        setTimeout(reconnect, Math.min(30000, 1000 * 2 ** Math.min(failures, 5)));
      } else {
        setLive("offline", "Offline · reconnecting");
      }
    };
    kinds.forEach((kind) => source.addEventListener(kind, onEvent));
  }

  async function reconnect() {
    const me = await api("GET", root + "/api/auth/me");
    if (me.status === 401) return; // signedOut() has taken over
    connect();
  }

  // -- actions --------------------------------------------------------------------------------

  const done = {
    acknowledge: "Incident acknowledged.",
    resolve: "Incident resolved.",
    "acknowledge-all": "Every active incident acknowledged.",
    "acknowledge-group": "Group acknowledged: each of its active incidents.",
  };

  async function act(form) {
    const buttons = form.querySelectorAll("button");
    const problem = form.closest(".actions, .section-head");
    const errorBox = problem ? problem.querySelector(".action-error") : null;
    const note = form.querySelector('[name="notes"]');
    const text = note ? note.value.trim() : "";
    buttons.forEach((button) => (button.disabled = true));
    const result = await api("POST", form.dataset.api, text ? { notes: text } : undefined);
    buttons.forEach((button) => (button.disabled = false));
    if (result.ok) {
      if (note) note.value = note.defaultValue = "";
      const keyed = form.closest("[data-key]");
      const section = form.closest("[data-section]");
      if (section && form.contains(document.activeElement)) {
        focusAfter = { key: keyed ? keyed.dataset.key : "", section: section.dataset.section };
        document.activeElement.blur(); // let the refreshed card replace this one
      }
      if (errorBox) errorBox.hidden = true;
      notice(done[form.dataset.action], "ok");
    } else if (errorBox) {
      errorBox.textContent = "✗ " + result.error.message;
      errorBox.hidden = false;
    } else {
      notice("✗ " + result.error.message, "critical");
    }
    refresh(["header", ...everything[pageName].filter((name) => name !== "rules" && name !== "cards")]);
  }

  // -- rules ----------------------------------------------------------------------------------

  const ruleFields = ["warning", "critical", "direction", "enabled"];
  const numberPattern = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

  function ruleControls(form) {
    return Array.from(form.elements).filter((element) => ruleFields.includes(element.name));
  }

  function valueOf(element) {
    return element.type === "checkbox" ? (element.checked ? "on" : "off") : element.value.trim();
  }

  function markDirty(form) {
    const row = form.closest("tr");
    const dirty = ruleControls(form).some((element) => valueOf(element) !== element.dataset.original);
    row.classList.toggle("dirty", dirty);
  }

  function ruleError(form, field, message) {
    const box = document.getElementById("rule-error-" + form.dataset.metric);
    ruleControls(form).forEach((element) => element.removeAttribute("aria-invalid"));
    if (!box) return;
    if (!message) {
      box.hidden = true;
      box.textContent = "";
      return;
    }
    box.textContent = "✗ " + message;
    box.hidden = false;
    const culprit = ruleControls(form).find((element) => element.name === field);
    if (culprit) {
      culprit.setAttribute("aria-invalid", "true");
      culprit.focus();
    }
  }

  async function saveRule(form) {
    const changes = {};
    for (const element of ruleControls(form)) {
      const value = valueOf(element);
      if (value === element.dataset.original) continue;
      if (element.name === "warning" || element.name === "critical") {
        const text = value.replace(",", ".");
        if (text === "") {
          changes[element.name] = null;
        } else if (numberPattern.test(text) && Number.isFinite(Number(text))) {
          changes[element.name] = Number(text);
        } else {
          return ruleError(form, element.name, element.name + ": " + JSON.stringify(value) + " is not a number");
        }
      } else if (element.name === "enabled") {
        changes.enabled = element.checked;
      } else {
        changes[element.name] = value;
      }
    }
    if (!Object.keys(changes).length) return markDirty(form);
    const button = form.querySelector(".save");
    button.disabled = true;
    const result = await api("PUT", form.dataset.api, changes);
    button.disabled = false;
    if (!result.ok) return ruleError(form, result.error.field, result.error.message);
    const rule = result.data;
    for (const element of ruleControls(form)) {
      const saved = rule[element.name];
      if (element.type === "checkbox") {
        element.dataset.original = saved ? "on" : "off";
        element.checked = element.defaultChecked = Boolean(saved);
      } else {
        const text = saved === null ? "" : String(saved);
        element.dataset.original = text;
        if (element.tagName === "SELECT") {
          Array.from(element.options).forEach((o) => (o.selected = o.defaultSelected = o.value === text));
        } else {
          element.value = element.defaultValue = text;
        }
      }
    }
    ruleError(form, null, null);
    markDirty(form);
    notice("✓ Saved " + rule.display_name + ".", "ok");
    refresh(["rules"]);
  }

  window.addEventListener("beforeunload", (event) => {
    if (document.querySelector("tr.rule.dirty")) {
      event.preventDefault();
      event.returnValue = ""; // older browsers show their own text
    }
  });

  // -- wiring ---------------------------------------------------------------------------------

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const action = form.dataset.action;
    if (!action || !form.dataset.api) return;
    event.preventDefault();
    if (action === "rule") saveRule(form);
    else act(form);
  });

  function ruleFormOf(target) {
    const form = target.form;
    return form && form.dataset.action === "rule" ? form : null;
  }

  ["input", "change"].forEach((type) =>
    document.addEventListener(type, (event) => {
      const form = ruleFormOf(event.target);
      if (form) markDirty(form);
    }),
  );

  document.addEventListener("reset", (event) => {
    const form = event.target;
    if (form.dataset.action !== "rule") return;
    setTimeout(() => {
      ruleControls(form).forEach((element) => {
        if (element.type === "checkbox") element.checked = element.dataset.original === "on";
        else element.value = element.dataset.original;
      });
      ruleError(form, null, null);
      markDirty(form);
    }, 0);
  });

  document.addEventListener("click", async (event) => {
    const link = event.target.closest("a[data-days]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    const url = new URL(link.href);
    history.replaceState(null, "", url.pathname + url.search + location.hash);
    refresh(["frequency", "noisiest"]); // one period for both
  });

  function enhance(scope) {
    showTimes(scope);
    keepGroupsOpen(scope);
    scope.querySelectorAll('form[data-action="rule"]').forEach(markDirty);
    charts.drawIn(scope);
    placeNotices(); // what they announce may just have arrived beneath them
  }

  function redrawCharts() {
    charts.destroyIn(document);
    charts.drawIn(document); // colours follow the scheme
  }

  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawCharts);
  document.addEventListener("vigil:theme", redrawCharts);

  enhance(document);
  setInterval(() => showTimes(document), 15000);
  setInterval(() => {
    if (document.visibilityState === "visible" && source && source.readyState === EventSource.OPEN) {
      refresh(periodic[pageName] || []);
    }
  }, intervalMs);
  connect();
})();
