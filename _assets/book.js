// The book's own behaviour on every page (loaded by _config.yml: html_js_files).
"use strict";

// Figures open at full size: on a phone a figure is shown at about half its natural
// width, its labels 5-7 px tall, and a figure was no link, so a tap did nothing. Each
// figure becomes a link to its own file (its alt text names the link).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".cell_output img").forEach((img) => {
    if (img.closest("a") || !img.getAttribute("src")) return;
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
