/*
 * 整改通报问答 — the embeddable chat widget.
 *
 *   <script src="https://HOST/widget.js" defer></script>
 *
 * One file, no external resources (no CDN, no web fonts). Everything lives in a Shadow DOM so the
 * host page's CSS cannot reach it. Question and answer text is only ever inserted as text
 * (textContent / text nodes), never as HTML. The server writes its settings into CONFIG below.
 */
(function () {
  "use strict";

  var CONFIG = /*__WIDGET_CONFIG__*/{};
  if (window.__zgqaWidget) return; // the snippet pasted twice
  window.__zgqaWidget = true;

  var script = document.currentScript;
  // <script src="…/widget.js" data-render-only>: no launcher and no panel; the page gets
  // window.zgqaWidget.renderReply(reply, {ask}) to show a reply exactly as the widget does (the
  // staff console's 试一试).
  var RENDER_ONLY = !!(script && script.hasAttribute("data-render-only"));
  var BASE = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  // The page's notice (data-doc on the script tag): its welcome, chips and contact, and every
  // question is sent with it (metadata.doc) so the bot answers about that notice first.
  var DOC = script && script.dataset ? script.dataset.doc || "" : "";
  if (DOC && CONFIG.notices && CONFIG.notices[DOC]) {
    var own = CONFIG.notices[DOC];
    for (var key in own) if (Object.prototype.hasOwnProperty.call(own, key)) CONFIG[key] = own[key];
  } else {
    DOC = "";
  }
  var MAX = CONFIG.maxChars || 500;
  var STORE = "zgqa-widget:" + BASE;
  var TIMEOUT_MS = 30000;

  // Sizes are in em of .root, whose size is the keyword `medium`: the browser's own font-size
  // setting (16 px unless the reader changed it). Not rem: inside a Shadow DOM rem is the host
  // page's <html> size, which a site may set to 62.5 % or anything else. 大字 is `x-large`, 1.5×
  // medium (24 px). Media queries' em is the browser's setting too. A touch target is at least
  // 44 CSS px (a finger does not grow with the text) and grows with it: max(44px, …em).
  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".root{font-family:\"PingFang SC\",\"Microsoft YaHei\",\"Noto Sans CJK SC\",\"WenQuanYi Micro Hei\",\"Source Han Sans SC\",sans-serif;",
    "font-size:medium;line-height:1.6;color:#1f1f1f;-webkit-text-size-adjust:100%}",
    ".root.large{font-size:x-large}",
    "button,textarea,input{font:inherit;color:inherit;line-height:inherit}",
    ":focus{outline:none}",
    ":focus-visible{outline:.1875em solid #0b57d0;outline-offset:.125em}",
    ".sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}",
    ".launcher{position:fixed;right:1.25em;bottom:1.25em;z-index:2147483000;display:flex;align-items:center;gap:.5em;",
    "min-height:3.25em;padding:.625em 1.25em;border:.125em solid #fff;border-radius:1.625em;background:#a61b1b;color:#fff;",
    "font-size:1.125em;font-weight:700;letter-spacing:.05em;cursor:pointer;box-shadow:0 .25em .875em rgba(0,0,0,.3)}",
    ".launcher:hover{background:#7f1414}",
    ".launcher:focus-visible{outline:.1875em solid #0b57d0;outline-offset:.1875em}",
    ".launcher svg{width:1.5em;height:1.5em;fill:currentColor}",
    ".launcher[hidden]{display:none}",
    ".panel{position:fixed;right:1.25em;bottom:1.25em;z-index:2147483001;display:flex;flex-direction:column;",
    "width:25em;max-width:calc(100vw - 2.5em);height:42.5em;max-height:calc(100vh - 2.5em);background:#fff;",
    "border:1px solid #bdbdbd;border-radius:.625em;box-shadow:0 .5em 2em rgba(0,0,0,.28);overflow:hidden}",
    ".root.large .panel{width:20em;right:.8em;bottom:.8em;max-width:calc(100vw - 1.6em);max-height:calc(100vh - 1.6em)}",
    ".panel[hidden]{display:none}",
    ".head{display:flex;align-items:center;gap:.375em;padding:.5em .5em .5em 1em;background:#a61b1b;color:#fff}",
    ".head h2{flex:1;min-width:0;margin:0;font-size:1.125em;font-weight:700;line-height:1.6;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".head button{min-width:max(44px,1.85em);min-height:max(44px,1.85em);padding:.25em .625em;border:1px solid rgba(255,255,255,.7);",
    "border-radius:.375em;background:transparent;color:#fff;font-size:.9375em;cursor:pointer}",
    ".head button:hover{background:#7f1414}",
    ".head button[aria-pressed=true]{background:#fff;color:#a61b1b;font-weight:700}",
    ".head button:focus-visible{outline:.1875em solid #fff;outline-offset:1px}",
    ".head .close{font-size:1.5em;line-height:1;min-width:max(44px,1.2em);min-height:max(44px,1.2em);padding:0 .4em}",
    ".log{position:relative;flex:1;min-height:0;overflow-y:auto;padding:.875em .875em .375em;background:#f6f6f6;overscroll-behavior:contain}",
    ".msg{margin:0 0 .875em;display:flex;flex-direction:column;align-items:flex-start}",
    ".msg.user{align-items:flex-end}",
    ".bubble{max-width:92%;padding:.625em .875em;border-radius:.75em;white-space:pre-line;word-break:break-word;overflow-wrap:anywhere}",
    ".bot .bubble{background:#fff;border:1px solid #d6d6d6;border-top-left-radius:.25em}",
    ".user .bubble{background:#a61b1b;color:#fff;border-top-right-radius:.25em;white-space:pre-wrap}",
    ".error .bubble{background:#fff4f4;border:1px solid #c62828;color:#8b1010}",
    ".quote{display:block;margin:.375em 0 .125em;padding:.125em 0 .125em .625em;border-left:.25em solid #c98a00;background:#fffbea}",
    // A clerk's reply: one lead naming the notice, the item and its heading, then the sentences.
    ".lead{margin:0}",
    ".quotes{margin:.375em 0 0;padding:0;list-style:none}",
    ".quotes li{margin:.375em 0 0;padding:.25em .5em .25em .75em;border-left:.25em solid #c98a00;background:#fffbea}",
    ".quotes li[hidden]{display:none}",
    ".rest{margin:.5em 0 0}",
    ".more{display:inline-flex;align-items:center;min-height:max(44px,1.85em);margin-top:.5em;padding:.25em .875em;border:1px solid #0a4aa6;",
    "border-radius:1.375em;background:#fff;color:#0a4aa6;cursor:pointer}",
    ".more:hover{background:#eef4ff}",
    ".who{font-size:.8125em;color:#555;margin:0 .25em .125em}",
    ".sources{max-width:92%;margin-top:.375em;width:100%}",
    ".sources h3,.related h3{margin:.25em .25em .125em;font-size:.875em;font-weight:400;color:#555}",
    ".sources ul{list-style:none;margin:0;padding:0}",
    ".sources li{margin:.25em 0;background:#fff;border:1px solid #d6d6d6;border-left:.25em solid #a61b1b;border-radius:.375em}",
    ".sources summary{cursor:pointer;min-height:max(44px,1.85em);padding:.5em .625em;font-weight:700;color:#7f1414;list-style-position:inside}",
    ".sources summary:hover{text-decoration:underline}",
    ".sources p{margin:0 .625em .25em}",
    ".sources blockquote{margin:0 .625em .375em;padding:.375em .625em;background:#fafafa;border-left:.1875em solid #c98a00;white-space:pre-line}",
    ".sources a{display:inline-flex;align-items:center;min-height:max(44px,1.85em);margin:0 .625em .25em;color:#0a4aa6}",
    ".related{max-width:92%;margin-top:.375em}",
    ".rate{display:flex;flex-wrap:wrap;align-items:center;gap:.5em;margin:.375em .25em 0;font-size:.875em;color:#555}",
    ".rate button{min-width:max(44px,2.1em);min-height:max(44px,2.1em);border:1px solid #999;border-radius:1.6em;background:#fff;cursor:pointer;font-size:1em}",
    ".rate button[aria-pressed=true]{border-color:#a61b1b;background:#fdeaea}",
    ".why{max-width:92%;margin:.375em .25em 0;padding:.5em .625em;border:1px solid #ddd;border-radius:.5em;background:#fafafa;font-size:.875em}",
    ".why fieldset{border:0;margin:0;padding:0}.why legend{padding:0;margin-bottom:.25em}",
    ".why label{display:inline-flex;align-items:center;gap:.25em;margin:.125em .75em .125em 0;min-height:max(44px,2.1em)}",
    ".why input[type=radio]{width:1.25em;height:1.25em;margin:0}",
    ".why input[type=text]{width:100%;min-height:max(44px,2.1em);margin:.25em 0;padding:.25em .5em;border:1px solid #999;border-radius:.375em}",
    ".why button{min-height:max(44px,2.1em);padding:.25em .875em;border:1px solid #a61b1b;border-radius:1.6em;background:#a61b1b;color:#fff;cursor:pointer}",
    ".chips{display:flex;flex-wrap:wrap;gap:.5em;margin:.25em 0}",
    ".chip{min-height:max(44px,1.85em);padding:.375em .75em;border:1px solid #a61b1b;border-radius:1.2em;background:#fff;color:#8b1414;",
    "font-size:.9375em;text-align:left;cursor:pointer}",
    ".chip:hover{background:#fdeaea}",
    ".retry{margin-top:.375em;min-height:max(44px,1.85em);padding:.375em 1em;border:0;border-radius:.375em;background:#a61b1b;color:#fff;cursor:pointer}",
    ".retry:hover{background:#7f1414}",
    ".msg.typing .bubble{display:flex;gap:.3em;align-items:center;min-height:2.625em}",
    ".dot{width:.5em;height:.5em;border-radius:50%;background:#757575;animation:zg 1.2s infinite ease-in-out}",
    ".dot:nth-child(2){animation-delay:.2s}.dot:nth-child(3){animation-delay:.4s}",
    "@keyframes zg{0%,80%,100%{opacity:.3;transform:translateY(0)}40%{opacity:1;transform:translateY(-.25em)}}",
    "@media (prefers-reduced-motion:reduce){.dot{animation:none}}",
    ".compose{border-top:1px solid #d6d6d6;padding:.625em .75em .375em;background:#fff}",
    ".row{display:flex;gap:.5em;align-items:flex-end}",
    "textarea{flex:1;min-width:0;min-height:3em;max-height:8.75em;resize:none;padding:.625em .75em;border:1px solid #767676;border-radius:.5em;line-height:1.6;background:#fff}",
    "textarea[aria-invalid=true]{border-color:#c62828;border-width:2px}",
    ".send{min-width:4em;min-height:3em;padding:0 .875em;border:0;border-radius:.5em;background:#a61b1b;color:#fff;font-weight:700;cursor:pointer}",
    ".send:hover{background:#7f1414}",
    ".send:disabled{background:#8a8a8a;color:#fff;cursor:not-allowed}",
    ".meta{display:flex;justify-content:space-between;gap:.5em;margin-top:.25em;font-size:.8125em;color:#555}",
    ".count.over{color:#b3261e;font-weight:700}",
    ".foot{margin:0;padding:.375em .75em .625em;font-size:.8125em;color:#555;background:#fff}",
    ".foot a{color:#0a4aa6}",
    // Full screen (.full, set by fullScreen() below) wherever a floating panel would be too small
    // to read: phones, any screen at a large zoom (1366×768 at 200 % is 683×384 CSS px), and a
    // smaller window in 大字. Its size follows the visual viewport (the soft keyboard).
    ".root.full .panel{right:0;bottom:0;left:0;top:0;width:100%;max-width:none;height:100%;max-height:none;border:0;border-radius:0}",
    ".root.full .launcher{right:.75em;bottom:.75em}",
    "@media (pointer:coarse){.hint{display:none}}",
    // A short screen (a phone with its keyboard up, a laptop at 200 % zoom), or typing on a phone:
    // the conversation keeps at least half of it; the counter, the hint and the footer fold away
    // (declines and the welcome still give the phone, and each citation links to the notice).
    "@media (max-height:35em){.foot,.meta{display:none}.compose{padding:.375em .5em}.head{padding:.25em .25em .25em .75em}",
    "textarea{min-height:0;height:calc(2.85em + 2px)}.send{min-height:calc(2.85em + 2px)}}",
    ".root.full.composing .foot,.root.full.composing .meta{display:none}",
    ".root.full.composing .compose{padding:.375em .5em}",
    // Rendered into a page (the staff console's 试一试): a reply as the widget shows it, no panel.
    ".root.inline .msg{margin:0}",
    "@media (forced-colors:active){.launcher,.send,.chip,.retry,.more{border:2px solid ButtonText}}"
  ].join("\n");

  // ---- small DOM helpers: text always goes in as text -----------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "className") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 7 9zm5 0a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 12 9zm5 0a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 17 9z");
    svg.appendChild(path);
    return svg;
  }

  function newSender() {
    if (window.crypto && crypto.randomUUID) return "web-" + crypto.randomUUID();
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function abs(path) {
    // Links come from the server; anything but http(s) (say javascript:) falls back to the notice.
    var url = new URL(path, BASE + "/");
    return /^https?:$/.test(url.protocol) ? url.href : BASE + "/notice";
  }

  // ---- state, kept for this tab (sessionStorage) ------------------------------------------------

  function load() {
    try {
      var saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
      if (saved && typeof saved.sender === "string" && Array.isArray(saved.messages)) return saved;
    } catch (e) { /* storage blocked or damaged: start afresh */ }
    return { sender: newSender(), messages: [], open: false, large: false };
  }

  var state = load();

  function save() {
    if (RENDER_ONLY) return;
    try {
      state.messages = state.messages.slice(-60);
      sessionStorage.setItem(STORE, JSON.stringify(state));
    } catch (e) { /* private mode: the conversation just isn't kept */ }
  }

  // 大字 is remembered across visits on this site (the conversation only for the tab).
  var LARGE = "zgqa-widget-large:" + BASE;
  try {
    var remembered = localStorage.getItem(LARGE);
    if (remembered !== null) state.large = remembered === "1";
  } catch (e) { /* storage blocked: per tab only */ }
  // Full screen where a floating panel would be too small to read (em: the browser's font size):
  // phones, a laptop at 200 % zoom; in 大字 (1.5×) a window under 720 px (at 16 px) either way.
  var SMALL = window.matchMedia ? window.matchMedia("(max-width:30em),(max-height:35em)") : null;
  var SMALL_FOR_LARGE = window.matchMedia ? window.matchMedia("(max-width:45em),(max-height:45em)") : null;
  function fullScreen() {
    return !!((SMALL && SMALL.matches) || (state.large && SMALL_FOR_LARGE && SMALL_FOR_LARGE.matches));
  }

  // ---- the UI -----------------------------------------------------------------------------------

  var ids = { panel: "zgqa-panel", title: "zgqa-title", input: "zgqa-input", count: "zgqa-count", hint: "zgqa-hint" };
  var host = el("div", { id: "zgqa-widget-host" });
  // Inline !important outranks any host-page rule, so the page cannot restyle the host element.
  host.style.setProperty("all", "initial", "important");
  var shadow = host.attachShadow({ mode: "open" });
  if (shadow.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.appendChild(el("style", { text: CSS }));
  }

  var launcher = el("button", {
    type: "button", className: "launcher", "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": ids.panel,
    accesskey: "z", title: "在线咨询（快捷键 Alt+Z）",
    onclick: function () { openPanel(true); }
  }, [chatIcon(), el("span", { text: "在线咨询" })]);

  var largeBtn = el("button", { type: "button", "aria-pressed": "false", title: "放大或还原文字", onclick: toggleLarge }, ["大字"]);
  var newBtn = el("button", { type: "button", title: "清空当前对话，重新开始", onclick: newConversation }, ["新对话"]);
  var closeBtn = el("button", { type: "button", className: "close", "aria-label": "关闭咨询窗口", title: "关闭", onclick: function () { closePanel(true); } }, ["×"]);

  var log = el("div", { className: "log", role: "region", "aria-label": "对话记录", tabindex: "0" });
  var live = el("div", { className: "sr", role: "status", "aria-live": "polite", "aria-atomic": "true" });

  var input = el("textarea", {
    id: ids.input, rows: "2", placeholder: "请输入您的问题",
    "aria-describedby": ids.count + " " + ids.hint, enterkeyhint: "send", autocomplete: "off"
  });
  var count = el("span", { id: ids.count, className: "count", text: "0/" + MAX });
  var sendBtn = el("button", { type: "submit", className: "send", disabled: true }, ["发送"]);
  var form = el("form", { className: "compose", novalidate: true, onsubmit: function (e) { e.preventDefault(); submit(); } }, [
    el("label", { className: "sr", "for": ids.input, text: "请输入您的问题" }),
    el("div", { className: "row" }, [input, sendBtn]),
    el("div", { className: "meta" }, [
      el("span", { id: ids.hint, className: "hint", text: "Enter 发送，Shift+Enter 换行" }),
      count
    ])
  ]);

  var footText = "回答均摘自已公开的通报原文，仅供参考。";
  var foot = el("p", { className: "foot" }, [
    footText,
    CONFIG.phone ? "其他问题请致电 " + CONFIG.phone + "。" : "",
    CONFIG.noticeUrl ? el("a", { href: abs(CONFIG.noticeUrl), target: "_blank", rel: "noopener" }, [
      "阅读通报全文", el("span", { className: "sr", text: "（在新窗口打开）" })
    ]) : null
  ]);

  var panel = el("section", { id: ids.panel, className: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": ids.title, hidden: true }, [
    el("div", { className: "head" }, [
      el("h2", { id: ids.title, text: CONFIG.title || "在线咨询" }),
      largeBtn, newBtn, closeBtn
    ]),
    log, live, form, foot
  ]);

  var root = el("div", { className: "root", lang: "zh-CN" }, [launcher, panel]);
  shadow.appendChild(root);

  // ---- rendering --------------------------------------------------------------------------------

  function chips(list, labelText, most) {
    if (!list || !list.length) return null;
    var titleId = "zgqa-chips-" + Math.random().toString(36).slice(2, 8);
    return el("div", { className: "related", role: "group", "aria-labelledby": titleId }, [
      el("h3", { id: titleId, text: labelText }),
      el("div", { className: "chips" }, list.slice(0, most || 6).map(function (q) {
        return el("button", { type: "button", className: "chip", onclick: function () { (askHook || ask)(q); } }, [q]);
      }))
    ]);
  }

  function citationLabel(c) {
    if (c.number) return "第" + c.number + "条 " + (c.heading || "");
    return [c.path, c.heading].filter(Boolean).join(" ");
  }

  // A reply reads as a clerk's: one lead naming the notice, the item and its heading, then the
  // quoted sentences as a short list, each whole (the citation's `quotes`). A long one shows the
  // lead and its first sentence, the rest behind 展开全文. A reply without `quotes` (an older
  // server, a stand-in) is shown as its text, the quote set off.
  var FOLD_QUOTES = 3, FOLD_CHARS = 160;

  function answerBubble(message) {
    var text = message.text, citations = message.citations;
    var bubble = el("div", { className: "bubble" });
    var c = citations && citations[0];
    var quote = c && typeof c.quote === "string" ? c.quote : "";
    var at = quote ? text.indexOf(quote) : -1;
    var quotes = c && Array.isArray(c.quotes) ? c.quotes.filter(function (q) { return typeof q === "string" && q; }) : [];
    if (at >= 0 && quotes.length) {
      var lead = text.slice(0, at).trim() || ("根据" + (c.notice || "通报") + citationLabel(c) + "：");
      var rest = text.slice(at + quote.length).trim();
      var listId = "zgqa-q-" + Math.random().toString(36).slice(2, 8);
      var items = quotes.map(function (q) { return el("li", { text: q }); });
      var chars = quotes.reduce(function (n, q) { return n + q.length; }, 0);
      bubble.appendChild(el("p", { className: "lead", text: lead }));
      bubble.appendChild(el("ul", { id: listId, className: "quotes", "aria-label": "通报原文" }, items));
      if (quotes.length > FOLD_QUOTES || (quotes.length > 1 && chars > FOLD_CHARS)) {
        var more = el("button", { type: "button", className: "more", "aria-controls": listId });
        var show = function (all) {
          items.forEach(function (li, i) { li.hidden = !all && i > 0; });
          more.setAttribute("aria-expanded", all ? "true" : "false");
          more.textContent = all ? "收起" : "展开全文（共" + quotes.length + "句）";
        };
        more.addEventListener("click", function () {
          message.expanded = !message.expanded;
          show(message.expanded);
          save();
        });
        show(!!message.expanded);
        bubble.appendChild(more);
      }
      if (rest) bubble.appendChild(el("p", { className: "rest", text: rest }));
    } else if (at >= 0) {
      bubble.appendChild(document.createTextNode(text.slice(0, at)));
      bubble.appendChild(el("span", { className: "quote", text: quote }));
      bubble.appendChild(document.createTextNode(text.slice(at + quote.length)));
    } else {
      bubble.textContent = text;
    }
    return bubble;
  }

  function sources(citations, text) {
    if (!citations || !citations.length) return null;
    var titleId = "zgqa-src-" + Math.random().toString(36).slice(2, 8);
    return el("div", { className: "sources", role: "group", "aria-labelledby": titleId }, [
      el("h3", { id: titleId, text: "出处（点击展开原文）" }),
      el("ul", null, citations.map(function (c) {
        var label = citationLabel(c);
        return el("li", null, [
          el("details", null, [
            el("summary", { text: label }),
            // the quote the answer already shows is not repeated: the notice, and the link to it
            (c.quote && text && text.indexOf(c.quote) >= 0) ? el("p", { className: "src-notice", text: c.notice || "" })
              : el("blockquote", { text: c.quote || c.passage || "" }),
            c.url ? el("a", { href: abs(c.url), target: "_blank", rel: "noopener", className: "open" }, [
              "在通报原文中查看" + (c.number ? "第" + c.number + "条" : ""),
              el("span", { className: "sr", text: "（在新窗口打开）" })
            ]) : null
          ])
        ]);
      }))
    ]);
  }

  function render(message, index) {
    var node;
    if (message.role === "user") {
      node = el("div", { className: "msg user" }, [
        el("span", { className: "sr", text: "您说：" }),
        el("div", { className: "bubble", text: message.text })
      ]);
    } else if (message.role === "error") {
      node = el("div", { className: "msg bot error" }, [
        el("span", { className: "who", text: "提示" }),
        el("div", { className: "bubble", text: message.text }),
        message.retry ? el("button", { type: "button", className: "retry", onclick: function () { retry(index); } }, ["重试"]) : null
      ]);
    } else {
      node = el("div", { className: "msg bot" + (message.abstained ? " abstained" : "") }, [
        el("span", { className: "who", text: "咨询助手" }),
        answerBubble(message),
        sources(message.citations, message.text),
        message.turnId ? rating(message, index) : null,
        // the overview's topics and a topic's items are the answer's own buttons, all of them
        message.kind === "overview" ? chips(message.suggestions, "点一个方面查看其中的整改任务：", 20)
          : message.kind === "topic" ? chips(message.suggestions, "各条的进展：", 20)
          : chips(message.suggestions, "您可能还想问：")
      ]);
    }
    return node;
  }

  // 👍 / 👎 under an answer; 👎 asks (optionally) why, and always gives the notice's channels.
  function rating(message, index) {
    var box = el("div", { className: "rate-box" });
    var thanks = el("span", { role: "status", text: message.rating ? "感谢您的评价。" : "" });
    function vote(value) {
      message.rating = value;
      state.messages[index] = message;
      save();
      sendFeedback({ turn_id: message.turnId, rating: value });
      box.replaceWith(rating(message, index));
    }
    var up = el("button", { type: "button", "aria-label": "有帮助", title: "有帮助", "aria-pressed": String(message.rating === "up"),
      onclick: function () { vote("up"); } }, ["👍"]);
    var down = el("button", { type: "button", "aria-label": "没有帮助", title: "没有帮助", "aria-pressed": String(message.rating === "down"),
      onclick: function () { vote("down"); } }, ["👎"]);
    box.appendChild(el("div", { className: "rate", role: "group", "aria-label": "这条回答有帮助吗？" }, [
      el("span", { text: "这条回答有帮助吗？" }), up, down, thanks
    ]));
    if (message.rating === "down") box.appendChild(why(message));
    return box;
  }

  function why(message) {
    var name = "why-" + message.turnId;
    var reasons = ["没回答我的问题", "内容看不懂", "其他"];
    var comment = el("input", { type: "text", maxlength: "200", id: name + "-c", "aria-label": "补充说明（选填）", placeholder: "补充说明（选填）" });
    var done = el("p", { role: "status", text: message.explained ? "已收到您的反馈，谢谢。" : "" });
    var channels = [CONFIG.phone ? "电话 " + CONFIG.phone : "", CONFIG.email ? "邮箱 " + CONFIG.email : ""].filter(Boolean).join("，");
    var form = el("form", { className: "why", onsubmit: function (e) {
      e.preventDefault();
      var picked = form.querySelector("input[name=" + name + "]:checked");
      sendFeedback({ turn_id: message.turnId, rating: "down", reason: picked ? picked.value : null,
                     comment: comment.value.trim() || null });
      message.explained = true;
      save();
      done.textContent = "已收到您的反馈，谢谢。";
    } }, [
      el("fieldset", null, [el("legend", { text: "哪里没帮到您？（选填）" })].concat(reasons.map(function (r) {
        return el("label", null, [el("input", { type: "radio", name: name, value: r }), r]);
      }))),
      comment,
      el("button", { type: "submit" }, ["提交反馈"]),
      channels ? el("p", { text: "如需进一步帮助，欢迎联系：" + channels + "。" }) : null,
      done
    ]);
    return form;
  }

  function sendFeedback(fields) {
    var body = { sender: state.sender };
    Object.keys(fields).forEach(function (k) { if (fields[k] !== null && fields[k] !== undefined) body[k] = fields[k]; });
    fetch(abs(CONFIG.feedback || "/webhooks/rest/feedback"), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).catch(function () { /* a lost vote costs nothing the citizen needs */ });
  }

  function renderAll() {
    log.textContent = "";
    log.appendChild(el("div", { className: "msg bot welcome" }, [
      el("span", { className: "who", text: "咨询助手" }),
      el("div", { className: "bubble", text: CONFIG.welcome || "您好！请问您想了解什么？" }),
      chips(CONFIG.suggestions, "您可以这样问：")
    ]));
    state.messages.forEach(function (m, i) { log.appendChild(render(m, i)); });
    scrollDown();
  }

  function add(message) {
    state.messages.push(message);
    save();
    var node = render(message, state.messages.length - 1);
    log.appendChild(node);
    var question = node.previousElementSibling;
    if (message.role === "bot" && question && question.classList.contains("user")) {
      // A long answer is read from its start: keep the question at the top, not the answer's end.
      log.scrollTop = question.offsetTop - 8;
    } else {
      scrollDown();
    }
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  var typing = null;
  function showTyping(on) {
    if (on && !typing) {
      typing = el("div", { className: "msg bot typing" }, [
        el("span", { className: "who", text: "咨询助手" }),
        el("div", { className: "bubble", "aria-label": "正在查找答案" }, [
          el("span", { className: "dot" }), el("span", { className: "dot" }), el("span", { className: "dot" }),
          el("span", { className: "sr", text: "正在查找答案，请稍候" })
        ])
      ]);
      log.appendChild(typing);
      announce("正在查找答案，请稍候。");
      scrollDown();
    } else if (!on && typing) {
      typing.remove();
      typing = null;
    }
  }

  function announce(text) {
    // Cleared first so the same words are announced again.
    live.textContent = "";
    setTimeout(function () { live.textContent = text; }, 50);
  }

  // ---- talking to the server --------------------------------------------------------------------

  var busy = false;

  function ask(question) {
    question = String(question || "");
    if (!question.trim() || busy) return;
    if (question.length > MAX) {
      announce("问题最多" + MAX + "个字，请精简后再发送。");
      return;
    }
    add({ role: "user", text: question });
    send(question);
  }

  function send(question) {
    busy = true;
    updateCount();
    showTyping(true);
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, TIMEOUT_MS);
    fetch(abs(CONFIG.webhook || "/webhooks/rest/webhook"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: state.sender, message: question, metadata: DOC ? { channel: "widget", page: location.href.slice(0, 300), doc: DOC } : { channel: "widget", page: location.href.slice(0, 300) } }),
      credentials: "omit",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        return { status: response.status, ok: response.ok, body: body };
      });
    }).then(function (result) {
      showTyping(false);
      if (result.ok && Array.isArray(result.body)) {
        result.body.forEach(function (m) { add(fromReply(m)); });
        var last = result.body[result.body.length - 1];
        announce(last ? "咨询助手回答：" + summary(last) : "");
      } else {
        var message = result.body && result.body.message;
        var canRetry = result.status >= 500 || result.status === 429 || !message;
        fail(message || "服务暂时无法回答（错误 " + result.status + "）。请稍后点击“重试”。", canRetry ? question : null);
      }
    }).catch(function () {
      showTyping(false);
      fail("网络连接失败，您的问题没有发送成功。请检查网络后点击“重试”。", question);
    }).then(function () {
      clearTimeout(timer);
      showTyping(false);
      busy = false;
      updateCount();
    });
  }

  // A reply of the REST channel as the conversation keeps it.
  function fromReply(m) {
    var custom = (m && m.custom) || {};
    return { role: "bot", text: String(m && m.text || ""), citations: Array.isArray(custom.citations) ? custom.citations : [],
             suggestions: Array.isArray(custom.suggestions) ? custom.suggestions : [], abstained: !!custom.abstained,
             turnId: typeof custom.turn_id === "string" ? custom.turn_id : null,
             kind: typeof custom.kind === "string" ? custom.kind : "" };
  }

  // What the live region reads: the item and the answer's first sentence, not a whole long answer
  // (the full answer is in the conversation, to read on).
  function summary(message) {
    var text = String(message.text || "");
    var first = text.split(/(?<=[。！？；])/)[0];
    var cites = (message.custom && message.custom.citations) || [];
    if (cites.length && first.length < text.length) return first + (cites.length ? "（完整回答见对话记录）" : "");
    return text.length > 120 ? text.slice(0, 120) + "……（完整回答见对话记录）" : text;
  }

  function fail(text, question) {
    add({ role: "error", text: text, retry: question || null });
    announce(text);
  }

  function retry(index) {
    var message = state.messages[index];
    if (!message || !message.retry || busy) return;
    state.messages.splice(index, 1);
    save();
    renderAll();
    send(message.retry);
    input.focus();
  }

  function submit() {
    var text = input.value;
    if (!text.trim() || text.length > MAX || busy) {
      if (text.length > MAX) announce("问题最多" + MAX + "个字，请精简后再发送。");
      return;
    }
    input.value = "";
    ask(text);
    input.focus();
  }

  // ---- controls ---------------------------------------------------------------------------------

  function updateCount() {
    var n = input.value.length;
    var over = n > MAX;
    count.textContent = over ? "已超出" + (n - MAX) + "字（最多" + MAX + "字）" : n + "/" + MAX;
    count.className = over ? "count over" : "count";
    input.setAttribute("aria-invalid", over ? "true" : "false");
    sendBtn.disabled = busy || over || !input.value.trim();
  }

  function openPanel(focus) {
    panel.hidden = false;
    launcher.hidden = true;
    launcher.setAttribute("aria-expanded", "true");
    state.open = true;
    save();
    layout();
    // The welcome is read from its first line; a conversation from its end.
    if (state.messages.length) scrollDown(); else log.scrollTop = 0;
    if (focus) input.focus();
  }

  // Full screen or floating, sized to what the reader can see; then modal() or not.
  function layout() {
    var full = fullScreen();
    root.classList.toggle("full", full);
    fitVisualViewport();
    modal();
  }

  // Full screen, the panel covers the visual viewport: with a phone's soft keyboard up that is
  // what is left above the keyboard (the layout viewport stays the whole screen in Chrome and
  // Safari), so the conversation and the input stay in view and the conversation keeps at least
  // half of it. Pixel values here come from the viewport itself, never from a design size.
  var vv = window.visualViewport || null;
  function fitVisualViewport() {
    var style = panel.style;
    if (vv && root.classList.contains("full") && !panel.hidden) {
      style.top = Math.max(0, vv.offsetTop) + "px";
      style.left = Math.max(0, vv.offsetLeft) + "px";
      style.width = vv.width + "px";
      style.height = vv.height + "px";
      style.bottom = "auto";
      style.right = "auto";
    } else {
      ["top", "left", "width", "height", "bottom", "right"].forEach(function (p) { style.removeProperty(p); });
    }
  }

  // Typing on a phone, the hint, the counter and the footer fold away (a compact composer). They
  // come back a moment after the focus leaves the composer, so a tap on 发送 lands where it aimed.
  var unfold = null;
  function compact(on) {
    clearTimeout(unfold);
    if (on) root.classList.add("composing");
    else unfold = setTimeout(function () { root.classList.remove("composing"); }, 250);
  }

  // Full screen, the panel is a modal dialog: the page behind is inert (no Tab lands there, a
  // screen reader stays in the dialog). Floating, it is a non-modal dialog.
  var madeInert = [];
  function modal() {
    var on = !panel.hidden && root.classList.contains("full");
    panel.setAttribute("aria-modal", on ? "true" : "false");
    madeInert.forEach(function (node) { node.inert = false; node.removeAttribute("aria-hidden"); });
    madeInert = [];
    if (!on) return;
    Array.prototype.forEach.call(document.body.children, function (node) {
      if (node !== host && !node.inert && node.tagName !== "SCRIPT") {
        node.inert = true;
        node.setAttribute("aria-hidden", "true");
        madeInert.push(node);
      }
    });
  }
  [SMALL, SMALL_FOR_LARGE].forEach(function (query) {
    if (query && query.addEventListener) query.addEventListener("change", layout);
  });
  if (vv) {
    vv.addEventListener("resize", fitVisualViewport);
    vv.addEventListener("scroll", fitVisualViewport);
  }

  function closePanel(focus) {
    panel.hidden = true;
    layout();
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    state.open = false;
    save();
    if (focus) launcher.focus();
  }

  function toggleLarge() {
    state.large = !state.large;
    applyLarge();
    save();
    try { localStorage.setItem(LARGE, state.large ? "1" : "0"); } catch (e) { /* per tab only */ }
  }

  function applyLarge() {
    root.classList.toggle("large", !!state.large);
    largeBtn.setAttribute("aria-pressed", state.large ? "true" : "false");
    layout();
  }

  function newConversation() {
    var old = state.sender;
    // Rasa's reset command frees the old conversation on the server; failures do not matter.
    fetch(abs(CONFIG.webhook || "/webhooks/rest/webhook"), {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit",
      body: JSON.stringify({ sender: old, message: "/restart" })
    }).catch(function () {});
    state.sender = newSender();
    state.messages = [];
    save();
    renderAll();
    announce("已开始新的对话。");
    input.focus();
  }

  input.addEventListener("input", updateCount);
  form.addEventListener("focusin", function () { compact(true); });
  form.addEventListener("focusout", function (e) { if (!form.contains(e.relatedTarget)) compact(false); });
  input.addEventListener("keydown", function (e) {
    // Enter sends; Shift+Enter breaks the line; Enter that confirms an IME candidate does neither.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      e.preventDefault();
      closePanel(true);
      return;
    }
    if (e.key === "Tab") {
      // Tab cycles within the dialog while it has focus (out of it only by Escape or 关闭).
      var items = Array.prototype.filter.call(
        panel.querySelectorAll("button, a[href], summary, textarea, input, [tabindex]:not([tabindex='-1'])"),
        function (node) { return !node.disabled && node.getClientRects().length; });
      if (!items.length) return;
      var first = items[0], last = items[items.length - 1], active = shadow.activeElement;
      if (e.shiftKey && (active === first || !panel.contains(active))) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && (active === last || !panel.contains(active))) { e.preventDefault(); first.focus(); }
    }
  });

  // A link to the widget on the page (the demo site's skip link 跳到在线咨询, first on the page):
  // it opens the panel with the focus in the input, two keystrokes from the top (Tab, Enter).
  if (!RENDER_ONLY) document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest ? e.target.closest("a[data-zgqa-open], a[href='#" + host.id + "']") : null;
    if (!link) return;
    e.preventDefault();
    openPanel(true);
  });

  function mount() {
    document.body.appendChild(host);
    applyLarge();
    renderAll();
    updateCount();
    if (state.open) openPanel(false);
  }

  if (RENDER_ONLY) {
    // The reply alone, in its own Shadow DOM with the widget's stylesheet: what the staff console
    // shows staff is what a citizen sees. Chips ask through options.ask; no 👍/👎 (no turn id).
    var askHook = null;
    window.zgqaWidget = {
      renderReply: function (reply, options) {
        var box = el("div", { className: "zgqa-reply" });
        box.style.display = "block";
        var inner = box.attachShadow({ mode: "open" });
        if (sheet) inner.adoptedStyleSheets = [sheet];
        else inner.appendChild(el("style", { text: CSS }));
        var message = fromReply(reply);
        message.turnId = null;
        askHook = options && typeof options.ask === "function" ? options.ask : function () {};
        inner.appendChild(el("div", { className: "root inline", lang: "zh-CN" }, [render(message, -1)]));
        return box;
      }
    };
  } else if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
