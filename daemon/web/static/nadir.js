// The console's few lines of script: say what an API call answered (htmx swaps nothing for
// the action buttons, hx-swap="none").
(function () {
  function flash(text, ok) {
    var el = document.getElementById('flash');
    if (!el) return;
    el.textContent = text; el.className = ok ? 'ok' : 'err'; el.style.display = 'block';
    clearTimeout(el._t); el._t = setTimeout(function () { el.style.display = 'none'; }, 6000);
  }
  document.addEventListener('htmx:responseError', function (e) {
    var text = e.detail.xhr.responseText;
    try { var d = JSON.parse(text).detail; text = Array.isArray(d) ? d.join('\n') : String(d); } catch (x) {}
    flash(e.detail.xhr.status + ': ' + text, false);
  });
  document.addEventListener('htmx:afterRequest', function (e) {
    var el = e.detail.elt;
    if (e.detail.successful && el && el.dataset && el.dataset.done) flash(el.dataset.done, true);
  });
})();
