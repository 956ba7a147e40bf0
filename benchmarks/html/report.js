// verif report: the page's script. Plain JS, no framework and no build step; the data is the JSON in
// #report-data (written by benchmarks/html_report.py). Numbers are shown as summary.json has them, never
// recomputed here. The sample list renders only the rows on screen, so 10,000 samples stay responsive.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const RUNS = D.runs, S = D.samples, NAMES = D.names, BENCHES = D.benches;
  const MULTI = RUNS.length > 1;
  const ROW = 26;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  // ---- formatting: verdicts carry a symbol and a word, never colour alone
  const VERDICT = { true: ["\u2713", "passed", "v-pass"], false: ["\u2717", "failed", "v-fail"], null: ["?", "undecided", "v-und"] };
  const vkey = (v) => (v === true ? "true" : v === false ? "false" : "null");
  function verdictEl(v, withWord = true) {
    const [sym, word, cls] = VERDICT[vkey(v)];
    return el("span", { class: cls, title: word, "data-verdict": word }, withWord ? `${sym} ${word}` : sym);
  }
  const isMean = (b, m) => (b.means || []).includes(m) || ((b.metric_info || {})[m] || {}).unit === "mean";
  const fmtValue = (rate, mean) => (mean ? rate.toFixed(2) : (100 * rate).toFixed(1) + "%");
  const fmtPassed = (p) => (Number.isInteger(p) ? String(p) : p.toFixed(2));
  function fmtCI(m, mean) {
    if (!Array.isArray(m.ci95)) return "\u2014";
    const f = (x) => (mean ? x.toFixed(2) : (100 * x).toFixed(1));
    return `[${f(m.ci95[0])}, ${f(m.ci95[1])}]`;
  }
  const fmtSE = (m, mean) => (typeof m.stderr === "number" ? "\u00b1" + (mean ? m.stderr.toFixed(3) : (100 * m.stderr).toFixed(1)) : "\u2014");

  // ---- header: which runs
  (function header() {
    const t = el("table", { id: "runs-table" }, el("tr", {}, el("th", {}, "run"), el("th", {}, "model"), el("th", {}, "folder"), el("th", {}, "judge"), el("th", {}, "versions")));
    for (const r of RUNS) {
      const j = r.judge ? `${r.judge.verifier}${r.judge.used === false ? " (not used)" : ""}` : "none (--no-llm)";
      const vers = el("details", {}, el("summary", {}, "show"), el("pre", { class: "text" }, JSON.stringify({ generation: r.generation, versions: r.versions }, null, 1)));
      t.append(el("tr", {}, el("td", {}, r.label), el("td", {}, r.model), el("td", { title: r.dir }, r.dir.split(/[\\/]/).filter(Boolean).pop() || r.dir), el("td", {}, j), el("td", {}, vers)));
    }
    $("runs").append(t);
    for (const r of RUNS) if (r.partial) $("runs").append(el("p", { class: "v-und", role: "note" }, `\u26a0 run ${r.label} has not finished (no summary.json): its numbers are computed from the samples recorded so far.`));
  })();

  // ---- summary: every metric of every benchmark (from summary.json)
  (function summary() {
    const body = $("summary-body");
    for (const bname of BENCHES) {
      const present = RUNS.map((r) => r.benchmarks[bname]);
      const b0 = present.find((x) => x);
      const info = [];
      for (const f of ["version", "data_sha256"]) if (b0[f]) info.push(`${f}: ${f === "data_sha256" ? String(b0[f]).slice(0, 12) : b0[f]}`);
      body.append(el("h3", {}, `${bname} `, el("span", { class: "muted" }, `(${present.map((b, k) => (b ? `${RUNS[k].label}: ${b.samples} samples` : "")).filter(Boolean).join(", ")}${info.length ? "; " + info.join(", ") : ""})`)));
      const metrics = [];
      for (const b of present) if (b) for (const m of Object.keys(b.metrics)) if (!metrics.includes(m)) metrics.push(m);
      const head = el("tr", {}, el("th", { scope: "col" }, "metric"));
      for (const r of RUNS) {
        head.append(el("th", { scope: "col", class: "num" }, MULTI ? `${r.label}` : "value"), el("th", { scope: "col", class: "num" }, "passed/total"));
        if (MULTI && r !== RUNS[0]) head.append(el("th", { scope: "col", class: "num" }, `\u0394 vs ${RUNS[0].label}`));
        head.append(el("th", { scope: "col", class: "num" }, "undecided"), el("th", { scope: "col", class: "num" }, "s.e."), el("th", { scope: "col", class: "num" }, "95% CI"));
      }
      const t = el("table", { class: "summary", "data-bench": bname }, head);
      for (const m of metrics) {
        const headline = (b0.headline || []).includes(m);
        const tr = el("tr", { "data-metric": m }, el("th", { scope: "row" }, headline ? el("strong", {}, m) : m, isMean(b0, m) ? el("span", { class: "muted" }, " (mean)") : null));
        present.forEach((b, k) => {
          const v = b && b.metrics[m];
          const mean = b ? isMean(b, m) : false;
          if (!v) {
            tr.append(el("td", { class: "num value", "data-run": k }, "\u2014"), el("td", { class: "num count", "data-run": k }, "\u2014"));
            if (MULTI && k > 0) tr.append(el("td", { class: "num" }, "\u2014"));
            tr.append(el("td", { class: "num" }, "\u2014"), el("td", { class: "num" }, "\u2014"), el("td", { class: "num" }, "\u2014"));
            return;
          }
          tr.append(el("td", { class: "num value", "data-run": k }, fmtValue(v.rate, mean)), el("td", { class: "num count", "data-run": k }, `${fmtPassed(v.passed)}/${v.total}`));
          if (MULTI && k > 0) {
            const row = (D.deltas || []).find((r) => r.benchmark === bname && r.metric === m);
            const d = row ? row.delta_points[k] : null;
            const txt = d === null || d === undefined ? "\u2014" : (d > 0 ? "+" : "") + (mean ? d.toFixed(2) : d.toFixed(1) + " pt");
            // green = better: up for most metrics, down where metric_info says lower is better
            const better = ((b.metric_info || {})[m] || {}).higher_is_better === false ? d < 0 : d > 0;
            const worse = d !== 0 && d !== null && d !== undefined && !better;
            tr.append(el("td", { class: "num delta " + (better ? "up" : worse ? "down" : ""), "data-run": k, title: better ? "better" : worse ? "worse" : "" }, d > 0 ? "\u25b2 " + txt : d < 0 ? "\u25bc " + txt : txt));
          }
          tr.append(el("td", { class: "num" }, String(v.undecided || 0)), el("td", { class: "num" }, fmtSE(v, mean)), el("td", { class: "num ci" }, fmtCI(v, mean)));
        });
        t.append(tr);
      }
      body.append(t);
    }
  })();

  // ---- comparison: paired test and flipped constraints (computed by html_report.py)
  if (MULTI) {
    $("paired").hidden = false;
    const t = el("table", { class: "paired" }, el("tr", {}, ...["benchmark", "runs", "mode", "samples in both", "decided in both", "passed first", "passed other", "regressed (\u2713\u2192\u2717)", "fixed (\u2717\u2192\u2713)", "McNemar exact p"].map((h) => el("th", { scope: "col" }, h))));
    for (const p of D.paired) {
      t.append(el("tr", {}, el("td", {}, p.benchmark), el("td", {}, `${RUNS[0].label} \u2192 ${RUNS[p.run].label}`), el("td", {}, p.mode),
        ...[p.shared, p.paired, p.a_passed, p.b_passed, p.regressed, p.fixed].map((x) => el("td", { class: "num" }, String(x))),
        el("td", { class: "num" }, p.p_value < 0.001 ? p.p_value.toExponential(2) : p.p_value.toFixed(3))));
    }
    $("paired-body").append(t, el("p", { class: "hint" }, "Exact two-sided McNemar test on prompt-level pass/fail (first mode) of the samples both runs decided; undecided samples are left out."));
    $("flips").hidden = false;
    const ft = el("table", { class: "flips" }, el("tr", {}, ...["benchmark", "runs", "constraint type", "regressed samples", "fixed samples"].map((h) => el("th", { scope: "col" }, h))));
    for (const f of D.flips) {
      const btn = (list, what) => (list.length ? el("button", { type: "button", class: "link", onclick: () => showGroup(list, `${list.length} samples where ${f.type} ${what} (${RUNS[0].label} \u2192 ${RUNS[f.run].label})`, f.benchmark) }, String(list.length)) : "0");
      ft.append(el("tr", {}, el("td", {}, f.benchmark), el("td", {}, `${RUNS[0].label} \u2192 ${RUNS[f.run].label}`), el("td", {}, f.type), el("td", { class: "num" }, btn(f.regressed, "regressed")), el("td", { class: "num" }, btn(f.fixed, "was fixed"))));
    }
    $("flips-body").append(D.flips.length ? ft : el("p", {}, "No constraint changed its verdict."));
  }

  // ---- per-type chart: bars are buttons that filter the samples
  (function chart() {
    const body = $("types-body");
    for (const bname of BENCHES) {
      const types = [];
      for (const r of RUNS) { const b = r.benchmarks[bname]; if (b && b.per_type) for (const t of Object.keys(b.per_type)) if (!types.includes(t)) types.push(t); }
      if (!types.length) continue;
      const pt0 = (RUNS.find((r) => r.benchmarks[bname]) || RUNS[0]).benchmarks[bname].per_type;
      types.sort((a, b) => ((pt0[a] || { rate: 2 }).rate - (pt0[b] || { rate: 2 }).rate) || a.localeCompare(b));
      body.append(el("h3", {}, bname));
      const grid = el("div", { class: "chart", role: "group", "aria-label": `${bname}: pass rate per constraint type` });
      for (const t of types) {
        grid.append(el("div", { class: "lab", title: t }, t));
        const cell = el("div", {});
        RUNS.forEach((r, k) => {
          const v = r.benchmarks[bname] && r.benchmarks[bname].per_type[t];
          if (!v) return;
          const label = `${MULTI ? r.label + ": " : ""}${(100 * v.rate).toFixed(1)}% (${v.passed}/${v.total}${v.undecided ? ", " + v.undecided + " undecided" : ""})`;
          cell.append(el("button", { type: "button", class: "bar", "data-bench": bname, "data-type": t, "data-run": k, "aria-label": `${t}: ${label}; show these samples`, onclick: () => filterTo(bname, t) },
            el("span", { class: "track" }, el("span", { class: `fill r${k % 4}`, style: `width:${(100 * v.rate).toFixed(2)}%` })), el("span", { class: "txt" }, label)));
        });
        grid.append(cell);
      }
      body.append(grid);
    }
  })();

  // ---- sample browser state
  const fBench = $("f-bench"), fType = $("f-type"), fVerdict = $("f-verdict"), fText = $("f-text"), fRun = $("f-run"), fFlip = $("f-flip");
  fBench.append(el("option", { value: "" }, "all"), ...BENCHES.map((b, i) => el("option", { value: String(i) }, b)));
  const typeSets = S.map((s) => { const set = new Set(); for (const e of s[2]) if (e) for (const t of e.t) { const cs = Object.values(t.c)[0]; if (cs) for (const c of cs) set.add(c[0]); } return set; });
  const typeIdx = NAMES.map((n, i) => i).sort((a, b) => NAMES[a].localeCompare(NAMES[b]));
  fType.append(el("option", { value: "" }, "any"), ...typeIdx.map((i) => el("option", { value: String(i) }, NAMES[i])));
  if (MULTI) {
    $("l-run").hidden = false; $("l-flip").hidden = false;
    fRun.append(...RUNS.map((r, k) => el("option", { value: String(k) }, `${r.label}`)));
  }
  let visible = [], selected = -1, group = null, haystack = null;

  // a sample's verdict in run k: prompt level, or over the constraints of one type when a type is chosen
  function verdictOf(s, k, type) {
    const e = s[2][k];
    if (!e) return undefined;
    if (type < 0) return e.v;
    let seen = false, und = false;
    for (const t of e.t) { const cs = Object.values(t.c)[0] || []; for (const c of cs) if (c[0] === type) { seen = true; if (c[1] === false) return false; if (c[1] === null) und = true; } }
    return seen ? (und ? null : true) : undefined;
  }
  // the search index (lower-cased text of every sample) is built in small slices after the page is shown,
  // so the first search does not freeze a 10,000-sample page; a search before it is done finishes it at once
  const hay = [];
  function hayOf(s) {
    const parts = [s[1]];
    for (const e of s[2]) if (e) for (const t of e.t) { for (const m of t.u) parts.push(m[1]); parts.push(t.r || "", t.s || "", t.e || ""); for (const cs of Object.values(t.c)) for (const c of cs) parts.push(NAMES[c[0]], c[4] || "", c[5] || ""); }
    return parts.join("\n").toLowerCase();
  }
  function buildHaystack() { while (hay.length < S.length) hay.push(hayOf(S[hay.length])); haystack = hay; }
  function buildSlice() {
    const end = Math.min(S.length, hay.length + 400);
    while (hay.length < end) hay.push(hayOf(S[hay.length]));
    if (hay.length < S.length) setTimeout(buildSlice, 0); else haystack = hay;
  }
  function applyFilters() {
    const b = fBench.value === "" ? -1 : +fBench.value, type = fType.value === "" ? -1 : +fType.value;
    const want = fVerdict.value, q = fText.value.trim().toLowerCase(), run = MULTI ? +fRun.value : 0, flip = MULTI ? fFlip.value : "";
    if (q && !haystack) buildHaystack();
    const wantV = { passed: true, failed: false, undecided: null }[want];
    const other = RUNS.length - 1;
    visible = [];
    for (let i = 0; i < S.length; i++) {
      const s = S[i];
      if (group && !group.has(i)) continue;
      if (b >= 0 && s[0] !== b) continue;
      if (type >= 0 && !typeSets[i].has(type)) continue;
      if (want) { const v = verdictOf(s, run, type); if (v === undefined || v !== wantV) continue; }
      if (flip) {
        const a = verdictOf(s, 0, type), z = verdictOf(s, other, type);
        if (a === undefined || z === undefined || a === null || z === null) continue;
        if (flip === "regressed" && !(a && !z)) continue;
        if (flip === "fixed" && !(!a && z)) continue;
        if (flip === "changed" && a === z) continue;
      }
      if (q && !haystack[i].includes(q)) continue;
      visible.push(i);
    }
    $("count").textContent = `${visible.length} of ${S.length} samples`;
    $("list-inner").style.height = `${visible.length * ROW}px`;
    $("list").scrollTop = 0;
    selected = visible.length ? Math.min(Math.max(selected, -1), visible.length - 1) : -1;
    renderRows(true);
  }
  function filterTo(bname, type) {
    group = null; $("f-group").hidden = true;
    fBench.value = String(BENCHES.indexOf(bname));
    fType.value = String(NAMES.indexOf(type));
    selected = -1;
    applyFilters();
    $("samples").scrollIntoView();
    $("list").focus();
  }
  function showGroup(list, text, bname) {
    group = new Set(list); fBench.value = String(BENCHES.indexOf(bname)); fType.value = ""; fVerdict.value = ""; fFlip.value = ""; fText.value = "";
    $("f-group").hidden = false; $("f-group-text").textContent = `showing ${text}.`;
    selected = -1; applyFilters(); $("samples").scrollIntoView(); $("list").focus();
  }
  $("f-group-clear").addEventListener("click", () => { group = null; $("f-group").hidden = true; applyFilters(); });
  for (const f of [fBench, fType, fVerdict, fRun, fFlip]) f.addEventListener("change", () => { selected = -1; applyFilters(); });
  let typing = 0;
  fText.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { selected = -1; applyFilters(); }, 120); });

  // ---- the virtual list: only rows in view (plus a margin) exist in the DOM
  const list = $("list"), inner = $("list-inner");
  let drawn = "", frame = 0;
  function rowText(s) {
    const e = s[2].find((x) => x);
    const u = e && e.t.length ? e.t[0].u.filter((m) => m[0] === "user").map((m) => m[1]).join(" ") : "";
    return u.slice(0, 160).replace(/\s+/g, " ");
  }
  function renderRows(force) {
    const top = list.scrollTop, h = list.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - 10), last = Math.min(visible.length, Math.ceil((top + h) / ROW) + 10);
    const key = `${first}:${last}:${selected}`;
    if (!force && key === drawn) return;
    drawn = key;
    const frag = document.createDocumentFragment();
    for (let p = first; p < last; p++) {
      const i = visible[p], s = S[i];
      const run = MULTI ? +fRun.value : 0;
      const vs = MULTI ? s[2].map((e) => (e ? verdictEl(e.v, false) : el("span", { class: "muted" }, "\u2013"))) : [verdictEl(s[2][0] ? s[2][0].v : null, false)];
      const r = el("div", { class: "row", role: "option", id: `row-${p}`, "data-index": i, "data-id": s[1], "aria-selected": p === selected ? "true" : "false", style: `top:${p * ROW}px`, onclick: () => select(p) },
        el("span", { class: "vd" }, ...vs), " ", el("span", { class: "sid" }, s[1]), BENCHES.length > 1 ? el("span", { class: "chip" }, BENCHES[s[0]]) : null, " ", rowText(s));
      r.setAttribute("aria-label", `${s[1]}: ${VERDICT[vkey(s[2][run] ? s[2][run].v : null)][1]}`);
      frag.append(r);
    }
    inner.replaceChildren(frag);
    if (selected >= 0) list.setAttribute("aria-activedescendant", `row-${selected}`); else list.removeAttribute("aria-activedescendant");
  }
  list.addEventListener("scroll", () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderRows(false); }); });
  list.addEventListener("keydown", (ev) => {
    const page = Math.max(1, Math.floor(list.clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    let p = selected;
    if (ev.key in moves) p = Math.min(visible.length - 1, Math.max(0, (p < 0 ? -1 : p) + moves[ev.key]));
    else if (ev.key === "Home") p = 0;
    else if (ev.key === "End") p = visible.length - 1;
    else if (ev.key === "Enter" && selected >= 0) { $("detail").focus(); ev.preventDefault(); return; }
    else return;
    ev.preventDefault();
    if (p >= 0) select(p);
  });
  function select(p) {
    selected = p;
    const y = p * ROW;
    if (y < list.scrollTop) list.scrollTop = y;
    else if (y + ROW > list.scrollTop + list.clientHeight) list.scrollTop = y + ROW - list.clientHeight;
    renderRows(true);
    showSample(visible[p]);
    const s = S[visible[p]];
    history.replaceState(null, "", `#sample=${encodeURIComponent(BENCHES[s[0]])}/${encodeURIComponent(s[1])}`);
  }

  // ---- one sample: its turns, prompt, response (reasoning collapsed), each constraint's verdict
  function textBlock(t) { return el("pre", { class: "text" }, t === null || t === undefined ? "(none)" : t); }
  function constraintTable(turn) {
    const modes = Object.keys(turn.c);
    if (!modes.length) return el("p", { class: "muted" }, "not scored");
    const head = el("tr", {}, el("th", { scope: "col" }, "constraint"), el("th", { scope: "col" }, "kind"), el("th", { scope: "col" }, "source"),
      ...modes.map((m) => el("th", { scope: "col" }, m)), el("th", { scope: "col" }, "reason / judge output"), el("th", { scope: "col" }, "P(yes)"));
    const t = el("table", { class: "cons" }, head);
    turn.c[modes[0]].forEach((c, j) => {
      const reasons = modes.map((m) => (turn.c[m][j] ? turn.c[m][j][4] : "")).filter((x, n, a) => x && a.indexOf(x) === n);
      const err = modes.map((m) => (turn.c[m][j] ? turn.c[m][j][5] : null)).find((x) => x);
      t.append(el("tr", { "data-constraint": NAMES[c[0]] }, el("td", {}, NAMES[c[0]]), el("td", {}, c[2] || ""), el("td", {}, c[3]),
        ...modes.map((m) => el("td", { class: "verdict", "data-mode": m }, turn.c[m][j] ? verdictEl(turn.c[m][j][1]) : "")),
        el("td", { class: "reason" }, reasons.join("\n"), err ? el("div", { class: "v-und" }, `error: ${err}`) : null),
        el("td", { class: "num" }, typeof c[6] === "number" ? c[6].toFixed(3) : "\u2014")));
    });
    return t;
  }
  function turnView(turn) {
    const box = el("div", {});
    if (turn.e) box.append(el("p", { class: "v-fail" }, `generation error: ${turn.e}`));
    box.append(constraintTable(turn));
    box.append(el("div", { class: "msg-role" }, `response${turn.f ? " (finish: " + turn.f + ")" : ""}${turn.k ? ", thinking " + turn.k : ""}`));
    if (turn.s !== undefined) {
      box.append(textBlock(turn.s), el("details", {}, el("summary", {}, "full response with reasoning"), textBlock(turn.r)));
    } else box.append(textBlock(turn.r));
    // extra numbers per turn (e.g. the RL reward's parts on held-out data), one small table per group
    for (const [k, v] of Object.entries(turn.x || {})) {
      const entries = v && typeof v === "object" ? Object.entries(v) : [[k, v]];
      box.append(el("table", { class: "extra", "data-extra": k }, el("caption", { class: "msg-role" }, k),
        el("tr", {}, ...entries.map(([n]) => el("th", { scope: "col" }, n))),
        el("tr", {}, ...entries.map(([, x]) => el("td", { class: "num" }, typeof x === "number" && !Number.isInteger(x) ? x.toFixed(3) : x === null ? "\u2014" : typeof x === "object" ? JSON.stringify(x) : String(x))))));
    }
    return box;
  }
  function showSample(i) {
    const s = S[i], d = $("detail");
    const entries = s[2];
    const nturns = Math.max(...entries.map((e) => (e ? e.t.length : 0)));
    const out = [el("h3", {}, `${BENCHES[s[0]]} / ${s[1]}`)];
    out.push(el("p", {}, ...entries.map((e, k) => el("span", { class: "chip" }, `${MULTI ? RUNS[k].label + ": " : "prompt level: "}`, e ? verdictEl(e.v) : "absent"))));
    const meta = (entries.find((e) => e) || {}).m;
    if (meta && Object.keys(meta).length) out.push(el("p", { class: "muted" }, "meta: " + JSON.stringify(meta)));
    for (let t = 0; t < nturns; t++) {
      if (nturns > 1) out.push(el("h3", {}, `Turn ${t + 1}`));
      const first = entries.find((e) => e && e.t[t]);
      for (const m of first.t[t].u) out.push(el("div", { class: "msg-role" }, m[0]), textBlock(m[1]));
      const cols = el("div", { class: "cols", style: `grid-template-columns:repeat(${entries.length}, minmax(0, 1fr))` });
      entries.forEach((e, k) => cols.append(el("div", { "data-run": k }, MULTI ? el("h4", {}, `${RUNS[k].label} (${RUNS[k].model})`) : null, e && e.t[t] ? turnView(e.t[t]) : el("p", { class: "muted" }, "not in this run"))));
      out.push(cols);
    }
    d.replaceChildren(...out);
    d.scrollTop = 0;
  }

  // #sample=BENCHMARK/ID links to one sample (copy the address to point a colleague at it)
  function fromHash() {
    const m = /^#sample=([^/]*)\/(.*)$/.exec(location.hash);
    if (!m) return;
    const b = BENCHES.indexOf(decodeURIComponent(m[1])), id = decodeURIComponent(m[2]);
    const p = visible.findIndex((i) => S[i][0] === b && S[i][1] === id);
    if (p >= 0) { select(p); $("samples").scrollIntoView(); }
  }
  window.addEventListener("hashchange", fromHash);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) { ev.preventDefault(); fText.focus(); }
  });

  applyFilters();
  fromHash();
  performance.mark("report-ready");  // perf/bench_report_html.py reads the load time from this mark
  setTimeout(buildSlice, 50);
  document.body.setAttribute("data-ready", "1");
})();
