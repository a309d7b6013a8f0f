// The search page's summaries quote the pages' text, formulas as TeX ("\(k\) inner
// steps", "\[ ... \tag{2.1} \]"): typeset them with the book's MathJax as they appear.
// _ext/book_pages.py loads MathJax and this file on the search page only.
(() => {
  const textNodes = (element) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const nodes = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node);
    return nodes;
  };
  // Delete the characters [from, to) of the element's text, across its text nodes, and
  // put `text` in their place.
  const cut = (element, from, to, text) => {
    let offset = 0;
    for (const node of textNodes(element)) {
      const start = offset, end = offset + node.length;
      offset = end;
      if (end <= from || start >= to) continue;
      const keepBefore = node.data.slice(0, Math.max(from - start, 0));
      const keepAfter = node.data.slice(Math.max(to - start, 0));
      node.data = keepBefore + (start <= from ? text : "") + (end > to ? keepAfter : "");
    }
  };
  const OPEN = ["\\(", "\\["], CLOSE = ["\\)", "\\]"];  // inline and display math
  const lastOf = (text, marks) => Math.max(...marks.map((m) => text.lastIndexOf(m)));
  const firstOf = (text, marks) =>
    Math.min(...marks.map((m) => text.indexOf(m)).filter((i) => i >= 0), Infinity);
  const tidy = (summary) => {
    // Sphinx marks a search term inside a formula too ("\(\alpha\lambda\)" searched for
    // "lambda"), which splits the TeX across elements: unmark those
    const formulas = [...summary.textContent.matchAll(/\\\(.*?\\\)|\\\[.*?\\\]/gs)]
      .map((m) => [m.index, m.index + m[0].length]);
    let offset = 0;
    const inside = new Set();
    for (const node of textNodes(summary)) {
      const mark = node.parentElement.closest("span.highlighted");
      if (mark && summary.contains(mark) && formulas.some(([a, b]) => offset >= a && offset < b))
        inside.add(mark);
      offset += node.length;
    }
    for (const mark of inside) mark.replaceWith(...mark.childNodes);
    summary.normalize();
    // a formula cut by the summary's ends: "k\) inner" at the start, "\(\la" at the end
    let text = summary.textContent;
    const open = lastOf(text, OPEN);
    if (open > lastOf(text, CLOSE)) cut(summary, open, text.length, "...");
    text = summary.textContent;
    const close = firstOf(text, CLOSE);
    if (close < firstOf(text, OPEN)) cut(summary, text.startsWith("...") ? 3 : 0, close + 2, "");
  };
  const pending = new Set();
  let timer = null;
  const typeset = () => {
    timer = null;
    const summaries = [...pending];
    pending.clear();
    summaries.forEach(tidy);
    if (window.MathJax && MathJax.startup)  // one typesetting at a time, as MathJax asks
      MathJax.startup.promise = MathJax.startup.promise
        .then(() => MathJax.typesetPromise(summaries))
        .catch((error) => console.error("search_math.js: MathJax:", error));
  };
  document.addEventListener("DOMContentLoaded", () => {
    const results = document.getElementById("search-results");
    if (!results) return;
    // Sphinx adds each result's summary (p.context) when its page arrives, then marks the
    // search terms in it: typeset once that is done
    new MutationObserver((records) => {
      for (const record of records)
        for (const node of record.addedNodes)
          if (node.nodeType === Node.ELEMENT_NODE && node.matches("p.context")) pending.add(node);
      if (pending.size && timer === null) timer = setTimeout(typeset, 50);
    }).observe(results, { childList: true, subtree: true });
  });
})();
