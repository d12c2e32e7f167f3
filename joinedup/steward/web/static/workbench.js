// Keyboard shortcuts and small conveniences; every page works without this file.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("select[data-autosubmit]")) { ev.target.form.submit(); }
  });
  // queue: j/k move the selection, Enter or click opens the pair
  var list = document.querySelector("[data-nav-list] tbody");
  var rows = list ? Array.prototype.slice.call(list.querySelectorAll("tr[data-href]")) : [];
  var current = -1;
  function select(i) {
    if (!rows.length) { return; }
    if (current >= 0) { rows[current].classList.remove("selected"); }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows[current].classList.add("selected");
    rows[current].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row) {
    row.addEventListener("click", function (ev) { if (ev.target.tagName !== "A") { window.location = row.dataset.href; } });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(document.activeElement)) { return; }
    var key = ev.key;
    if (rows.length) {
      if (key === "j") { select(current + 1); ev.preventDefault(); return; }
      if (key === "k") { select(current - 1); ev.preventDefault(); return; }
      if (key === "Enter" && current >= 0) { window.location = rows[current].dataset.href; return; }
    }
    var target = document.querySelector('[data-key="' + key + '"]');
    if (target) { ev.preventDefault(); target.click(); }
  });
})();
