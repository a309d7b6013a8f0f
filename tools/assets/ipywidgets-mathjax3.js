// ipywidgets 8's HTML manager (embed.js) typesets widget descriptions with the
// MathJax 2 call MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]) whenever
// window.MathJax exists. The book loads MathJax 3, which has no Hub: every widget
// with a description would throw. This provides that one call on top of MathJax 3,
// with Jupyter's $...$ for inline math in a plain-text label.
// Loaded before embed.js, on widget pages only (nb_ipywidgets_js in _config.yml).
(function () {
  "use strict";
  function install() {
    var MJ = window.MathJax;
    if (!MJ || !MJ.version || MJ.Hub || !MJ.startup) return; // not MathJax 3
    MJ.Hub = {
      Queue: function (job) {
        var el = job && job[2];
        if (!el || !el.textContent) return;
        if (el.childElementCount === 0 && el.textContent.indexOf("$") >= 0) {
          el.textContent = el.textContent.replace(/\$([^$]+)\$/g, "\\($1\\)");
        }
        MJ.startup.promise = MJ.startup.promise
          .then(function () { return MJ.typesetPromise([el]); })
          .catch(function (err) { console.warn("MathJax: widget label", err); });
      },
    };
  }
  // MathJax is a deferred script: it has run by DOMContentLoaded, and embed.js
  // renders the widgets later, on window load.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", install);
  } else {
    install();
  }
})();
