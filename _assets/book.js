// The book's own behaviour on every page (loaded by _config.yml: html_js_files).
"use strict";

// Figures open at full size: on a phone a figure is shown at about half its natural
// width, its labels 5-7 px tall, and a figure was no link, so a tap did nothing. Each
// figure becomes a link to its own file (its alt text names the link).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".cell_output img").forEach((img) => {
    const src = img.getAttribute("src") || "";
    // not a widget's image, nor inline data (a browser does not open data: URLs as pages)
    if (img.closest("a, .widget-subarea, .mbd") || !src || /^(data|blob):/.test(src)) return;
    const link = document.createElement("a");
    link.href = img.src;
    link.className = "mb-figure-link";
    link.title = "Open the figure at full size";
    img.replaceWith(link);
    link.appendChild(img);
  });
});

// A tap on an entry of the page's contents (or the book's) in the phone's drawer jumps
// to it but left the drawer open over three quarters of the screen: close it after the
// jump, and give the focus to the section jumped to (the theme would return it to the
// drawer's button at the top of the page).
document.addEventListener("click", (event) => {
  const link = event.target.closest("dialog[open] a[href*='#']");
  if (!link || link.pathname !== window.location.pathname) return;  // another page loads anyway
  const dialog = link.closest("dialog");
  setTimeout(() => {
    dialog.addEventListener("close", () => {
      const target = document.getElementById(decodeURIComponent(link.hash.slice(1)));
      if (!target) return;
      if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
      target.focus({preventScroll: true});
    }, {once: true});
    dialog.close();
  }, 0);
});

// Dropdowns named by what they hold: every solution's button was called "Toggle hidden
// content" (sphinx-togglebutton), and a folded output's "Show code cell output" was
// read as "Toggle hidden content" too (an aria-label over its visible words). Run after
// every DOMContentLoaded handler (sphinx-togglebutton adds its buttons in one), not at
// "load", which waits for every figure.
document.addEventListener("DOMContentLoaded", () => setTimeout(() => {
  document.querySelectorAll(".admonition > .admonition-title button.toggle-button").forEach((button) => {
    let title = button.closest(".admonition-title").textContent.replace(/\s+/g, " ").trim();
    const solution = button.closest(".solution");
    if (solution) {  // titled "Solution": name its exercise, the nearest one before it
      let exercise = solution.previousElementSibling;
      while (exercise && !exercise.classList.contains("exercise")) exercise = exercise.previousElementSibling;
      const number = exercise && exercise.querySelector(".admonition-title .caption-number");
      if (number) title = `${title} to ${number.textContent.trim()}`;
    }
    if (title) button.setAttribute("aria-label", `Show or hide: ${title}`);
  });
  document.querySelectorAll("summary[aria-label='Toggle hidden content']").forEach((summary) => {
    if (summary.textContent.trim()) summary.removeAttribute("aria-label");
  });
}, 0));
