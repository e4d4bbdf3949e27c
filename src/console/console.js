// edi-bridge console: refresh the page when something happens (server-sent events), unless the
// operator is typing or has a section open. Only a visible page holds an event stream: browsers
// allow six connections per host, and a stream left open by a background tab or a page being
// left would hold one. No framework, no build step.
(function () {
  if (!window.EventSource || document.querySelector("form.login")) return;
  var source = null;
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
  function open() {
    if (source) return;
    source = new EventSource("/events");
    source.addEventListener("activity", function () {
      if (!pending) pending = setTimeout(refresh, 1000);
    });
  }
  function close() {
    if (source) { source.close(); source = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) close(); else open();
  });
  window.addEventListener("pagehide", close);
  if (!document.hidden) open();
})();
