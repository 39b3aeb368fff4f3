// Move keyboard focus to the node the link points at (#item-16), so screen readers start there.
(function () {
  "use strict";
  // Arriving from an answer (#item-16?hl=…): the note explaining the marks, with 返回对话, stands
  // just above the passage, so the passage, its marks and the note are in view together.
  function placeNote(node) {
    var note = document.querySelector(".marked-note");
    if (!note || !node.parentNode) return null;
    if (!note.querySelector(".back")) {
      var back = document.createElement("button");
      back.type = "button";
      back.className = "back";
      back.textContent = "返回对话";
      back.addEventListener("click", function () {
        if (window.opener && !window.opener.closed) { window.close(); } else { history.back(); }
      });
      note.appendChild(document.createTextNode(" "));
      note.appendChild(back);
    }
    node.parentNode.insertBefore(note, node);
    return note;
  }

  function focusTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var node = id && document.getElementById(id);
    if (node) {
      if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
      var note = placeNote(node);
      node.focus({ preventScroll: true });
      var top = note || node;
      var show = function () { if (top.scrollIntoView) top.scrollIntoView({ block: "start" }); };
      show();
      // the browser's own scroll to #item-16 comes after this script on a first load: again after it
      if (document.readyState !== "complete") window.addEventListener("load", function () { setTimeout(show, 0); });
    }
  }
  window.addEventListener("hashchange", focusTarget);
  focusTarget();
})();
