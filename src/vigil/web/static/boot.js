// Runs before the page paints: the stylesheet can then tell a page with JavaScript (save
// buttons hidden until a rule changes, the live indicator) from one without.
document.documentElement.classList.add("js");
