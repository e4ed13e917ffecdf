// The labelling view (an anywidget ES module). See app.py for the protocol.
//
// The view holds the pairs and draws the next one itself, so a click or key shows the next
// pair at once. Every action is sent to the kernel as a discrete message with this view's
// client id and a sequence number; the kernel applies each once, in order, and sends back its
// state with the last sequence number applied. Until then the action is "pending": the view
// replays pending actions on top of the kernel's state, and says when the kernel is busy.

const SIDE_KEYS = { a: "left", b: "right", t: "tie", s: "skip" };
const ACTION_WORDS = { left: "A", right: "B", tie: "Tie", skip: "Skip" };
const BUSY_AFTER_MS = 300; // an action not acknowledged after this long: the kernel is busy

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setHTML(node, markup) {
  if (node._html !== markup) {
    node.innerHTML = markup;
    node._html = markup;
  }
}

export function firstOpen(pairs, decisions, start) {
  const n = pairs.length;
  for (let step = 0; step < n; step++) {
    const i = (start + step) % n;
    if (!(pairs[i].id in decisions)) return i;
  }
  return null;
}

// The same state change the kernel makes for an action (LabelingApp._choose / _undo);
// tests/test_label_app.py checks the two agree, step by step, on random action sequences.
export function applyAction(state, action, pairs, indexOf) {
  if (action.action === "choose") {
    const decisions = { ...state.decisions, [action.pair_id]: { side: action.side, tags: action.tags } };
    const undo = state.undo.filter((pid) => pid !== action.pair_id).concat([action.pair_id]);
    return { decisions, undo, current: firstOpen(pairs, decisions, indexOf[action.pair_id] + 1) };
  }
  if (action.action === "undo") {
    if (!state.undo.includes(action.pair_id)) return state;
    const decisions = { ...state.decisions };
    delete decisions[action.pair_id];
    const at = state.undo.lastIndexOf(action.pair_id);
    const undo = state.undo.slice(0, at).concat(state.undo.slice(at + 1));
    return { decisions, undo, current: indexOf[action.pair_id] };
  }
  return state;
}

function render({ model, el }) {
  const client = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  let seq = 0;
  let pending = []; // sent, not yet applied by the kernel: {seq, action, pair_id, side, tags, sentAt}
  let tagsOn = new Set();
  let localStatus = null; // a message the view shows without asking the kernel
  let timer = null;

  // ---------------------------------------------------------------- DOM
  const root = make("div", "rlhf-label-app");
  root.tabIndex = 0;
  root.setAttribute("role", "application");
  root.setAttribute("aria-label", "Labelling: a, b, t, s choose; u undoes; 1-4 tags; r reveals");

  const header = make("div", "rlhf-label-header");
  const title = make("span", "rlhf-label-title");
  const bar = make("progress", "rlhf-label-bar");
  const progress = make("span", "rlhf-label-progress");
  const saved = make("span", "rlhf-label-saved");
  header.append(title, bar, progress, saved);

  const guide = make("details", "rlhf-label-guidelines");
  guide.open = true;
  const guideSummary = make("summary", "", "Guidelines: what 'better' means");
  const guideBody = make("div");
  guide.append(guideSummary, guideBody);

  const prompt = make("div", "rlhf-label-prompt");
  const pairBox = make("div", "rlhf-label-pair");
  const left = make("div", "rlhf-label-left rlhf-label-response");
  const right = make("div", "rlhf-label-right rlhf-label-response");
  const leftText = make("div", "rlhf-label-text");
  const rightText = make("div", "rlhf-label-text");
  left.append(make("b", "", "A"), leftText);
  right.append(make("b", "", "B"), rightText);
  pairBox.append(left, right);

  function button(label, className, onClick, tooltip) {
    const b = make("button", `rlhf-label-button ${className}`, label);
    b.type = "button";
    b.title = tooltip;
    b.addEventListener("click", (event) => {
      event.stopPropagation();
      onClick();
      root.focus({ preventScroll: true }); // keys keep working after a click
    });
    return b;
  }
  const buttonA = button("A is better [a]", "rlhf-label-a mod-choice", () => choose("left"), "The left response (A) is better");
  const buttonB = button("B is better [b]", "rlhf-label-b mod-choice", () => choose("right"), "The right response (B) is better");
  const buttonTie = button("Tie [t]", "rlhf-label-tie", () => choose("tie"), "Equally good or equally bad");
  const buttonSkip = button("Skip [s]", "rlhf-label-skip", () => choose("skip"), "Cannot tell; leave this pair out");
  const buttonUndo = button("Undo [u]", "rlhf-label-undo", () => undo(), "Take back your last decision");
  const choices = make("div", "rlhf-label-row");
  choices.append(buttonA, buttonB, buttonTie, buttonSkip, buttonUndo);

  const tagRow = make("div", "rlhf-label-row");
  tagRow.append(make("span", "rlhf-label-why", "Why (optional):"));
  const tagButtons = {};
  model.get("tags").forEach((tag, i) => {
    const b = button(`${tag} [${i + 1}]`, `rlhf-label-tag rlhf-label-tag-${tag}`, () => toggleTag(tag), `Tag: chosen for being ${tag}`);
    tagButtons[tag] = b;
    tagRow.append(b);
  });

  const keyHint = make("div", "rlhf-label-keyhint");
  const busy = make("div", "rlhf-label-busy");
  const status = make("div", "rlhf-label-status");
  const buttonReveal = button("Reveal the hidden human [r]", "rlhf-label-reveal", () => reveal(), "Compare your labels with the hidden human");
  const revealOutput = make("div", "rlhf-label-reveal-output");

  root.append(header, guide, prompt, pairBox, choices, tagRow, keyHint, busy, status, buttonReveal, revealOutput);
  el.append(root);

  // ---------------------------------------------------------------- state
  const pairs = () => model.get("pairs");
  const indexOf = {};
  pairs().forEach((p, i) => { indexOf[p.id] = i; });

  function viewState() {
    let state = { decisions: model.get("decisions"), undo: model.get("undo_stack"), current: model.get("current") };
    for (const action of pending) state = applyAction(state, action, pairs(), indexOf);
    return state;
  }

  function send(action) {
    seq += 1;
    const message = { client, seq, ...action };
    pending.push({ ...message, sentAt: performance.now() });
    localStatus = null;
    model.send(message);
    if (timer === null) timer = setInterval(draw, 100);
    draw();
  }

  function choose(side) {
    const state = viewState();
    if (state.current === null) {
      localStatus = "All pairs are labelled. Undo [u] changes the last one.";
      return draw();
    }
    send({ action: "choose", pair_id: pairs()[state.current].id, side, tags: [...tagsOn].sort() });
    tagsOn = new Set();
  }

  function undo() {
    const state = viewState();
    if (state.undo.length === 0) {
      localStatus = "Nothing to undo.";
      return draw();
    }
    const pid = state.undo[state.undo.length - 1];
    tagsOn = new Set(state.decisions[pid].tags || []);
    send({ action: "undo", pair_id: pid });
  }

  function toggleTag(tag) {
    if (tagsOn.has(tag)) tagsOn.delete(tag);
    else tagsOn.add(tag);
    draw();
  }

  function reveal() {
    const state = viewState();
    if (!model.get("has_hidden_human")) return;
    if (Object.keys(state.decisions).length < model.get("reveal_after")) {
      localStatus = `The hidden human is revealed after ${model.get("reveal_after")} labels.`;
      return draw();
    }
    send({ action: "reveal" });
  }

  function onKernelState() {
    const applied = (model.get("applied") || {})[client] || 0;
    pending = pending.filter((action) => action.seq > applied);
    if (pending.length === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
    draw();
  }

  // ---------------------------------------------------------------- drawing
  function describe(action) {
    if (action.action === "choose") return ACTION_WORDS[action.side];
    return action.action === "undo" ? "Undo" : "Reveal";
  }

  function draw() {
    const list = pairs();
    const n = list.length;
    const state = viewState();
    const labelled = Object.keys(state.decisions).length;
    const skipped = Object.values(state.decisions).filter((d) => d.side === "skip").length;
    const done = state.current === null;

    if (done) {
      setText(title, "All pairs labelled");
      setHTML(prompt, "");
      setText(prompt, `You labelled all ${n} pairs; they are saved in ${model.get("store_path")}. Press Undo [u] to change your last one.`);
      setText(leftText, "");
      setText(rightText, "");
      pairBox.style.display = "none";
    } else {
      const pair = list[state.current];
      setText(title, `Pair ${state.current + 1} of ${n}`);
      setHTML(prompt, `<b>User:</b> <span class="rlhf-label-text"></span>`);
      setText(prompt.lastChild, pair.prompt);
      setText(leftText, pair.left);
      setText(rightText, pair.right);
      pairBox.style.display = "";
      root.dataset.pairId = pair.id;
    }
    bar.max = n;
    bar.value = labelled;
    setText(progress, `${labelled} of ${n} labelled` + (skipped ? ` (${skipped} skipped)` : ""));
    root.dataset.labelled = String(labelled);
    root.dataset.pending = String(pending.length);

    for (const b of [buttonA, buttonB, buttonTie, buttonSkip]) b.disabled = done;
    buttonUndo.disabled = state.undo.length === 0;
    for (const [tag, b] of Object.entries(tagButtons)) {
      b.classList.toggle("mod-active", tagsOn.has(tag));
      b.setAttribute("aria-pressed", String(tagsOn.has(tag)));
    }
    const canReveal = labelled >= model.get("reveal_after");
    buttonReveal.style.display = model.get("has_hidden_human") ? "" : "none";
    buttonReveal.disabled = !canReveal;
    setText(buttonReveal, canReveal ? "Reveal the hidden human [r]"
      : `Reveal the hidden human (after ${model.get("reveal_after")} labels) [r]`);

    if (pending.length === 0) {
      setText(saved, "✓ all saved");
      saved.classList.remove("mod-saving");
    } else {
      setText(saved, `saving ${pending.length}…`);
      saved.classList.add("mod-saving");
    }
    const waitedMs = pending.length ? performance.now() - pending[0].sentAt : 0;
    const isBusy = waitedMs > BUSY_AFTER_MS;
    root.classList.toggle("mod-kernel-busy", isBusy);
    if (isBusy) {
      setText(busy, `The kernel is busy (a cell is running). ${pending.length} action${pending.length > 1 ? "s" : ""} waiting: `
        + `${pending.map(describe).join(", ")}. Each is saved, in order, as soon as it is free; keep labelling or wait.`);
      busy.style.display = "";
    } else {
      busy.style.display = "none";
    }
    if (localStatus !== null) setText(status, localStatus);
    else setHTML(status, model.get("status"));
    setHTML(revealOutput, model.get("reveal_html"));
  }

  // ---------------------------------------------------------------- keyboard and focus
  function onKeyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return; // Ctrl+S and friends stay JupyterLab's
    if (event.key === "Tab" || event.key === "Escape") return;
    if (event.key === "Enter" && event.shiftKey) return; // Shift+Enter still runs the cell
    // Every other key stays in the widget: in command mode plain letters are notebook commands.
    event.stopPropagation();
    const key = event.key.toLowerCase();
    const tagList = model.get("tags");
    let handled = true;
    if (event.repeat && (key in SIDE_KEYS || key === "u")) handled = true; // a held key labels once
    else if (key in SIDE_KEYS) choose(SIDE_KEYS[key]);
    else if (key === "u") undo();
    else if (key === "r") reveal();
    else if (/^[1-9]$/.test(key) && Number(key) <= tagList.length) toggleTag(tagList[Number(key) - 1]);
    else handled = false;
    if (handled) event.preventDefault();
  }
  root.addEventListener("keydown", onKeyDown);
  const onFocus = () => {
    const focused = root.contains(document.activeElement);
    root.classList.toggle("rlhf-label-focused", focused);
    setText(keyHint, focused
      ? "Keys on: a / b / t / s choose, u undoes, 1-4 tags, r reveals."
      : "Click anywhere in this box to label with the keys a / b / t / s, u (undo), 1-4 (tags), r (reveal).");
  };
  root.addEventListener("focusin", onFocus);
  root.addEventListener("focusout", () => setTimeout(onFocus, 0));
  root.addEventListener("mousedown", (event) => {
    // Clicking text or empty space focuses the widget (buttons focus themselves).
    if (!(event.target instanceof HTMLButtonElement) && event.target.tagName !== "SUMMARY") {
      setTimeout(() => root.focus({ preventScroll: true }), 0);
    }
  });

  const redraw = () => onKernelState();
  for (const name of ["decisions", "undo_stack", "current", "applied", "status", "reveal_html", "pairs"]) {
    model.on(`change:${name}`, redraw);
  }
  setHTML(guideBody, model.get("guidelines"));
  onFocus();
  draw();
  if (model.get("autofocus")) {
    requestAnimationFrame(() => {
      const active = document.activeElement;
      const typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && !root.contains(active);
      if (!typing) root.focus({ preventScroll: true });
    });
  }

  return () => {
    if (timer !== null) clearInterval(timer);
    for (const name of ["decisions", "undo_stack", "current", "applied", "status", "reveal_html", "pairs"]) {
      model.off(`change:${name}`, redraw);
    }
  };
}

export default { render };
