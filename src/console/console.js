// edi-bridge console: refresh the page when something happens (server-sent events), unless the
// operator is typing or has a section open. No framework, no build step.
(function () {
  if (!window.EventSource || document.querySelector("form.login")) return;
  var pending = null;
  function busy() {
    var a = document.activeElement;
    return (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) ||
      document.querySelector("details[open]") !== null;
  }
  function refresh() {
    pending = null;
    if (busy()) { pending = setTimeout(refresh, 5000); return; }
    location.reload();
  }
  var source = new EventSource("/events");
  source.addEventListener("activity", function () {
    if (!pending) pending = setTimeout(refresh, 1000);
  });
})();
