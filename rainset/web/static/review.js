// rainset review page: plain JS, no build step, no network beyond this page's own server.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const $ = (id) => document.getElementById(id);
  const GAIN = 4;

  const st = {
    board: null, version: -1, selected: null, frame: 0, diff: false, compare: false,
    wipe: 0.5, scale: 1, ox: 0, oy: 0, fitted: false, tier: 0, advance: false, busy: false, minVersion: 0,
  };
  const images = new Map(); // url -> {img, ready}
  const diffCache = new Map(); // "rainyUrl|cleanUrl" -> canvas

  function url(path) { return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token); }
  function imageUrl(item, kind, index) {
    return url(`/api/image/${item.id}/${kind}` + (index === undefined ? "" : `/${index}`));
  }
  function load(src) {
    let e = images.get(src);
    if (!e) {
      e = { img: new Image(), ready: false, failed: false };
      e.img.onload = () => { e.ready = true; if (!st.fitted) fit(); draw(); };
      e.img.onerror = () => { e.failed = true; draw(); };
      e.img.src = src;
      images.set(src, e);
      if (images.size > 200) { const k = images.keys().next().value; images.delete(k); }
    }
    return e;
  }

  // --- state ----------------------------------------------------------------------------
  function items() { return st.board ? st.board.items : []; }
  function byId(id) { return items().find((i) => i.id === id) || null; }
  function current() { return byId(st.selected); }
  function latest() { return items().filter((i) => !i.history && i.replaced_by === null); }
  function firstPending() { return latest().find((i) => i.status === "pending") || null; }

  async function poll() {
    for (;;) {
      try {
        const r = await fetch(url(`/api/state?since=${st.version}`), { cache: "no-store" });
        if (r.status === 403) { setStatus("403: wrong or missing token"); return; }
        const data = await r.json();
        if (data.version < st.minVersion) continue; // sent before our own decision: stale
        apply(data);
        if (data.finished && st.board.final) { setStatus(data.done_note || "finished: every window is decided"); }
      } catch (e) {
        setStatus(st.board && st.board.finished ? (st.board.done_note || "finished") : "disconnected; retrying");
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  }

  function apply(data) {
    st.board = data; st.version = data.version;
    let cur = current();
    while (cur && cur.replaced_by) cur = byId(cur.replaced_by);
    if (cur && cur.id !== st.selected) { select(cur.id, true); }
    if (!cur || (st.advance && cur.status !== "pending")) {
      const p = firstPending() || (cur ? null : latest()[0]);
      if (p) { select(p.id, false); st.advance = false; }
    }
    render();
  }

  function select(id, keepView) {
    const before = current();
    st.selected = id;
    const it = current();
    if (!keepView || !before || !it || before.figures.width !== it.figures.width) st.fitted = false;
    st.frame = 0; st.compare = false;
    if (it && it.tiers.length) st.tier = Math.min(st.tier, it.tiers.length - 1);
    render();
  }

  // --- decisions -------------------------------------------------------------------------
  async function decide(action, reason) {
    const it = current();
    if (!it || st.busy) return;
    if (st.board.mode === "tiers" && action === "accept") reason = it.tiers[st.tier];
    st.busy = true;
    try {
      const r = await fetch(url("/api/decide"), {
        method: "POST", headers: { "Content-Type": "application/json", "X-Rainset-Token": token },
        body: JSON.stringify({ id: it.id, action: action, reason: reason || "", rev: it.rev }),
      });
      const body = await r.json();
      say(body.ok ? `${it.key}: ${action}` : `${it.key}: not changed: ${body.message}`);
      st.advance = body.ok;
      if (body.item) { Object.assign(it, body.item); }
      if (body.version) st.minVersion = Math.max(st.minVersion, body.version);
      render();
    } finally { st.busy = false; }
  }
  function askReason() {
    $("reason-box").hidden = false; $("reason").value = ""; $("reason").focus();
  }
  function closeReason() { $("reason-box").hidden = true; $("reason").blur(); }

  // --- views ----------------------------------------------------------------------------
  // Each view: {el, canvas, label, sources: () => [{img, clipFrom}]}; all share one transform:
  // screen = image * scale + offset (CSS pixels within the view).
  let views = [];
  function viewSpecs() {
    const it = current();
    if (!it) return [];
    if (st.board.mode === "tiers") {
      const specs = [{ name: "clean", src: imageUrl(it, "clean") }];
      it.tiers.forEach((t, k) => specs.push({ name: `tier ${t}`, src: imageUrl(it, "tier", t), tier: k }));
      return specs;
    }
    const prev = it.prev ? byId(it.prev) : null;
    const rainy = it.frames > 0 ? imageUrl(it, "rainy", st.frame) : null;
    const clean = imageUrl(it, "clean");
    let left;
    if (st.compare && prev) left = { name: `clean N=${prev.n} (previous)`, src: imageUrl(prev, "clean") };
    else if (st.diff && rainy) left = { name: `|rainy - clean| x${GAIN}`, diff: [rainy, clean] };
    else left = { name: rainy ? `rainy frame ${st.frame + 1}/${it.frames}` : "no rainy frame", src: rainy };
    const sheet = it.figures.sheet ? " (preview sheet: the clean image is not in the dataset)"
      : it.figures.earlier ? " (decided in an earlier run: no image kept)"
      : it.figures.released ? " (released from memory; accepted windows are in the dataset)" : "";
    return [left, { name: `clean N=${it.n}${sheet}` + (rainy ? " | wipe: rainy left of the line" : ""), src: clean, wipe: rainy }];
  }

  function buildViews() {
    const specs = viewSpecs();
    const box = $("views");
    if (views.length !== specs.length) {
      box.innerHTML = "";
      views = specs.map((_, k) => {
        const el = document.createElement("div"); el.className = "view"; el.dataset.view = k;
        const canvas = document.createElement("canvas");
        const label = document.createElement("div"); label.className = "label";
        const line = document.createElement("div"); line.className = "wipe-line"; line.hidden = true;
        el.append(canvas, label, line); box.append(el);
        attachPanZoom(el);
        return { el, canvas, label, line };
      });
    }
    specs.forEach((s, k) => { views[k].spec = s; views[k].label.textContent = s.name; });
  }

  function diffImage(rainyUrl, cleanUrl) {
    const key = rainyUrl + "|" + cleanUrl;
    if (diffCache.has(key)) return diffCache.get(key);
    const a = load(rainyUrl), b = load(cleanUrl);
    if (!a.ready || !b.ready) return null;
    const w = b.img.naturalWidth, h = b.img.naturalHeight;
    const c = document.createElement("canvas"); c.width = w; c.height = h;
    const ctx = c.getContext("2d");
    ctx.drawImage(a.img, 0, 0); const da = ctx.getImageData(0, 0, w, h);
    ctx.drawImage(b.img, 0, 0); const db = ctx.getImageData(0, 0, w, h);
    const out = ctx.createImageData(w, h);
    for (let p = 0; p < da.data.length; p += 4) {
      const m = Math.max(Math.abs(da.data[p] - db.data[p]), Math.abs(da.data[p + 1] - db.data[p + 1]),
                         Math.abs(da.data[p + 2] - db.data[p + 2]));
      const v = Math.min(255, m * GAIN);
      out.data[p] = out.data[p + 1] = out.data[p + 2] = v; out.data[p + 3] = 255;
    }
    ctx.putImageData(out, 0, 0);
    if (diffCache.size > 8) diffCache.delete(diffCache.keys().next().value);
    diffCache.set(key, c);
    return c;
  }

  function imageSize() {
    const it = current();
    if (!it) return null;
    if (it.figures.width) return [it.figures.width, it.figures.height];
    const e = images.get(imageUrl(it, "clean"));
    return e && e.ready ? [e.img.naturalWidth, e.img.naturalHeight] : null;
  }

  function fit() {
    const size = imageSize();
    if (!size || !views.length) return;
    const r = views[0].el.getBoundingClientRect();
    if (!r.width || !r.height) return;
    st.scale = Math.min(r.width / size[0], r.height / size[1]);
    st.ox = (r.width - size[0] * st.scale) / 2; st.oy = (r.height - size[1] * st.scale) / 2;
    st.fitted = true;
  }
  function oneToOne() {
    const size = imageSize(); if (!size || !views.length) return;
    const r = views[0].el.getBoundingClientRect();
    // keep the image point at the view centre where it is
    const cx = (r.width / 2 - st.ox) / st.scale, cy = (r.height / 2 - st.oy) / st.scale;
    st.scale = 1; st.ox = Math.round(r.width / 2 - cx); st.oy = Math.round(r.height / 2 - cy);
    st.fitted = true;
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    for (const v of views) {
      const r = v.el.getBoundingClientRect();
      const W = Math.max(1, Math.round(r.width * dpr)), H = Math.max(1, Math.round(r.height * dpr));
      if (v.canvas.width !== W || v.canvas.height !== H) { v.canvas.width = W; v.canvas.height = H; }
      const ctx = v.canvas.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
      const s = v.spec; if (!s) continue;
      let src = null;
      if (s.diff) src = diffImage(s.diff[0], s.diff[1]);
      else if (s.src) { const e = load(s.src); src = e.ready ? e.img : null; }
      ctx.imageSmoothingEnabled = st.scale < 1;
      ctx.setTransform(dpr * st.scale, 0, 0, dpr * st.scale, dpr * st.ox, dpr * st.oy);
      if (src) ctx.drawImage(src, 0, 0);
      v.line.hidden = !s.wipe || st.wipe <= 0 || st.wipe >= 1;
      if (s.wipe) {
        const e = load(s.wipe);
        const x = Math.round(st.wipe * r.width);
        v.line.style.left = x + "px";
        if (e.ready && x > 0) {
          ctx.save(); ctx.setTransform(1, 0, 0, 1, 0, 0);
          ctx.beginPath(); ctx.rect(0, 0, x * dpr, H); ctx.clip();
          ctx.setTransform(dpr * st.scale, 0, 0, dpr * st.scale, dpr * st.ox, dpr * st.oy);
          ctx.drawImage(e.img, 0, 0); ctx.restore();
        }
      }
      v.el.classList.toggle("chosen", s.tier !== undefined && s.tier === st.tier);
    }
  }

  function attachPanZoom(el) {
    let drag = null;
    el.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = el.getBoundingClientRect();
      const mx = ev.clientX - r.left, my = ev.clientY - r.top;
      const f = Math.exp(-ev.deltaY * 0.0015);
      const ns = Math.min(64, Math.max(0.02, st.scale * f));
      st.ox = mx - (mx - st.ox) * (ns / st.scale); st.oy = my - (my - st.oy) * (ns / st.scale);
      st.scale = ns; st.fitted = true; draw();
    }, { passive: false });
    el.addEventListener("mousedown", (ev) => { drag = [ev.clientX, ev.clientY, st.ox, st.oy]; el.style.cursor = "grabbing"; });
    window.addEventListener("mousemove", (ev) => {
      if (!drag) return;
      st.ox = drag[2] + ev.clientX - drag[0]; st.oy = drag[3] + ev.clientY - drag[1]; draw();
    });
    window.addEventListener("mouseup", () => { drag = null; el.style.cursor = ""; });
  }

  // --- rendering of the rest ----------------------------------------------------------------
  function fmt(v, d) { return v === null || v === undefined ? "–" : (typeof v === "number" ? v.toFixed(d) : String(v)); }
  function render() {
    const b = st.board; if (!b) return;
    const c = b.counts;
    $("counts").textContent = `decided ${c.decided} · pending ${c.pending + c.more} · rejected ${c.rejected} · accepted ${c.accepted} · windows ${c.windows}`;
    if (!b.finished && b.final) setStatus(c.more || !c.pending ? "estimating…" : "waiting for you");
    const list = $("queue-list"); list.innerHTML = "";
    for (const it of latest()) {
      const li = document.createElement("li");
      li.dataset.id = it.id; if (it.id === st.selected) li.className = "selected";
      const what = it.status === "pending" ? "pending" : it.status === "more" ? "more…" : it.status;
      li.innerHTML = `<span class="st st-${it.status}"></span>`;
      li.firstChild.textContent = what;
      li.append(document.createTextNode(b.mode === "tiers" ? it.scene + (it.figures.tier ? ` (${it.figures.tier})` : "")
        : `${it.scene} w${String(it.window).padStart(2, "0")} N=${it.n}`));
      li.onclick = () => { select(it.id, true); };
      list.append(li);
    }
    $("finish").hidden = b.final || b.finished;
    if (b.finished && !b.final) setStatus(b.done_note);
    const it = current();
    buildViews();
    if (!st.fitted) fit();
    const tiers = b.mode === "tiers";
    $("more").disabled = !it || !it.can_grow || tiers;
    $("more").hidden = tiers;
    $("accept").disabled = $("reject").disabled = !it || (b.final && it.status !== "pending");
    $("accept").textContent = tiers && it ? `choose ${it.tiers[st.tier]} ` : "accept ";
    $("accept").append(Object.assign(document.createElement("kbd"), { textContent: "a" }));
    $("diff").classList.toggle("on", st.diff); $("compare").classList.toggle("on", st.compare);
    $("compare").disabled = !it || !it.prev;
    $("frame-group").hidden = $("wipe-group").hidden = $("diff").hidden = $("compare").hidden = tiers;
    $("frame-label").textContent = it && it.frames ? `frame ${st.frame + 1}/${it.frames}` : "no frames";
    const f = it ? it.figures : {};
    const rows = it ? [
      ["candidate", `${it.scene} window ${it.window}, N = ${it.n}`],
      ["decision", it.status + (it.reason ? ` (${it.reason})` : "") + (it.by ? ` by ${it.by}` : "")],
      ["residual-rain score", fmt(f.score, 3) + (f.predicted_error != null ? `  (predicted error ${fmt(f.predicted_error, 2)} levels)` : "")],
      ["p_hat", fmt(f.p_hat, Number.isInteger(f.p_hat) ? 0 : 3)], ["N", String(it.n)],
      ["camera motion", f.max_shift_px == null ? "–" : `${fmt(f.max_shift_px, 2)} px (confidence ${fmt(f.motion_confidence, 2)})`],
      ["light drift", f.drift == null ? "–" : `${(100 * f.drift).toFixed(1)} %`],
      ["size", f.width ? `${f.width} x ${f.height}` : "–"],
    ] : [["", "no candidate yet: estimating…"]];
    if (it && !it.can_grow && !tiers) rows.push(["frames", `no more: ${it.grow_limit}`]);
    if (tiers && it) rows.splice(0, 7, ["photo", it.scene], rows[1],
                                 ["tiers", it.tiers.join(", ")], ["chosen", f.tier || "–"]);
    const t = $("figures"); t.innerHTML = "";
    for (const [k, v] of rows) { const tr = t.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v; }
    draw();
  }
  function setStatus(text) { $("status").textContent = text; }
  function say(text) { $("message").textContent = text; }

  function move(delta) {
    const l = latest(); if (!l.length) return;
    const k = l.findIndex((i) => i.id === st.selected);
    const n = Math.min(l.length - 1, Math.max(0, (k < 0 ? 0 : k) + delta));
    select(l[n].id, true);
  }
  function step(delta) {
    const it = current(); if (!it) return;
    if (st.board.mode === "tiers") { st.tier = Math.min(it.tiers.length - 1, Math.max(0, st.tier + delta)); render(); return; }
    if (!it.frames) return;
    st.frame = (st.frame + delta + it.frames) % it.frames; render();
  }

  // --- input ------------------------------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (!$("reason-box").hidden) {
      if (ev.key === "Enter") { ev.preventDefault(); const r = $("reason").value; closeReason(); decide("reject", r); }
      else if (ev.key === "Escape") { closeReason(); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    if (k === "?") { $("help").hidden = !$("help").hidden; }
    else if (k === "Escape") { $("help").hidden = true; }
    else if (k === "a") decide("accept");
    else if (k === "m") { const it = current(); if (it && it.can_grow) decide("more"); else if (it) say(`no frames left to add: ${it.grow_limit}`); }
    else if (k === "r") { ev.preventDefault(); askReason(); }
    else if (k === "ArrowUp") { ev.preventDefault(); move(-1); }
    else if (k === "ArrowDown") { ev.preventDefault(); move(1); }
    else if (k === "ArrowLeft") { ev.preventDefault(); step(-1); }
    else if (k === "ArrowRight") { ev.preventDefault(); step(1); }
    else if (k === "d") { st.diff = !st.diff; st.compare = false; render(); }
    else if (k === "c") { st.compare = !st.compare; st.diff = false; render(); }
    else if (k === "1") { oneToOne(); draw(); }
    else if (k === "f") { fit(); draw(); }
    else if (k === "[") { setWipe(st.wipe - 0.05); }
    else if (k === "]") { setWipe(st.wipe + 0.05); }
  });
  function setWipe(x) { st.wipe = Math.min(1, Math.max(0, x)); $("wipe").value = Math.round(st.wipe * 1000); draw(); }
  $("wipe").addEventListener("input", () => { st.wipe = $("wipe").value / 1000; draw(); });
  $("accept").onclick = () => decide("accept");
  $("more").onclick = () => decide("more");
  $("reject").onclick = askReason;
  $("reason-ok").onclick = () => { const r = $("reason").value; closeReason(); decide("reject", r); };
  $("reason-cancel").onclick = closeReason;
  $("fit").onclick = () => { fit(); draw(); };
  $("one").onclick = () => { oneToOne(); draw(); };
  $("diff").onclick = () => { st.diff = !st.diff; st.compare = false; render(); };
  $("compare").onclick = () => { st.compare = !st.compare; st.diff = false; render(); };
  $("frame-prev").onclick = () => step(-1);
  $("frame-next").onclick = () => step(1);
  $("finish").onclick = async () => {
    const r = await fetch(url("/api/finish"), { method: "POST", headers: { "X-Rainset-Token": token } });
    say(r.ok ? "review finished: every change is in review.json" : "could not finish");
  };
  $("help-button").onclick = () => { $("help").hidden = !$("help").hidden; };
  window.addEventListener("resize", () => { if (!st.fitted) fit(); draw(); });

  // For tests and scripts: the view transform and the selection.
  window.rainset = {
    state: st,
    view: () => ({ scale: st.scale, ox: st.ox, oy: st.oy, wipe: st.wipe, selected: st.selected, frame: st.frame }),
    setView: (scale, ox, oy) => { st.scale = scale; st.ox = ox; st.oy = oy; st.fitted = true; draw(); },
    setWipe: setWipe,
    ready: () => views.every((v) => !v.spec || (v.spec.src ? (images.get(v.spec.src) || {}).ready : true)
                                 && (!v.spec.wipe || (images.get(v.spec.wipe) || {}).ready)),
  };
  poll();
})();
