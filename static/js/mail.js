/*
 * Reading mail, faster: keyboard shortcuts, a reading pane on wide screens, list
 * pages and actions without full page loads, the next message fetched ahead, and a
 * check for new mail. Every page works without this script; it only shortens the
 * way. Words shown to people come from the page (#mail-config, templates), so that
 * they are translated with the rest.
 */
(() => {
  "use strict";

  const config = document.getElementById("mail-config");
  if (!config || !window.fetch || !window.DOMParser) {
    return;
  }

  const layout = document.querySelector(".mail-layout");
  const wide = window.matchMedia("(min-width: 75rem)");
  const settings = config.dataset;
  const onListPage = () => document.getElementById("list-region") !== null;
  const bulkPath = new RegExp(
    "^" + settings.bulkPattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace("/0/", "/\\d+/") + "$"
  );

  const prefetched = new Map(); // message key -> article HTML fetched with peek=1
  let current = null; // the current row of the list
  let pane = null; // the reading pane (wide screens, list pages)
  let paneKey = null; // the message shown in the pane
  let shownPath = location.pathname + location.search; // what the page shows
  // All inboxes puts its unread count in front of the title itself.
  let baseTitle =
    settings.page === "all_inboxes" ? document.title.replace(/^\(\d+\)\s*/, "") : document.title;
  let titleUnread = 0;
  let state = "";
  let lastUnreadTotal = null;
  let polling = Boolean(settings.statusUrl);
  let pollTimer = 0;
  let lastPoll = 0;
  let lastAction = 0; // when this page last changed messages itself
  let stateSince = 0; // when the check that gave this state started

  // -------------------------------------------------------------- utilities

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function pathOf(url) {
    const u = new URL(url, location.href);
    return u.pathname + u.search;
  }

  function withParams(url, params) {
    const u = new URL(url, location.href);
    for (const [name, value] of Object.entries(params)) {
      u.searchParams.set(name, value);
    }
    return u.pathname + u.search;
  }

  /* One message, whatever the spelling of its URL: account path, folder, uid. */
  function keyOf(url) {
    const u = new URL(url, location.href);
    return [u.pathname, u.searchParams.get("folder"), u.searchParams.get("uid")].join("\n");
  }

  function rows() {
    return Array.from(document.querySelectorAll("#list-region tr[data-uid]"));
  }

  /* A row's message URL: its data-href, or else its link that opens the message. */
  function rowHref(row) {
    if (row.dataset.href) {
      return row.dataset.href;
    }
    const link = row.querySelector("a[data-open], a[href]");
    return link ? link.href : "";
  }

  function rowKey(row) {
    return keyOf(rowHref(row));
  }

  function findRow(url) {
    const key = keyOf(url);
    return rows().find((row) => rowKey(row) === key) || null;
  }

  function shownArticle() {
    if (onListPage()) {
      return pane && !pane.hidden ? pane.querySelector(".message-article") : null;
    }
    return document.querySelector("#message-region .message-article");
  }

  function listPath() {
    return location.pathname + location.search;
  }

  function setTitle() {
    document.title = titleUnread > 0 ? "(" + titleUnread + ") " + baseTitle : baseTitle;
  }

  /* A normal form submission: the way back when a fetch fails. */
  function submitNative(action, fields) {
    const form = document.createElement("form");
    form.setAttribute("method", "post");
    form.setAttribute("action", action);
    form.hidden = true;
    form.dataset.native = "1";
    for (const [name, value] of fields) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  }

  /* Let go of an answer that will not be read, so that it does not stay open. */
  function drop(response) {
    if (response.body && !response.bodyUsed) {
      response.body.cancel().catch(() => {});
    }
  }

  async function fetchPage(url, options) {
    const response = await fetch(url, { credentials: "same-origin", ...options });
    if (!response.ok) {
      drop(response);
      throw new Error("HTTP " + response.status);
    }
    return parse(await response.text());
  }

  /* POST an action on one message (a row or an article) to the bulk-action view. */
  function actionFields(target, action, next) {
    return [
      ["csrfmiddlewaretoken", csrfToken()],
      ["folder", target.dataset.folder],
      ["validity", target.dataset.validity],
      ["uids", target.dataset.uid],
      ["action", action],
      ["next", next],
    ];
  }

  function actionUrl(target) {
    return settings.bulkPattern.replace("/0/", "/" + target.dataset.account + "/");
  }

  async function postAction(url, fields, options = {}) {
    const body = new FormData();
    for (const [name, value] of fields) {
      body.append(name, value);
    }
    const response = await fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      ...options,
    });
    if (options.redirect === "manual") {
      drop(response);
      if (response.type !== "opaqueredirect" && !response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return null;
    }
    if (!response.ok) {
      drop(response);
      throw new Error("HTTP " + response.status);
    }
    return parse(await response.text());
  }

  // ------------------------------------------------------------- the list

  function select(row, scroll = true) {
    if (current && current !== row) {
      current.classList.remove("current");
      current.removeAttribute("aria-selected");
    }
    current = row;
    row.classList.add("current");
    row.setAttribute("aria-selected", "true");
    if (scroll) {
      row.scrollIntoView({ block: "nearest" });
    }
  }

  /* Put the list region of a fetched page in place of ours; keep the current row,
     and with ``keep`` the boxes ticked meanwhile (an answer to an earlier action). */
  function swapRegion(doc, keep = false) {
    const fresh = doc.getElementById("list-region");
    const region = document.getElementById("list-region");
    if (!fresh || !region) {
      return false;
    }
    if (keep) {
      const ticked = new Set(
        Array.from(region.querySelectorAll("input[name=uids]:checked"), (box) => box.value)
      );
      for (const box of fresh.querySelectorAll("input[name=uids]")) {
        box.checked = ticked.has(box.value);
      }
    }
    const list = rows();
    const key = current ? rowKey(current) : null;
    const index = current ? list.indexOf(current) : -1;
    region.replaceWith(document.adoptNode(fresh));
    current = null;
    const now = rows();
    const again =
      (key && now.find((row) => rowKey(row) === key)) ||
      (index >= 0 && now.length ? now[Math.min(index, now.length - 1)] : null);
    if (again) {
      select(again, false);
    }
    return true;
  }

  /* Show the list at ``url``. ``quiet``: a refresh nobody asked for, skipped
     while boxes are ticked; ``keep``: the ticked boxes stay ticked. */
  async function loadList(url, { push = false, quiet = false, keep = false } = {}) {
    try {
      const doc = await fetchPage(url);
      if (quiet && (hasSelection() || listPath() !== pathOf(url))) {
        return;
      }
      if (!swapRegion(doc, keep)) {
        throw new Error("no list in the answer");
      }
      if (push) {
        history.pushState({ mailList: true }, "", url);
      }
      shownPath = listPath();
      document.getElementById("new-mail-bar").hidden = true;
    } catch (error) {
      if (!quiet) {
        location.href = url;
      }
    }
  }

  function refreshList(options = {}) {
    return loadList(listPath(), { keep: true, ...options });
  }

  function isDefaultView() {
    const params = new URLSearchParams(location.search);
    return (
      ["", "1"].includes(params.get("page") || "") &&
      ["", "date"].includes(params.get("sort") || "") &&
      params.get("order") !== "asc" &&
      !params.get("q") &&
      !params.get("unread") &&
      !params.get("flagged")
    );
  }

  function hasSelection() {
    return document.querySelector("#list-region input[name=uids]:checked") !== null;
  }

  // ------------------------------------------------------ the reading pane

  function setupPane() {
    if (!layout || !onListPage()) {
      return;
    }
    if (!pane) {
      const template = document.getElementById("reading-pane-template");
      pane = template.content.firstElementChild.cloneNode(true);
      layout.append(pane);
    }
    pane.hidden = !wide.matches;
    layout.classList.toggle("with-pane", wide.matches);
  }

  function paneOpen() {
    return pane !== null && !pane.hidden;
  }

  function closePane() {
    if (!pane) {
      return;
    }
    const template = document.getElementById("reading-pane-template");
    pane.replaceChildren(...template.content.firstElementChild.cloneNode(true).childNodes);
    paneKey = null;
  }

  function articleOf(doc) {
    return doc.querySelector(".message-article");
  }

  function showInPane(doc) {
    const article = articleOf(doc);
    if (!article) {
      throw new Error("no message in the answer");
    }
    pane.replaceChildren(document.adoptNode(article));
    pane.scrollTop = 0;
    return article;
  }

  function markRowRead(url) {
    const row = findRow(url);
    if (row && settings.markRead) {
      row.classList.remove("unread");
    }
  }

  async function openInPane(url) {
    const key = keyOf(url);
    paneKey = key;
    const early = prefetched.get(key);
    try {
      if (early) {
        prefetched.delete(key);
        const article = showInPane(parse(early));
        if (settings.markRead) {
          postAction(actionUrl(article), actionFields(article, "read", listPath()), {
            redirect: "manual",
          }).catch(() => {});
        }
      } else {
        pane.setAttribute("aria-busy", "true");
        const doc = await fetchPage(withParams(url, { pane: "1" }));
        if (paneKey !== key) {
          return; // another message was asked for meanwhile
        }
        showInPane(doc);
      }
    } catch (error) {
      location.href = url;
      return;
    } finally {
      pane.removeAttribute("aria-busy");
    }
    markRowRead(url);
    prefetchAfter(findRow(url));
    checkAfterAction();
  }

  // ------------------------------------------------------------ prefetching

  function prefetch(url) {
    if (!url) {
      return;
    }
    const key = keyOf(url);
    if (prefetched.has(key)) {
      return;
    }
    const idle = window.requestIdleCallback || ((callback) => setTimeout(callback, 300));
    idle(async () => {
      try {
        const response = await fetch(withParams(url, { pane: "1", peek: "1" }), {
          credentials: "same-origin",
        });
        if (!response.ok) {
          drop(response);
          return;
        }
        const html = await response.text();
        if (articleOf(parse(html))) {
          prefetched.set(key, html);
          while (prefetched.size > 5) {
            prefetched.delete(prefetched.keys().next().value);
          }
        }
      } catch (error) {
        // Fetched normally when asked for.
      }
    });
  }

  function prefetchAfter(row) {
    if (!row) {
      return;
    }
    const list = rows();
    const next = list[list.indexOf(row) + 1];
    if (next) {
      prefetch(rowHref(next));
    }
  }

  function nextLink(rel) {
    const article = shownArticle();
    return article ? article.querySelector(".message-nav a[rel=" + rel + "]") : null;
  }

  /* The message page: show a fetched article in place of the current one. */
  function showOnPage(html, url) {
    const article = articleOf(parse(html));
    const region = document.getElementById("message-region");
    if (!article || !region) {
      location.href = url;
      return;
    }
    const heading = article.querySelector(".subject-heading");
    if (heading && heading.tagName !== "H1") {
      const h1 = document.createElement("h1");
      h1.id = heading.id;
      h1.className = heading.className;
      h1.textContent = heading.textContent;
      heading.replaceWith(h1);
    }
    region.replaceChildren(document.adoptNode(article));
    history.pushState({ mailMessage: true }, "", url);
    shownPath = listPath();
    const suffix = baseTitle.includes(" · ") ? baseTitle.slice(baseTitle.lastIndexOf(" · ")) : "";
    baseTitle = (heading ? heading.textContent.trim() : "") + suffix;
    setTitle();
    window.scrollTo(0, 0);
    if (settings.markRead) {
      postAction(actionUrl(article), actionFields(article, "read", url), {
        redirect: "manual",
      }).catch(() => {});
    }
    const next = nextLink("next");
    prefetch(next ? next.href : null);
  }

  // -------------------------------------------------------------- actions

  function move(step) {
    if (!onListPage()) {
      const link = nextLink(step > 0 ? "next" : "prev");
      if (!link) {
        return;
      }
      const early = prefetched.get(keyOf(link.href));
      if (early) {
        prefetched.delete(keyOf(link.href));
        showOnPage(early, pathOf(link.href));
      } else {
        location.href = link.href;
      }
      return;
    }
    const list = rows();
    if (!list.length) {
      return;
    }
    const index = current ? list.indexOf(current) : -1;
    const target =
      index < 0 ? list[0] : list[Math.max(0, Math.min(list.length - 1, index + step))];
    select(target);
    if (paneOpen() && paneKey !== null && rowKey(target) !== paneKey) {
      openInPane(rowHref(target));
    }
  }

  function open() {
    if (!current || !onListPage()) {
      return false;
    }
    if (paneOpen()) {
      openInPane(rowHref(current));
    } else {
      location.href = rowHref(current);
    }
    return true;
  }

  function back() {
    if (onListPage()) {
      if (paneOpen() && paneKey !== null) {
        closePane();
      }
      return;
    }
    const link = document.querySelector("#message-region a[data-back]");
    if (link) {
      location.href = link.href;
    }
  }

  function respond(kind) {
    const article = shownArticle();
    if (article) {
      const button = article.querySelector('button[name=kind][value="' + kind + '"]');
      if (button) {
        button.form.requestSubmit(button);
      }
      return;
    }
    if (current) {
      submitNative(settings.respondPattern.replace("/0/", "/" + current.dataset.account + "/"), [
        ["csrfmiddlewaretoken", csrfToken()],
        ["folder", current.dataset.folder],
        ["v", current.dataset.validity],
        ["uid", current.dataset.uid],
        ["kind", kind],
      ]);
    }
  }

  function compose() {
    const link = document.querySelector(".compose-link a");
    if (link) {
      location.href = link.href;
    }
  }

  function isFlagged(target) {
    return target.dataset.flagged === "1" || target.querySelector(".star.on") !== null;
  }

  /* An action on the message shown or on the current row, by fetch when possible. */
  async function act(action) {
    const article = shownArticle();
    if (article && !onListPage()) {
      return actOnPage(article, action);
    }
    const target = article || current;
    if (!target) {
      return;
    }
    const url = actionUrl(target);
    const inPane = target === article;
    let next = listPath();
    if (inPane && (action === "flag" || action === "unflag")) {
      next = withParams(target.dataset.href, { pane: "1" });
    }
    const fields = actionFields(target, action, next);
    try {
      const doc = await postAction(url, fields);
      if (inPane && next !== listPath()) {
        showInPane(doc);
        await refreshList();
      } else {
        if (!swapRegion(doc, true)) {
          throw new Error("no list in the answer");
        }
        if (inPane && action !== "read" && action !== "flag" && action !== "unflag") {
          closePane();
        }
      }
    } catch (error) {
      submitNative(url, actionFields(target, action, listPath()));
      return;
    }
    checkAfterAction();
  }

  async function actOnPage(article, action) {
    if (action === "flag" || action === "unflag") {
      try {
        const doc = await postAction(
          actionUrl(article),
          actionFields(article, action, article.dataset.href)
        );
        const fresh = articleOf(doc);
        if (!fresh) {
          throw new Error("no message in the answer");
        }
        document.getElementById("message-region").replaceChildren(document.adoptNode(fresh));
      } catch (error) {
        submitNative(actionUrl(article), actionFields(article, action, article.dataset.href));
      }
      return;
    }
    if (action === "read") {
      postAction(actionUrl(article), actionFields(article, action, article.dataset.href), {
        redirect: "manual",
      })
        .then(checkNow)
        .catch(() => {});
      return;
    }
    // Unread, delete: the message leaves the screen, back to the list.
    const button = article.querySelector('button[name=action][value="' + action + '"]');
    if (button) {
      button.form.requestSubmit(button);
    }
  }

  function toggleFlag() {
    const target = shownArticle() || current;
    if (target) {
      act(isFlagged(target) ? "unflag" : "flag");
    }
  }

  function focusSearch() {
    const search = document.querySelector("form.search input[type=search]");
    if (search) {
      search.focus();
      search.select();
    }
  }

  function toggleHelp() {
    const help = document.getElementById("key-help");
    if (!help) {
      return;
    }
    if (help.open) {
      help.close();
    } else {
      help.showModal();
    }
  }

  const keys = {
    j: () => move(1),
    k: () => move(-1),
    o: open,
    Enter: open,
    u: back,
    r: () => respond("reply"),
    a: () => respond("reply_all"),
    f: () => respond("forward"),
    c: compose,
    "#": () => act("delete"),
    s: toggleFlag,
    I: () => act("read"),
    U: () => act("unread"),
    "/": focusSearch,
    "?": toggleHelp,
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) {
      return;
    }
    const target = event.target;
    if (
      target.isContentEditable ||
      (target.closest && target.closest("input, textarea, select, [contenteditable]"))
    ) {
      return;
    }
    const help = document.getElementById("key-help");
    if (help && help.open && event.key !== "?") {
      return; // the dialog has the keyboard; Esc closes it
    }
    const handler = keys[event.key];
    if (!handler) {
      return;
    }
    if (event.key === "Enter" && target.closest && target.closest("a, button, summary")) {
      return;
    }
    if (handler() !== false) {
      event.preventDefault();
    }
  });

  // ----------------------------------------------------- clicks and forms

  document.addEventListener("click", (event) => {
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.ctrlKey ||
      event.metaKey ||
      event.shiftKey ||
      event.altKey
    ) {
      return;
    }
    const link = event.target.closest("a[href]");
    const region = document.getElementById("list-region");
    if (link && region && region.contains(link) && link.closest(".pager, thead")) {
      event.preventDefault();
      loadList(link.href, { push: true });
      return;
    }
    const row = event.target.closest("#list-region tr[data-uid]");
    if (row) {
      if (event.target.closest("input, label, button, select")) {
        return;
      }
      select(row, false);
      if (paneOpen()) {
        event.preventDefault();
        openInPane(rowHref(row));
      } else if (!link) {
        location.href = rowHref(row);
      }
      return;
    }
    if (link && pane && pane.contains(link)) {
      if (link.hasAttribute("data-back")) {
        event.preventDefault();
        closePane();
      } else if (link.rel === "next" || link.rel === "prev") {
        event.preventDefault();
        const target = findRow(link.href);
        if (target) {
          select(target);
        }
        openInPane(link.href);
      }
      return;
    }
    if (event.target.closest("[data-key-help]")) {
      toggleHelp();
      return;
    }
    if (event.target.closest("#new-mail-bar button")) {
      const first = new URL(location.pathname, location.href);
      if (settings.folder && settings.page !== "all_inboxes") {
        first.searchParams.set("folder", settings.folder);
      }
      loadList(first.pathname + first.search, { push: true });
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    // Read as attributes: the forms have controls named "action", which hide
    // the form's own action property.
    const target = new URL(form.getAttribute("action") || "", location.href);
    if (form.dataset.native || (form.getAttribute("method") || "").toLowerCase() !== "post") {
      return;
    }
    if (!bulkPath.test(target.pathname)) {
      return;
    }
    const region = document.getElementById("list-region");
    const inRegion = region && region.contains(form);
    const inPane = pane && pane.contains(form);
    if (!inRegion && !inPane) {
      return; // the message page: a normal submission is as good
    }
    event.preventDefault();
    const submitter = event.submitter;
    const body = new FormData(form, submitter);
    const action = body.get("action");
    const stays = inPane && (action === "flag" || action === "unflag");
    const article = inPane ? pane.querySelector(".message-article") : null;
    body.set("next", stays ? withParams(article.dataset.href, { pane: "1" }) : listPath());
    try {
      const response = await fetch(target, {
        method: "POST",
        body,
        credentials: "same-origin",
      });
      if (!response.ok) {
        drop(response);
        throw new Error("HTTP " + response.status);
      }
      const doc = parse(await response.text());
      if (stays) {
        showInPane(doc);
        await refreshList();
      } else {
        // The list's own form clears its selection; the pane's keeps the list's.
        if (!swapRegion(doc, Boolean(inPane))) {
          throw new Error("no list in the answer");
        }
        if (inPane) {
          closePane();
        }
      }
      checkAfterAction();
    } catch (error) {
      form.dataset.native = "1";
      form.requestSubmit(submitter && submitter.form === form ? submitter : null);
    }
  });

  window.addEventListener("popstate", () => {
    if (listPath() === shownPath) {
      return; // a jump inside the page (#folders), nothing to load
    }
    if (onListPage()) {
      loadList(listPath());
    } else {
      location.reload();
    }
  });

  // -------------------------------------------------------------- new mail

  function showNewMail() {
    if (onListPage() && isDefaultView() && !hasSelection()) {
      refreshList({ quiet: true });
    } else if (onListPage()) {
      document.getElementById("new-mail-bar").hidden = false;
    }
  }

  function applyStatus(data, startedAt) {
    if (Array.isArray(data.folders)) {
      for (const folder of data.folders) {
        const count = document.querySelector(
          '.folders .count[data-folder="' + CSS.escape(folder.name) + '"]'
        );
        if (count) {
          count.textContent = folder.unread ? String(folder.unread) : "";
          count.hidden = !folder.unread;
        }
      }
    }
    if (data.quota) {
      const bar = document.querySelector(".quota progress");
      if (bar) {
        bar.value = data.quota.percent;
        bar.textContent = data.quota.percent + "%";
        bar.closest(".quota").classList.toggle("warning", Boolean(data.quota.warning));
      }
    }
    if (Array.isArray(data.accounts)) {
      for (const account of data.accounts) {
        const count = document.querySelector(
          '.account-link .count[data-account="' + CSS.escape(String(account.id)) + '"]'
        );
        if (count) {
          count.textContent = account.inbox_unread ? String(account.inbox_unread) : "";
          count.hidden = !account.inbox_unread;
        }
      }
    }
    if (data.folder) {
      const first = state === "";
      // Changes since the state sent include this page's own actions after it.
      const ours = lastAction >= stateSince;
      state = data.folder.state || "";
      stateSince = startedAt;
      if (!first && data.folder.new > 0) {
        showNewMail();
      } else if (!first && data.folder.changed && !ours && onListPage() && !hasSelection()) {
        // Read, flagged or removed elsewhere (another device): the same page again.
        refreshList({ quiet: true });
      }
    }
    if (typeof data.unread_total === "number") {
      if (lastUnreadTotal !== null && data.unread_total > lastUnreadTotal) {
        showNewMail();
      }
      lastUnreadTotal = data.unread_total;
      titleUnread = data.unread_total;
    } else if (typeof data.title_unread === "number") {
      titleUnread = data.title_unread;
    }
    setTitle();
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!polling) {
      return;
    }
    const seconds = Math.max(1, Number(settings.pollSeconds) || 60);
    pollTimer = setTimeout(poll, seconds * 1000);
  }

  async function poll() {
    if (!polling) {
      return;
    }
    const startedAt = Date.now();
    lastPoll = startedAt;
    const url = new URL(settings.statusUrl, location.href);
    if (settings.page !== "all_inboxes") {
      url.searchParams.set("folder", settings.folder || "INBOX");
      if (state) {
        url.searchParams.set("state", state);
      }
    }
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        redirect: "manual",
        headers: { Accept: "application/json" },
      });
      if (
        response.type === "opaqueredirect" ||
        response.status === 401 ||
        response.status === 403
      ) {
        polling = false; // signed out: the next click shows the sign-in page
        return;
      }
      const type = response.headers.get("Content-Type") || "";
      if (response.ok && type.includes("json")) {
        applyStatus(await response.json(), startedAt);
      } else {
        drop(response); // mail server trouble: try again at the next turn
      }
    } catch (error) {
      // The server is unreachable for now: try again at the next turn.
    } finally {
      schedulePoll();
    }
  }

  function checkNow() {
    if (polling) {
      poll();
    }
  }

  /* After an action of ours: the list shown is already the changed one. */
  function checkAfterAction() {
    lastAction = Date.now();
    checkNow();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && Date.now() - lastPoll > 5000) {
      checkNow();
    }
  });

  // ----------------------------------------------------------------- start

  setupPane();
  wide.addEventListener("change", setupPane);
  for (const hint of document.querySelectorAll(".keys-hint")) {
    hint.hidden = false;
  }
  if (!onListPage()) {
    const next = nextLink("next");
    prefetch(next ? next.href : null);
  }
  checkNow();
})();
