// Move keyboard focus to the node the link points at (#item-16), so screen readers start there.
(function () {
  "use strict";
  function focusTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var node = id && document.getElementById(id);
    if (node) {
      if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
      node.focus({ preventScroll: true });
      if (node.scrollIntoView) node.scrollIntoView({ block: "start" });
    }
  }
  window.addEventListener("hashchange", focusTarget);
  focusTarget();
})();
