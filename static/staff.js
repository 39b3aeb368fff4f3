/* The staff console: every view is filled from /staff/api/ with textContent (a citizen's
   question is text, never markup). No external resources. */
(function () {
  "use strict";
  var API = "/staff/api/";
  var csrf = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function say(text) {
    var status = document.getElementById("status");
    if (status) status.textContent = text;
  }

  function call(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf && method !== "GET") headers["X-CSRFToken"] = csrf;
    return fetch(API + path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 401 && path !== "login") { window.location.href = "/staff/login"; }
        return { status: response.status, data: data };
      });
    });
  }

  /* ---- sign-in ---------------------------------------------------------------------------- */
  var login = document.getElementById("login");
  if (login) {
    login.addEventListener("submit", function (event) {
      event.preventDefault();
      var message = document.getElementById("login-error");
      message.hidden = true;
      call("POST", "login", { username: login.username.value, password: login.password.value }).then(function (r) {
        if (r.status === 200) { window.location.href = "/staff/"; return; }
        message.textContent = (r.data && r.data.message) || "登录失败，请稍后再试。";
        message.hidden = false;
        login.password.value = "";
        login.password.focus();
      });
    });
    return;
  }

  /* ---- tabs ------------------------------------------------------------------------------- */
  var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
  var loaders = { "tab-turns": loadTurns, "tab-teach": loadTeach, "tab-notices": loadNotices };
  function choose(tab, focus) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) tab.focus();
    if (loaders[tab.id]) loaders[tab.id]();
  }
  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { choose(tab, false); });
    tab.addEventListener("keydown", function (event) {
      var next = null;
      if (event.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
      if (event.key === "ArrowLeft") next = tabs[(i + tabs.length - 1) % tabs.length];
      if (next) { event.preventDefault(); choose(next, true); }
    });
  });

  document.getElementById("logout").addEventListener("click", function () {
    call("POST", "logout", {}).then(function () { window.location.href = "/staff/login"; });
  });

  /* ---- 试一试 ------------------------------------------------------------------------------ */
  // Each reply is drawn by the widget's own code (widget.js, data-render-only), so staff see exactly
  // what a citizen would; beside it, why (in plain Chinese) and the 详细 data.
  var trySender = "try-" + Math.random().toString(36).slice(2);
  var tryForm = document.getElementById("try-form");
  var tryLog = document.getElementById("try-log");
  function showReply(m) {
    if (window.zgqaWidget && window.zgqaWidget.renderReply) return window.zgqaWidget.renderReply(m, { ask: ask });
    var reply = el("div", { className: "reply" }, [el("p", { text: m.text })]);  // widget.js did not load
    ((m.custom && m.custom.citations) || []).forEach(function (c) {
      reply.appendChild(el("p", { className: "cite" }, [el("a", { href: c.url, target: "_blank", rel: "noopener",
        text: "出处：" + (c.notice || "") + (c.number ? "第" + c.number + "条 " : "") + (c.heading || "") })]));
    });
    return reply;
  }
  function ask(text) {
    var doc = document.getElementById("try-doc").value || null;
    var replies = el("div", { className: "replies" });
    var explain = el("div", { className: "explain" });
    var turn = el("div", { className: "turn" }, [el("p", { className: "asked", text: "问：" + text }),
      el("div", { className: "turn-body" }, [replies, explain])]);
    tryLog.appendChild(turn);
    call("POST", "try", { sender: trySender, message: text, doc: doc }).then(function (r) {
      if (r.status !== 200) { replies.appendChild(el("p", { className: "error", text: r.data.message || "出错了" })); return; }
      (r.data.messages || []).forEach(function (m) { replies.appendChild(showReply(m)); });
      if (r.data.explanation) {
        explain.appendChild(el("p", { className: "why" }, [el("strong", { text: "为什么：" }),
          document.createTextNode(r.data.explanation.summary)]));
      }
      explain.appendChild(el("details", {}, [el("summary", { text: "详细" }),
        el("pre", { text: JSON.stringify(r.data.details, null, 2) })]));
      turn.scrollIntoView({ block: "nearest" });
    });
  }
  tryForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var input = document.getElementById("try-input");
    var text = input.value.trim();
    if (!text) { say("请输入要试问的问题。"); return; }
    input.value = "";
    ask(text);
  });
  document.getElementById("try-new").addEventListener("click", function () {
    call("POST", "try", { sender: trySender, message: "/restart" });
    tryLog.textContent = "";
    say("已开始新对话。");
  });

  /* ---- 群众提问 ----------------------------------------------------------------------------- */
  var page = 1;
  var filter = document.getElementById("turn-filter");
  function query() {
    var params = [];
    Array.prototype.forEach.call(filter.elements, function (f) {
      if (!f.name) return;
      if (f.type === "checkbox") { if (f.checked) params.push(f.name + "=1"); }
      else if (f.value) params.push(f.name + "=" + encodeURIComponent(f.value));
    });
    return params.join("&");
  }
  function loadTurns() {
    var q = query();
    document.getElementById("csv").setAttribute("href", "api/turns.csv" + (q ? "?" + q : ""));
    var docParam = filter.doc.value ? "?doc=" + encodeURIComponent(filter.doc.value) : "";
    var chart = document.getElementById("chart");
    chart.src = "api/chart.svg" + docParam + (docParam ? "&" : "?") + "t=" + Date.now();
    call("GET", "days" + docParam).then(function (r) {
      var days = r.data || [], total = 0, declined = 0, down = 0;
      days.forEach(function (d) { total += d.questions; declined += d.declined; down += d.down; });
      var caption = "近30天共 " + total + " 个问题，未回答 " + declined + " 个，👎 " + down + " 个。";
      document.getElementById("chart-caption").textContent = caption;
      chart.alt = "每日提问数图表：" + caption;
    });
    call("GET", "turns?" + q + "&page=" + page).then(function (r) {
      var rows = document.getElementById("turn-rows");
      rows.textContent = "";
      if (r.status !== 200) { say(r.data.message || "读取失败"); return; }
      (r.data.rows || []).forEach(function (t) {
        rows.appendChild(el("tr", {}, [
          el("td", { text: (t.at || "").replace("T", " ").slice(0, 16) }),
          el("td", { text: t.cited_doc || t.doc || "" }),
          el("td", { text: t.question }),
          el("td", { text: t.cited_anchors || "" }),
          el("td", { text: t.answered ? "已回答" : "没有回答" }),
          el("td", { text: t.rating === "down" ? "👎" + (t.feedback_reason ? " " + t.feedback_reason : "")
                                               : t.rating === "up" ? "👍" : "" })
        ]));
      });
      var pages = Math.max(1, Math.ceil(r.data.total / r.data.per_page));
      document.getElementById("page-info").textContent = "第 " + r.data.page + " / " + pages + " 页，共 " + r.data.total + " 条";
      document.getElementById("prev").disabled = r.data.page <= 1;
      document.getElementById("next").disabled = r.data.page >= pages;
    });
  }
  filter.addEventListener("submit", function (event) { event.preventDefault(); page = 1; loadTurns(); });
  document.getElementById("prev").addEventListener("click", function () { page = Math.max(1, page - 1); loadTurns(); });
  document.getElementById("next").addEventListener("click", function () { page += 1; loadTurns(); });

  /* ---- 待处理 ------------------------------------------------------------------------------- */
  var items = {};
  function itemsOf(doc) {
    if (items[doc]) return Promise.resolve(items[doc]);
    return call("GET", "items?doc=" + encodeURIComponent(doc)).then(function (r) { items[doc] = r.data || []; return items[doc]; });
  }
  function label(group, anchor, replace, row) {
    call("POST", "labels", { question: group.question, doc: group.doc, anchor: anchor, replace: !!replace }).then(function (r) {
      var note = row.querySelector(".note");
      if (r.status === 201) {
        note.textContent = "已标注。机器人几秒钟后按新的标注回答。";
        say("已标注：" + group.question);
        row.querySelector("fieldset").disabled = true;
        loadLabels();
      } else if (r.status === 409) {
        note.textContent = r.data.message;
        if (!r.data.earlier.same) {
          var again = el("button", { type: "button", className: "secondary", text: "改为这次的标注" });
          again.addEventListener("click", function () { label(group, anchor, true, row); });
          note.appendChild(document.createTextNode(" "));
          note.appendChild(again);
        }
      } else {
        note.textContent = r.data.message || "标注失败";
      }
    });
  }
  function loadTeach() {
    var list = document.getElementById("groups");
    list.textContent = "";
    say("正在读取待处理的问题…");
    call("GET", "pending").then(function (r) {
      var groups = (r.data && r.data.groups) || [];
      say(groups.length ? "共 " + groups.length + " 组待处理。" : "没有待处理的问题。");
      groups.forEach(function (group, index) {
        var select = el("select", { id: "pick-" + index });
        var row = el("li", { className: "group" }, [
          el("p", { className: "question", text: group.question }),
          el("p", { className: "meta", text: "被问 " + group.count + " 次（" + group.why.join("、") + "）" +
            (group.questions.length > 1 ? "；相近问法：" + group.questions.slice(1, 6).join(" / ") : "") }),
          el("fieldset", {}, [
            el("legend", { className: "sr", text: "标注：" + group.question }),
            el("label", { for: "pick-" + index, text: "答案在" }), select,
            el("button", { type: "button", className: "do-label", text: "标注为这一条" }),
            el("button", { type: "button", className: "secondary not-covered", text: "通报未涉及" })
          ]),
          el("p", { className: "note", role: "status" })
        ]);
        itemsOf(group.doc).then(function (passages) {
          passages.forEach(function (p) {
            select.appendChild(el("option", { value: p.anchor, text: p.label + "：" + p.first }));
          });
        });
        row.querySelector(".do-label").addEventListener("click", function () { label(group, select.value, false, row); });
        row.querySelector(".not-covered").addEventListener("click", function () { label(group, "-", false, row); });
        list.appendChild(row);
      });
    });
    loadLabels();
  }
  function loadLabels() {
    call("GET", "labels").then(function (r) {
      var list = document.getElementById("labels");
      list.textContent = "";
      (r.data || []).forEach(function (l) {
        var text = "“" + l.question + "” → " + (l.anchor === "-" ? "通报未涉及" : l.anchor) + "（" + l.by + "，" +
          (l.at || "").replace("T", " ").slice(0, 16) + (l.undone_at ? "，已撤销" : "") + "）";
        var item = el("li", {}, [el("span", { text: text })]);
        if (!l.undone_at) {
          var undo = el("button", { type: "button", className: "secondary", text: "撤销" });
          undo.addEventListener("click", function () {
            call("DELETE", "labels/" + l.id).then(function (u) {
              say(u.status === 200 ? "已撤销：" + l.question : (u.data.message || "撤销失败"));
              loadLabels();
            });
          });
          item.appendChild(document.createTextNode(" "));
          item.appendChild(undo);
        }
        list.appendChild(item);
      });
    });
  }

  /* ---- 通报 -------------------------------------------------------------------------------- */
  function percent(x) { return Math.round(x * 1000) / 10 + "%"; }
  function loadNotices() {
    call("GET", "notices").then(function (r) {
      var rows = document.getElementById("notice-rows");
      rows.textContent = "";
      (r.data || []).forEach(function (n) {
        rows.appendChild(el("tr", {}, [
          el("td", { text: n.title }), el("td", { text: n.date }), el("td", { text: n.period }),
          el("td", { text: String(n.asked) }), el("td", { text: percent(n.declined) }), el("td", { text: percent(n.down) }),
          el("td", { text: n.top_items.map(function (t) { return t.label + "（" + t.count + "）"; }).join("；") })
        ]));
      });
    });
  }
  var upload = document.getElementById("upload");
  function notice() {
    var body = {};
    Array.prototype.forEach.call(upload.elements, function (f) { if (f.name) body[f.name] = f.value; });
    return body;
  }
  upload.addEventListener("submit", function (event) {
    event.preventDefault();
    call("POST", "notices/preview", notice()).then(function (r) {
      var preview = document.getElementById("preview");
      if (r.status !== 200) { preview.hidden = true; say(r.data.message || "无法读取"); return; }
      document.getElementById("structure").textContent = r.data.structure.join("\n");
      var warnings = document.getElementById("warnings");
      warnings.textContent = "";
      r.data.warnings.forEach(function (w) { warnings.appendChild(el("li", { text: w })); });
      preview.hidden = false;
      say("请核对读到的结构，无误后点“确认无误，上线”。");
      document.getElementById("publish").focus();
    });
  });
  document.getElementById("publish").addEventListener("click", function () {
    call("POST", "notices", notice()).then(function (r) {
      if (r.status === 201) {
        say("已添加“" + r.data.doc + "”，正在更新索引，约一分钟内上线。");
        document.getElementById("preview").hidden = true;
        upload.reset();
      } else {
        say(r.data.message || "添加失败");
      }
    });
  });

  call("GET", "session").then(function (r) { if (r.status === 200) csrf = r.data.csrf_token; });
})();
